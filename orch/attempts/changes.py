"""Recording what an attempt changed when its branch moves, so that nobody who lists
attempts has to ask git.

The summary counts the attempt's committed work: ``base_commit..tip`` of its branch. It is
recorded by whoever sees the branch move: the worker at each run's end and at finish,
``orch check``, and the loop of ``orch serve`` each cycle (one ``for-each-ref`` per
repository for the branches of every attempt that holds a worktree). A reader never
computes it; ``orch show`` alone may count a live worktree as it is (see ``live``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.queries import AttemptDetail
from orch.attempts.queries import show as show_attempt
from orch.errors import GitError
from orch.git import Git, index_file
from orch.models import Attempt, ChangeSummary

if TYPE_CHECKING:
    from orch.store import Store


def where_to_ask(attempt: Attempt) -> Path | None:
    """A directory of the attempt's repository on this machine: its worktree, else the
    repository it was dispatched from."""
    for candidate in (attempt.worktree_path, attempt.repository):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def record_changes(
    store: Store,
    git: Git,
    attempt: Attempt,
    known_tip: str | None = None,
    token: int | None = None,
) -> ChangeSummary | None:
    """Count and record the attempt's committed changes if its branch moved since
    ``known_tip`` (default: the tip recorded on ``attempt``). Returns what was recorded,
    or None when nothing moved (or there is no branch to count). ``token``: the lease of
    a worker recording its own attempt (nothing is written once it lost it)."""
    where = where_to_ask(attempt)
    if where is None or not attempt.base_commit or not attempt.branch_name:
        return None
    tip = git.branch_tips(where, [attempt.branch_name]).get(attempt.branch_name)
    if tip is None or tip == (known_tip or attempt.changes_tip):
        return None
    summary = git.change_summary(where, attempt.base_commit, tip)
    return summary if store.record_changes(attempt.id, summary, token) else None


def record_moved(store: Store, git: Git, attempts: Iterable[Attempt]) -> list[str]:
    """Record the changes of every attempt among ``attempts`` whose branch moved since its
    last record: one ``for-each-ref`` per repository, then two git processes per attempt
    that moved. Returns their ids. A repository git cannot read is skipped (the next look
    tries again)."""
    by_repository: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        if attempt.branch_name and attempt.base_commit:
            by_repository.setdefault(attempt.repository, []).append(attempt)
    moved = []
    for repository, group in by_repository.items():
        where = Path(repository)
        if not where.is_dir():
            continue
        try:
            tips = git.branch_tips(where, [a.branch_name or "" for a in group])
        except GitError:
            continue
        for attempt in group:
            tip = tips.get(attempt.branch_name or "")
            if tip is None or tip == attempt.changes_tip or not attempt.base_commit:
                continue
            with contextlib.suppress(GitError):
                summary = git.change_summary(where, attempt.base_commit, tip)
                store.record_changes(attempt.id, summary)
                moved.append(attempt.id)
    return moved


def live(git: Git, attempt: Attempt) -> ChangeSummary | None:
    """The attempt's worktree as it is now: its commits since the base, its uncommitted
    changes and its untracked (not ignored) files, never taking the worktree's own index
    lock (``Git.worktree_changes``); None when it has no worktree here."""
    path = Path(attempt.worktree_path) if attempt.worktree_path else None
    if path is None or index_file(path) is None or not attempt.base_commit:
        return None
    base = attempt.base_commit
    try:
        head = git.head_commit(path)
        files = git.worktree_changes(path, base).files
        return ChangeSummary(
            head,
            git.commits_ahead(path, base, head),
            len(files),
            sum(f.additions or 0 for f in files),
            sum(f.deletions or 0 for f in files),
        )
    except GitError:
        return None


def show(store: Store, git: Git, ref: str) -> AttemptDetail:
    """``orch show``: the attempt, its events and runs, and its worktree counted as it is
    now when the worktree is on this machine."""
    detail = show_attempt(store, ref)
    return dataclasses.replace(detail, live_changes=live(git, detail.attempt))
