"""Attempts stuck in ``provisioning`` whose dispatch is gone: rolled back (the same as a
failed dispatch) and marked failed, never guessed complete."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from orch.errors import OrchError
from orch.git import (
    Repository,
)
from orch.models import Attempt, WorkspaceStatus
from orch.system import inbox, processes
from orch.workspace import pool, removal

if TYPE_CHECKING:
    pass

from orch.attempts.doctor.base import STUCK_AFTER, DoctorBase


class ProvisioningChecks(DoctorBase):
    def _stuck_provisioning(self, attempts: list[Attempt]) -> None:
        host = self.settings.host_name
        now = self.store.clock()
        for a in attempts:
            if a.workspace_status != WorkspaceStatus.PROVISIONING:
                continue
            by = a.provisioner
            gone = by is not None and by[0] == host and not processes.is_alive(by[1], None)
            if not gone and now - a.updated_at < STUCK_AFTER:
                continue  # a dispatch still at work
            why = "its dispatch process is gone" if gone else "provisioning for over 10 minutes"
            finding = self._report(
                "stuck-provisioning",
                a.id,
                f"{a.task_key}: {why}",
                "roll back the branch, worktree and payload; mark the attempt failed",
            )
            self._repair(finding, functools.partial(self._roll_back, a))

    def _roll_back(self, a: Attempt) -> str | None:
        saved = None
        try:
            repo = self.git.discover(Path(a.repository))
        except OrchError:
            repo = None
        if repo is not None and a.worktree_path and self._not_its_own(repo, a):
            # the pool member its intent names, still ready or claimed by another
            # dispatch meanwhile: this one never made it its own
            # (the branch, only while it still points at the base)
            if a.branch_name and a.base_commit:
                policy = removal.Policy(branch_at=a.base_commit, best_effort=True)
                removal.remove(self.git, repo, None, a.branch_name, policy)
        elif repo is not None and a.worktree_path:
            # commits someone made on the branch meanwhile go to the archive first
            saved = self._save_and_remove(repo, Path(a.worktree_path), a.branch_name, a.id)
        if a.payload_path:
            inbox.remove_payload(Path(a.payload_path))
        else:
            inbox.remove_payload(inbox.payload_path(self.settings.inbox_dir, a.id))
        self.store.release_ports(a.id, self.actor, "provisioning interrupted")
        with contextlib.suppress(OrchError):
            self.store.fail_provisioning(
                a.id, "interrupted while provisioning (repaired by orch doctor)", self.actor
            )
        return saved

    def _not_its_own(self, repo: Repository, a: Attempt) -> bool:
        """Whether the worktree at ``a``'s path is not ``a``'s: a pool member still in the
        pool, or one another attempt has recorded (a dispatch records a member's path
        before it claims it, so a member two dispatches named is the live one's)."""
        path = Path(a.worktree_path or "")
        if pool.is_pool_path(self.settings, repo, path):
            return True
        if not pool.in_a_pool(path):
            return False  # named after the attempt: nobody else's
        return any(other.id != a.id for other in self.store.live_attempts_using_worktree(str(path)))
