"""Building a land's result from the target's commit and the attempt's tip, per strategy,
without touching any worktree (orch.git.landing):

- ``squash`` (default): one commit on the target with the merged tree; its message is the
  task key and the prompt's first line (or ``--message``), with ``Orch-Task:`` and
  ``Orch-Attempt:`` trailers;
- ``rebase``: the attempt's commits replayed onto the target, authors, dates and messages
  kept (merge commits left out, as ``git rebase`` does);
- ``merge``: a merge commit of the target and the attempt's tip;
- ``ff-only``: the attempt's tip itself, refused unless the target is its ancestor.

A conflict raises ``LandConflict`` naming the paths; work already in the target is
refused (nothing would land). Objects are written, never a ref.
"""

from __future__ import annotations

import enum
from pathlib import Path

from orch.errors import LandConflict, LandRefused
from orch.git import Conflicted, Git
from orch.models import Attempt
from orch.record import record

SHOWN_PATHS = 3  # a conflict names this many paths, then a count


class Strategy(enum.StrEnum):
    SQUASH = "squash"
    REBASE = "rebase"
    MERGE = "merge"
    FF_ONLY = "ff-only"


@record
class Built:
    """A land's result: the commit the target moves to, its tree."""

    commit: str
    tree: str


def build(
    git: Git,
    git_dir: Path,
    attempt: Attempt,
    strategy: Strategy,
    target_branch: str,
    old: str,
    tip: str,
    message: str | None,
) -> Built:
    """The result of landing ``tip`` onto ``old`` (the target's commit) by ``strategy``."""
    if git.is_ancestor(git_dir, tip, old):
        raise LandRefused(
            f"nothing to land: the commits of attempt {attempt.id} are already in "
            f"{target_branch} ({old[:12]})"
        )
    if strategy == Strategy.FF_ONLY:
        if not git.is_ancestor(git_dir, old, tip):
            raise LandRefused(
                f"{target_branch} ({old[:12]}) has commits that attempt {attempt.id} does not: "
                "it cannot fast-forward (use --strategy squash, rebase or merge)"
            )
        return Built(tip, git.tree_of(git_dir, tip))
    if strategy == Strategy.REBASE:
        replayed = git.replay(git_dir, old, git.commits_to_replay(git_dir, old, tip))
        if replayed.conflicts:
            stopped = (replayed.stopped_at or "")[:12]
            raise conflict(attempt, target_branch, old, replayed.conflicts, f" (at {stopped})")
        if replayed.tip == old:
            raise LandRefused(
                f"nothing to land: {target_branch} ({old[:12]}) already has the change of every "
                f"commit of attempt {attempt.id}"
            )
        return Built(replayed.tip, git.tree_of(git_dir, replayed.tip))
    merged = git.merge_trees(git_dir, old, tip)
    if merged.conflicts:
        raise conflict(attempt, target_branch, old, merged.conflicts)
    if strategy == Strategy.SQUASH:
        if merged.tree == git.tree_of(git_dir, old):
            raise LandRefused(
                f"nothing to land: {target_branch} ({old[:12]}) already has every change of "
                f"attempt {attempt.id}"
            )
        text = with_trailers(message or squash_subject(attempt), attempt)
        return Built(git.commit_tree(git_dir, merged.tree, [old], text), merged.tree)
    subject = message or f"Merge {attempt.branch_name} into {target_branch}"
    commit = git.commit_tree(git_dir, merged.tree, [old, tip], with_trailers(subject, attempt))
    return Built(commit, merged.tree)


def squash_subject(attempt: Attempt) -> str:
    """``<task key>: <the prompt's first line>`` (the task key alone for an empty prompt)."""
    first = next((ln.strip() for ln in attempt.prompt.splitlines() if ln.strip()), "")
    if len(first) > 72:
        first = first[:71].rstrip() + "…"
    return f"{attempt.task_key}: {first}" if first else attempt.task_key


def with_trailers(message: str, attempt: Attempt) -> str:
    body = message.rstrip("\n")
    return f"{body}\n\nOrch-Task: {attempt.task_key}\nOrch-Attempt: {attempt.id}\n"


def conflict(
    attempt: Attempt,
    target_branch: str,
    old: str,
    conflicts: tuple[Conflicted, ...],
    where: str = "",
) -> LandConflict:
    """One line: a few paths with what kind of conflict each is, then a count."""
    named = [
        f"{c.path} ({', '.join(c.kinds)})" if c.kinds else c.path for c in conflicts[:SHOWN_PATHS]
    ]
    more = len(conflicts) - SHOWN_PATHS
    tail = f" and {more} more" if more > 0 else ""
    return LandConflict(
        f"attempt {attempt.id} conflicts with {target_branch} ({old[:12]}){where} in "
        f"{len(conflicts)} path{'s' if len(conflicts) != 1 else ''}: {', '.join(named)}{tail}",
        tuple(c.path for c in conflicts),
        old,
    )
