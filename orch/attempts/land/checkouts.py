"""The worktrees that have the target branch checked out: refused before anything moves
when their uncommitted changes touch the landed files, and brought along after the target
moved (like ``git merge --ff-only``).

Following applies the landed change to the landed paths only (``git apply --index``), so
that a land costs the same in a worktree of 1,000 files as in one of 50,000; a change too
large for a patch (``PATCH_LIMIT``), or a worktree the patch does not apply to, follows by
the two-tree ``read-tree -m -u`` a fast-forward merge does, which reads the whole tree.
Either way git refuses rather than overwrite a local change.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from orch.attempts.land.refusals import few
from orch.attempts.land.target import Target
from orch.errors import GitError, LandRefused, OrchError
from orch.git import Git, Repository
from orch.record import record

T = TypeVar("T")

PATCH_LIMIT = 4 << 20  # bytes of patch a checkout follows by; a larger change: read-tree


@record
class Checkouts:
    """The worktrees that follow the target, and the patch they follow by (None: the
    change is too large for one, or there is no checkout)."""

    paths: tuple[Path, ...] = ()
    patch: bytes | None = None


def checkouts_of(git: Git, repo: Repository, target: Target) -> list[Path]:
    """The worktrees that have the target branch checked out."""
    return [
        Path(entry["worktree"])
        for entry in git.list_worktrees(repo)
        if entry.get("branch") == target.ref and "worktree" in entry
    ]


def prepare_checkouts(git: Git, repo: Repository, target: Target, old: str, new: str) -> Checkouts:
    """The checkouts of the target, refused (before anything moves) when their
    uncommitted changes touch the landed files, which they could not follow."""
    paths = checkouts_of(git, repo, target)
    if not paths:
        return Checkouts()
    landed = git.landed_changes(repo.common_dir, old, new)

    def read_patch() -> bytes | None:
        try:
            return git.landed_patch(repo.common_dir, old, new, PATCH_LIMIT)
        except GitError:
            return None  # the checkouts follow by read-tree: a patch is only the quicker way

    patch = started(read_patch)  # read while git looks at the checkouts
    try:
        for path in paths:
            touched = git.dirty_among(path, landed)
            if touched:
                raise LandRefused(
                    f"{target.branch} is checked out at {path} with uncommitted changes to "
                    f"files the land changes ({few(touched)}): commit or stash them first"
                )
    except BaseException:
        with contextlib.suppress(Exception):
            patch()  # its git is not left running behind the refusal
        raise
    return Checkouts(tuple(paths), patch())


def started(work: Callable[[], T]) -> Callable[[], T]:
    """Run ``work`` in a thread now (git's processes leave the GIL free meanwhile); the
    call returned waits for it and returns what it returned, or raises what it raised."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="orch land", daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if failed:
            raise failed[0]
        return done[0]

    return result


def following(
    git: Git, target: Target, checkouts: Checkouts, old: str, new: str
) -> Callable[[], tuple[str, ...]]:
    """``follow`` started once the target moved, so that the land is recorded while git
    rewrites the checkouts (``git apply --index`` rewrites the whole index: tens of
    milliseconds in a large repository); call the result to wait for it."""
    if not checkouts.paths:
        return lambda: ()
    return started(lambda: follow(git, target, checkouts, old, new))


def follow(git: Git, target: Target, checkouts: Checkouts, old: str, new: str) -> tuple[str, ...]:
    """Bring each checkout of the target along (like ``git merge --ff-only``)."""
    warnings = []
    for path in checkouts.paths:
        try:
            if checkouts.patch is None or not git.apply_landed(path, checkouts.patch):
                git.follow_target(path, old, new)
        except OrchError as exc:
            warnings.append(
                f"{target.branch} moved to {new[:12]}, but its checkout at {path} could not "
                f"follow ({exc.message}): run 'git read-tree -m -u {old} {new}' there"
            )
    return tuple(warnings)
