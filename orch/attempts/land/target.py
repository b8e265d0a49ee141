"""Which branch an attempt lands into, and the lock that serialises lands into it.

The target is ``--into``, else the branch the attempt's ``base_ref`` named (refused when
that branch is gone), else (a base_ref that is a tag, a commit or ``HEAD``) the branch
checked out in the main worktree; it is always a local branch of the attempt's
own repository (a tag, a remote-tracking branch or a commit is refused: nothing but a
branch of this repository may move). Lands into one target are serialised across
processes by a file lock in the repository's orch directory, keyed by the target, so
two ``orch land`` at once build each result on the other's.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from orch.errors import LandRefused
from orch.fslock import HeldLock, file_lock, try_lock
from orch.git import Git, Repository
from orch.models import Attempt
from orch.record import record

HEADS = "refs/heads/"
# how long a land waits for another land into the same target (which may be running its
# check: [review] check_timeout is 600 s by default)
LAND_WAIT = 3600.0


@record
class Target:
    """The branch a land moves."""

    branch: str  # the short name: main

    @property
    def ref(self) -> str:
        return HEADS + self.branch


def resolve_target(git: Git, repo: Repository, attempt: Attempt, into: str | None) -> Target:
    """The branch to land ``attempt`` into (see the module docstring)."""
    if into is not None:
        name = into.removeprefix(HEADS)
        if git.ref_target(repo.common_dir, HEADS + name) is None:
            raise LandRefused(_not_a_branch(git, repo, into))
        return Target(name)
    base = attempt.base_ref.removeprefix(HEADS)
    if base != "HEAD" and git.ref_target(repo.common_dir, HEADS + base) is not None:
        return Target(base)
    if base != "HEAD" and git.ref_target(repo.common_dir, attempt.base_ref) is None:
        # it named a branch that is gone (a tag or a commit still resolves): landing into
        # whatever the main worktree has checked out would be a guess
        raise LandRefused(
            f"the base_ref {attempt.base_ref!r} of attempt {attempt.id} names no branch of "
            f"{repo.root} any more (deleted?): name the target with --into"
        )
    current = git.current_branch(repo.root)
    if current is None:
        raise LandRefused(
            f"no target for attempt {attempt.id}: its base_ref {attempt.base_ref!r} is not a "
            f"branch and the main worktree {repo.root} is on no branch (detached HEAD); "
            "name one with --into"
        )
    return Target(current)


def _not_a_branch(git: Git, repo: Repository, into: str) -> str:
    if git.ref_target(repo.common_dir, into) is not None:
        return (
            f"{into!r} is not a local branch of {repo.root}: orch land moves only a local "
            "branch (a tag, a remote-tracking branch or a commit is refused)"
        )
    return f"no branch {into!r} in {repo.root}"


def lock_path(repo: Repository, target: Target) -> Path:
    """The file lock of lands into ``target`` (one per repository and branch)."""
    digest = hashlib.sha256(target.ref.encode()).hexdigest()[:16]
    return repo.orch_dir / "land" / f"{digest}.lock"


@contextlib.contextmanager
def landing_into(repo: Repository, target: Target, timeout: float = LAND_WAIT) -> Iterator[None]:
    """Hold the lock of lands into ``target``, waiting for another land to end."""
    with file_lock(lock_path(repo, target), timeout, f"landing into {target.branch}"):
        yield


def try_landing_lock(repo: Repository, target: Target, owner: str) -> HeldLock | None:
    """The lock of lands into ``target`` if no land holds it now (doctor), else None."""
    return try_lock(lock_path(repo, target), owner)
