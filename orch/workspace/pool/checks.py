"""Checking a pool member: what makes it unfit to hand out (git's record of it, its lock,
a branch checked out, dirt), settling a new or refreshed member, and members git still
lists whose directory is gone. Nothing here moves or removes a member.
"""

from __future__ import annotations

import time
from pathlib import Path

from orch.git import (
    DirtyPath,
    Git,
    PendingDirtyCheck,
    Repository,
    index_stat,
    read_worktree_record,
    worktree_head,
)
from orch.models import CheckoutSpec
from orch.workspace.pool.layout import LOCK_REASON, _inside, _is_member


def _admin_problem(repo: Repository, path: Path) -> str | None:
    """What makes ``path`` unfit, from git's administrative files (cheap file reads)."""
    record = read_worktree_record(repo, path)
    if not record.is_dir:
        return "missing"
    if record.admin is None:
        return "not a git worktree"
    if not record.of_repository:
        return "a worktree of another repository"
    if not record.known:
        return "git no longer knows this worktree"
    if record.lock_reason is None:
        return "not locked by the pool"
    if record.lock_reason != LOCK_REASON:
        return f"locked by someone else ({record.lock_reason or 'no reason given'})"
    if record.head is None:
        return "no HEAD"
    if record.head.startswith("ref:"):
        return "has a branch checked out"
    # whether git's record of the worktree points back at it
    if record.recorded is None:
        return "git's bookkeeping of it is incomplete"
    if not record.points_back(path):
        return "git's bookkeeping points elsewhere"
    return None


def _admin_head(path: Path) -> str | None:
    """The commit a (detached) member is at, as git's files record it."""
    return worktree_head(path)


def dirt_problem(pending: PendingDirtyCheck) -> str | None:
    dirt = pending.result()
    return "git status failed" if dirt is None else _describe(dirt)


def _describe(dirt: list[DirtyPath]) -> str | None:
    if not dirt:
        return None
    shown = ", ".join(d.path for d in dirt[:3])
    return f"dirty ({len(dirt)} path{'s' if len(dirt) != 1 else ''}: {shown})"


def check_member(
    git: Git, repo: Repository, path: Path, started: PendingDirtyCheck | None = None
) -> str | None:
    """Why this member must not be handed out, or None (full check, with ``git status``;
    ``started``: that status, already running in the member)."""
    problem = _admin_problem(repo, path)
    if problem is None:
        problem = dirt_problem(started or git.start_dirty_check(path))
    return problem


def _has_submodules_at(git: Git, repo: Repository, spec: CheckoutSpec, commit: str) -> bool:
    """Whether a worktree of this flavour at ``commit`` would have submodules checked out
    (``spec`` may have been worked out for another commit: an attempt's base)."""
    return spec.submodules is not False and git.has_submodules(repo, commit)


def _settle(git: Git, path: Path) -> str | None:
    """Check a member that nobody else uses yet, and leave its index with fresh stat data
    (no racily clean entries to re-read at hand-over) and an untracked cache.

    The cache is what makes the hand-over check cheap: with it `git status` reads only the
    directories that changed instead of every one (at 50k files about half the time).
    git keys it on the worktree's path, which is why members are handed over where they
    are made. A repository that turns the cache off (core.untrackedCache=false) gets
    none."""
    _outwait_racy_entries(path)
    setting = (git.config_value_in(path, "core.untrackedCache") or "").lower()
    cache = setting not in ("false", "no", "off", "0")
    dirt = git.settle_status(path, untracked_cache=cache)
    if dirt is None:
        return "git status failed"
    return _describe(dirt)


RACY_INDEX_BYTES = 256 * 1024  # about 2,500 entries


def _outwait_racy_entries(path: Path) -> None:
    """Files written in the same second as the index are "racily clean": every `git
    status` re-reads them until the index is written again later. A member is checked
    with `--no-optional-locks` (no index write) at hand-over, so on a large checkout wait
    until the index is older than a second; the status that follows rewrites it."""
    st = index_stat(path)
    if st is not None and st.st_size >= RACY_INDEX_BYTES:
        delay = st.st_mtime + 1.1 - time.time()
        if delay > 0:
            time.sleep(delay)


def _missing_members(git: Git, repo: Repository, under: Path) -> list[tuple[Path, str | None]]:
    """Members git still lists under ``under`` whose directory is gone, with HEAD (an
    attempt's claimed worktree that is gone is the attempt's business: orch doctor)."""
    found = []
    for entry in git.list_worktrees(repo):
        path = Path(entry.get("worktree", ""))
        if _inside(path, under) and not path.exists() and _is_member(path):
            found.append((path, entry.get("HEAD")))
    return found
