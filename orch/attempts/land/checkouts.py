"""The worktrees that have the target branch checked out: refused before anything moves
when their uncommitted changes touch the landed files, and brought along after the target
moved (like ``git merge --ff-only``)."""

from __future__ import annotations

from pathlib import Path

from orch.attempts.land.refusals import few
from orch.attempts.land.target import Target
from orch.errors import LandRefused, OrchError
from orch.git import Git, Repository


def checkouts_of(git: Git, repo: Repository, target: Target) -> list[Path]:
    """The worktrees that have the target branch checked out."""
    return [
        Path(entry["worktree"])
        for entry in git.list_worktrees(repo)
        if entry.get("branch") == target.ref and "worktree" in entry
    ]


def refuse_dirty_checkouts(
    git: Git, repo: Repository, target: Target, checkouts: list[Path], old: str, new: str
) -> None:
    """A checkout of the target whose uncommitted changes touch the landed files is
    refused before anything moves (it could not follow)."""
    if not checkouts:
        return
    landed = git.changed_paths(repo.root, old, new)
    for path in checkouts:
        touched = git.dirty_among(path, landed)
        if touched:
            raise LandRefused(
                f"{target.branch} is checked out at {path} with uncommitted changes to files "
                f"the land changes ({few(touched)}): commit or stash them first"
            )


def follow(git: Git, target: Target, checkouts: list[Path], old: str, new: str) -> tuple[str, ...]:
    """Bring each checkout of the target along (like ``git merge --ff-only``)."""
    warnings = []
    for path in checkouts:
        try:
            git.follow_target(path, old, new)
        except OrchError as exc:
            warnings.append(
                f"{target.branch} moved to {new[:12]}, but its checkout at {path} could not "
                f"follow ({exc.message}): run 'git read-tree -m -u {old} {new}' there"
            )
    return tuple(warnings)
