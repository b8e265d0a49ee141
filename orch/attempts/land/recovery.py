"""Completing a land that a crash interrupted (``orch doctor --fix``).

A land records its intent (the result commit the target will move to) before the target
moves, and keeps it until the land is recorded. An intent found while no land into its
target holds the target's lock was left by a land that died: when the target points at
the result, or contains it (a later land built on it), the land happened and is recorded;
otherwise the target never moved and the intent is cleared. Either way the scratch
worktree of its check, if one is left, is removed; a checkout of the target that the
crash left at the old commit follows it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.land.target import Target, try_landing_lock
from orch.attempts.land.verify import remove_scratch
from orch.errors import LockBusy, OrchError
from orch.git import Git, Repository
from orch.models import Attempt, Landed

if TYPE_CHECKING:
    from orch.store import Store


def landing_target(attempt: Attempt) -> Target | None:
    """The target the attempt's land intent names (None: no intent)."""
    into = (attempt.landing or {}).get("into")
    return Target(str(into)) if attempt.landing_commit and into else None


def land_in_progress(repo: Repository, attempt: Attempt, owner: str) -> bool:
    """Whether a live land into the intent's target holds its lock right now."""
    target = landing_target(attempt)
    if target is None:
        return False
    lock = try_landing_lock(repo, target, owner)
    if lock is None:
        return True
    lock.release()
    return False


def complete_landing(store: Store, git: Git, repo: Repository, attempt: Attempt, actor: str) -> str:
    """Record the interrupted land, or clear its intent (see the module docstring); what
    was done, in words."""
    target = landing_target(attempt)
    commit = attempt.landing_commit
    if target is None or commit is None:
        return "nothing to do: no land intent"
    lock = try_landing_lock(repo, target, f"{actor} completing a land")
    if lock is None:
        raise LockBusy(f"a land into {target.branch} is in progress: try again when it ends")
    try:
        intent = attempt.landing or {}
        scratch = intent.get("check_worktree")
        if scratch:
            remove_scratch(git, repo, Path(str(scratch)))
        now = git.ref_target(repo.common_dir, target.ref)
        # a result git no longer has (pruned since) is in no branch either
        there = now == commit or (
            now is not None
            and git.has_commit(repo, commit)
            and git.is_ancestor(repo.common_dir, commit, now)
        )
        if there:
            landed = Landed(
                commit,
                str(intent.get("tip", "")),
                target.branch,
                str(intent.get("strategy", "")),
                str(intent.get("by", actor)),
            )
            store.record_landed(
                attempt.id, landed, actor, old=intent.get("from"), repaired_by="orch doctor"
            )
            old = intent.get("from")
            if now == commit and isinstance(old, str):
                _follow(git, repo, target, old, commit)
            return f"recorded as landed: {target.branch} has {commit[:12]}"
        store.clear_landing(
            attempt.id,
            commit,
            actor,
            f"{target.branch} never moved to it (repaired by orch doctor)",
        )
        return f"cleared: {target.branch} never moved to {commit[:12]}"
    finally:
        lock.release()


def _follow(git: Git, repo: Repository, target: Target, old: str, new: str) -> None:
    """A checkout of the target the crash left behind (its index still at ``old``)
    follows it now, as the land would have."""
    for entry in git.list_worktrees(repo):
        path = Path(entry.get("worktree", ""))
        if entry.get("branch") == target.ref and path.is_dir() and git.index_matches(path, old):
            with contextlib.suppress(OrchError):  # changed since: left for its owner
                git.follow_target(path, old, new)
