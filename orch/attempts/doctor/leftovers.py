"""Rows whose files are gone and files whose rows are gone: a queued attempt's deleted
worktree made again, an ended one's marked removed, markers of dead dispatches, payloads
without rows and rows without payloads."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.dispatch.recreate import recreate_worktree
from orch.attempts.lifecycle import rewrite_payload
from orch.git import (
    Repository,
)
from orch.models import HOLDS_WORKTREE, Attempt, State, WorkspaceStatus
from orch.system import archive, inbox
from orch.workspace import ahead, owners

if TYPE_CHECKING:
    pass

from orch.attempts.doctor.base import STALE_MARKER_SECONDS, DoctorBase, _age, _remove_file


class LeftoverChecks(DoctorBase):
    def _missing_worktrees(self, rows: list[Attempt], repo: Repository | None = None) -> None:
        """Rows whose worktree is gone: a queued attempt's is made again (in ``repo``)."""
        for a in rows:
            if (
                a.workspace_status.holds_worktree
                and a.worktree_path
                and not Path(a.worktree_path).is_dir()
            ):
                if a.state == State.QUEUED and repo is not None:
                    finding = self._report(
                        "worktree-missing",
                        a.id,
                        f"{a.task_key} is queued but {a.worktree_path} is gone",
                        "make the worktree again from its branch (or its base commit)",
                    )
                    self._repair(finding, functools.partial(self._recreate, a, repo))
                    continue
                if not a.terminal:
                    self._report(
                        "worktree-missing",
                        a.id,
                        f"{a.task_key} is {a.state} but {a.worktree_path} is gone",
                        "none while it is live (cancel it)",
                    )
                    continue
                finding = self._report(
                    "worktree-missing",
                    a.id,
                    f"{a.worktree_path} is gone",
                    "mark the workspace removed (the branch is kept)",
                )
                self._repair(finding, functools.partial(self._mark_removed, a))

    def _recreate(self, a: Attempt, repo: Repository) -> None:
        recreate_worktree(a, repo, self.settings, self.git, self.store, self.actor)

    def _mark_removed(self, a: Attempt) -> str | None:
        # a cleanup --force killed after saving the work: say where it went ('orch show')
        saved = archive.latest_archive(self.settings.home / "archive", a.id)
        self.store.release_ports(a.id, self.actor, "worktree gone")
        self.store.mark_workspace(
            [a.id],
            HOLDS_WORKTREE,
            WorkspaceStatus.ARCHIVED if saved else WorkspaceStatus.REMOVED,
            self.actor,
            archive_path=str(saved) if saved else None,
            reason="worktree found missing by orch doctor",
        )
        if a.payload_path:
            inbox.remove_payload(Path(a.payload_path))
        return str(saved) if saved else None

    def _dead_markers(self) -> None:
        """Markers of dispatches that died before recording their intent. The worktree
        such a dispatch started is an orphan worktree (removed above); its marker goes
        once the worktree is gone, not before: the marker is what leads doctor to a
        repository no row names."""
        for marker in ahead.markers(self.settings):
            if owners.making(marker):
                continue
            if os.path.lexists(marker.worktree):
                self._report(
                    "dead-dispatch-marker",
                    str(marker.file),
                    f"left by dispatch {marker.pid} (gone); its worktree {marker.worktree} "
                    "is still there",
                    "none until the worktree is removed (run 'orch doctor --fix' where "
                    f"{marker.repository} is)",
                )
                continue
            finding = self._report(
                "dead-dispatch-marker",
                str(marker.file),
                f"left by dispatch {marker.pid} (gone) for {marker.worktree}",
                "delete it",
            )
            self._repair(finding, functools.partial(ahead.drop_marker, marker.file))
        for leftover in ahead.scan(self.settings)[1]:
            age = _age(leftover)
            if age is None or age < STALE_MARKER_SECONDS:
                continue  # gone meanwhile, or maybe still being written
            finding = self._report(
                "dead-dispatch-marker",
                str(leftover),
                "unreadable (an interrupted write)",
                "delete it",
            )
            self._repair(finding, functools.partial(ahead.drop_marker, leftover))

    def _payloads(self, attempts: list[Attempt]) -> None:
        inbox_dir = self.settings.inbox_dir
        known = {a.id for a in attempts}
        if inbox_dir.is_dir():
            listed = sorted(inbox_dir.iterdir())
            # payloads of attempts doctor did not read (it reads only those that hold a
            # worktree) are looked up by id, not by loading the store
            known |= self.store.known_ids(
                p.name.removesuffix(".json")
                for p in listed
                if p.suffix == ".json" and p.name.removesuffix(".json") not in known
            )
            for path in listed:
                attempt_id = path.name.removesuffix(".json")
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    finding = self._report(
                        "partial-payload", str(path), "left by an interrupted write", "delete it"
                    )
                elif path.suffix == ".json" and attempt_id not in known:
                    finding = self._report(
                        "orphan-payload", str(path), "no attempt in the store", "delete it"
                    )
                else:
                    continue
                self._repair(finding, functools.partial(_remove_file, path))
        for a in attempts:
            if (
                a.workspace_status.holds_worktree
                and not a.terminal
                and a.payload_path
                and not Path(a.payload_path).exists()
            ):
                finding = self._report(
                    "missing-payload",
                    a.id,
                    f"{a.payload_path} is gone",
                    "write it again from the store",
                )
                self._repair(finding, functools.partial(self._rewrite_payload, a))

    def _rewrite_payload(self, a: Attempt) -> None:
        rewrite_payload(a, self.settings, self.store)  # with its port bundle
