"""What every check of ``orch doctor`` shares: the findings, reporting and repairing one,
saving work before anything is removed, and who owns a path or a branch. Checks nothing
by itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.errors import OrchError
from orch.git import (
    Git,
    Repository,
)
from orch.models import OCCUPIES_WORKTREE, Attempt
from orch.system import archive, inbox
from orch.workspace import removal
from orch.workspace.owners import owner_of

if TYPE_CHECKING:
    from orch.store import Store

STUCK_AFTER = dt.timedelta(minutes=10)  # a dispatch whose process cannot be checked
STALE_MARKER_SECONDS = 60.0  # an unreadable marker this old is no write in progress
Checkpoint = Callable[[str], None]


@dataclasses.dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    repair: str
    fixed: bool = False
    archive_path: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class DoctorBase:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        git: Git,
        actor: str,
        fix: bool,
        checkpoint: Checkpoint = lambda step: None,
    ) -> None:
        self.store, self.settings, self.git, self.actor = store, settings, git, actor
        self.fix, self.checkpoint = fix, checkpoint
        self.findings: list[Finding] = []

    def _mine(self) -> list[Attempt]:
        """This host's attempts that hold (or are making) a worktree: doctor only ever
        touches its own disk, and only these can still need it. The rest (a year of
        cleaned-up history) are never loaded; a branch or payload no row read here owns
        is looked up by itself (``_branch_owned``, ``store.known_ids``)."""
        here = self.settings.host_name
        return [
            a
            for a in self.store.list_attempts(workspaces=OCCUPIES_WORKTREE)
            if a.workspace_host in (None, here)
        ]

    def _report(self, kind: str, subject: str, detail: str, repair: str) -> Finding:
        finding = Finding(kind, subject, detail, repair)
        self.findings.append(finding)
        return finding

    def _repair(self, finding: Finding, action: Callable[[], str | None]) -> None:
        if not self.fix:
            return
        try:
            finding.archive_path = action()
            finding.fixed = True
            self.checkpoint(f"fixed-{finding.kind}")
        except OrchError as exc:
            finding.error = exc.message

    def _save_and_remove(
        self, repo: Repository, path: Path | None, branch: str | None, name: str
    ) -> str | None:
        """Remove a worktree (and its branch) nobody owns, archiving unsaved work first."""
        policy = removal.Policy(
            archive=removal.Archive(
                self.settings.home / "archive", name, {"saved_by": "orch doctor"}
            ),
            forget_if_gone=False,  # git's stale bookkeeping is a finding of its own
        )
        return removal.remove(self.git, repo, path, branch, policy).archive_path

    def _in_use(self, path: Path, repo: Repository | None = None) -> bool:
        """Whether a worktree no row read earlier owns is someone's after all: a live
        dispatch's (one it is making ahead of its intent, or recorded since), or a member
        of ``repo``'s pool."""
        return owner_of(path, self.settings, self.store, repo).owned

    def _branch_owned(self, repo: Repository, branch: str, owned: set[str]) -> bool:
        """Whether an attempt owns ``branch``: one of the rows doctor read (``owned``), or
        any other (an ended attempt whose branch was kept, or one recorded after doctor
        read the store: a dispatch records its intent before it makes its branch)."""
        return branch in owned or self.store.branch_owner(str(repo.root), branch) is not None

    def _move_aside(self, path: Path) -> str | None:
        if not _nonempty(path):
            path.rmdir()
            return None
        return str(archive.move_aside(path, self.settings.home / "archive", f"stray-{path.name}"))

    def _prune(self, repo: Repository) -> None:
        self.git.prune_worktrees(repo)


def _age(path: Path) -> float | None:
    """Seconds since ``path`` was last written; None when it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def _remove_file(path: Path) -> None:
    inbox.remove_payload(path)


def _has_worktree(a: Attempt) -> bool:
    return bool(
        a.workspace_status.occupies_worktree and a.worktree_path and Path(a.worktree_path).is_dir()
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _nonempty(path: Path) -> bool:
    try:
        return not path.is_dir() or any(path.iterdir())
    except OSError:
        return True
