"""Taking members out of the pool for good: setting a damaged one aside (it may hold
someone's work; only ``orch doctor --fix`` archives and removes it), discarding one
(through orch.workspace.removal), and dropping git's record of one that is gone. A
member of another repository is moved into the archive, never deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

from orch import private
from orch.config import Settings
from orch.errors import WorkspaceError, describe_os_error
from orch.git import Git, Repository, admin_of_repository, worktree_admin_dir
from orch.workspace.pool.checks import _admin_problem
from orch.workspace.pool.layout import (
    DAMAGED,
    WORKTREE,
    _unmark,
)


class MemberStuck(WorkspaceError):
    """A damaged member could not be moved aside: it stays where it is, with whatever it
    holds (nothing may delete it; ``orch doctor --fix`` archives it)."""


def set_aside(git: Git, repo: Repository, path: Path, directory: Path) -> None:
    """Move a member that must not be handed out out of the way as damaged (git's
    bookkeeping follows it when it is this repository's, so its path stays free)."""
    aside = directory / f"{DAMAGED}{path.name.removeprefix(WORKTREE)}"
    try:
        private.make_dir(directory)
        os.rename(path, aside)
    except FileNotFoundError:
        _forget(git, repo, path)  # nothing there to keep
        _unmark(path)
        return
    except OSError as exc:
        raise MemberStuck(
            f"a damaged pool member could not be moved aside to {aside} "
            f"({describe_os_error(exc)}); it is kept at {path}: 'orch doctor --fix' "
            "archives it"
        ) from exc
    _unmark(path)
    if _admin_problem(repo, aside) != "a worktree of another repository":
        git.repair_worktree(repo, aside, check=False)


def discard(git: Git, repo: Repository, settings: Settings, path: Path) -> str | None:
    """Remove a pool member and its markers; one of another repository is moved into the
    archive instead (nothing is deleted that orch cannot tell is its own). Returns an
    archive path."""
    try:
        return _discard(git, repo, settings, path)
    finally:
        if path.name.startswith(WORKTREE) and not path.exists():
            _unmark(path)


def _forget(git: Git, repo: Repository, path: Path) -> None:
    """Drop git's record of a member whose directory is gone (git keeps a locked one's
    bookkeeping until it is unlocked)."""
    git.unlock_worktree(repo, path, check=False)
    git.prune_worktrees(repo, check=False)


def _discard(git: Git, repo: Repository, settings: Settings, path: Path) -> str | None:
    if not path.exists():
        _forget(git, repo, path)
        return None
    admin = worktree_admin_dir(path)
    if admin is not None and not admin_of_repository(repo, admin):
        from orch.system import archive  # rarely needed; tarfile is not imported on every dispatch

        return str(archive.move_aside(path, settings.home / "archive", f"pool-{path.name}"))
    if admin is not None and admin.is_dir():
        git.repair_worktree(repo, path, check=False)
        git.unlock_worktree(repo, path, check=False)
    from orch.workspace import removal  # not imported by every dispatch (a claim never discards)

    # a member holds nothing of anyone's (it was checked when it was taken out)
    removal.remove(git, repo, path, None, removal.Policy())
    return None
