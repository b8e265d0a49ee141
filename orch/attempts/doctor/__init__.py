"""The doctor use case: reconcile the store with git and the file system.

Finds what a crash (kill -9 at any step), a full disk or a hand-deleted directory leaves
behind, and with ``fix`` repairs it: attempts stuck in ``provisioning`` whose dispatch is
gone are rolled back and marked failed; a queued attempt whose worktree is gone gets it made
again from its branch (orch.attempts.dispatch.recreate); an ended attempt's row whose
worktree is gone is marked removed; a land a crash interrupted is recorded as landed when
its target has the result, its intent cleared otherwise (orch.attempts.land.recovery);
worktrees, branches and directories under orch's names that no row owns are removed;
payloads without rows are deleted and rows without payloads get theirs rewritten; git's
stale worktree bookkeeping is pruned. A check run whose process was killed is recorded as
interrupted. Event deliveries that failed for good are reported. A worktree a live
dispatch is making ahead of its intent (orch.workspace.ahead), or one an attempt recorded
after doctor read the store, is left alone. Nothing holding work that is not kept
elsewhere is deleted without first being saved under ``$ORCH_HOME/archive``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.lifecycle import reap
from orch.config import Settings
from orch.errors import OrchError
from orch.git import (
    Git,
)
from orch.models import Attempt, WorkspaceStatus
from orch.workspace import ahead, owners, pool

if TYPE_CHECKING:
    from orch.store import Store

from orch.attempts.doctor.base import (
    Checkpoint,
    Finding,
    _has_worktree,
)
from orch.attempts.doctor.check_runs import CheckRunChecks
from orch.attempts.doctor.events import EventChecks
from orch.attempts.doctor.landing import LandingChecks
from orch.attempts.doctor.provisioning import ProvisioningChecks
from orch.attempts.doctor.repository import RepositoryChecks

__all__ = ["Doctor", "Finding", "doctor"]


class Doctor(ProvisioningChecks, RepositoryChecks, EventChecks, LandingChecks, CheckRunChecks):
    def run(self) -> list[Finding]:
        reap(self.store, self.actor, host=self.settings.host_name)
        # before the worktrees: a land's scratch worktree goes with its intent
        self._interrupted_lands()
        attempts = self._mine()
        self._stuck_provisioning(attempts)
        attempts = self._mine()
        self._abandoned_checks(attempts)
        by_repo: dict[str, list[Attempt]] = {}
        for a in attempts:
            if a.workspace_status == WorkspaceStatus.SKIPPED_NOT_GIT:
                continue  # ran where it was started, outside git: nothing of orch's to check
            by_repo.setdefault(a.repository, []).append(a)
        # every repository the store knows (one indexed read), so that a branch left in a
        # repository whose attempts are all cleaned up is still found
        for repository in self.store.repositories():
            by_repo.setdefault(repository, [])
        for repository, rows in sorted(by_repo.items()):
            try:
                repo = self.git.discover(Path(repository))
            except OrchError as exc:
                # rows whose worktrees went with the repository are repaired all the same;
                # only worktrees still on disk keep this a problem
                self._missing_worktrees(rows)
                if any(_has_worktree(a) for a in rows):
                    self._report(
                        "repository-unusable", repository, exc.message, "none (report only)"
                    )
                continue
            self._repository(repo, rows)
        # pools of repositories that have no attempts (any more), and repositories where
        # a dispatch died before recording its intent
        checked = {str(Path(r)) for r in by_repo}
        for marker in ahead.markers(self.settings):
            if str(marker.repository) in checked or owners.making(marker):
                continue
            checked.add(str(marker.repository))
            with contextlib.suppress(OrchError):
                self._repository(self.git.discover(marker.repository), [])
        for root in pool.pooled_repositories(self.settings):
            if str(root) in checked:
                continue
            try:
                repo = self.git.discover(root)
            except OrchError:
                continue
            if str(repo.root) not in checked:
                self._pool(repo)
        self._payloads(attempts)
        self._dead_markers()
        self._event_deliveries()
        return self.findings


def doctor(
    store: Store,
    settings: Settings,
    git: Git,
    actor: str,
    fix: bool,
    checkpoint: Checkpoint = lambda step: None,
) -> list[Finding]:
    return Doctor(store, settings, git, actor, fix, checkpoint).run()
