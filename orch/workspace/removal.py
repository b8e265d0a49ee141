"""Removing a workspace: an attempt's or a pool member's worktree and/or branch, under a
policy, so that the rule "nothing is lost" is written once.

The steps run in the order that keeps a crash between any two of them repairable: the
archive (when the policy asks for one and there is unsaved work), then the worktree, then
the branch. The branch is deleted only while it still points at the commit that was
checked (compare-and-swap: a commit made meanwhile keeps it). Whatever is already gone is
a quiet success (a missing worktree only has git's bookkeeping of it dropped).

Used by dispatch's and doctor's roll-backs, doctor's repairs, cleanup and the pool. This
module must never decide whose a worktree is (the caller has checked it is its to
remove), nor write the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orch.errors import OrchError
from orch.git import Git, Repository, UnsavedWork, force_remove_worktree, unsaved_work
from orch.record import record

NOTHING_UNSAVED = UnsavedWork((), 0, None)


@record
class Archive:
    """Where unsaved work goes before anything is removed (``<root>/<name>-...``)."""

    root: Path
    name: str
    about: Mapping[str, Any]  # written into the archive's manifest


@record
class Policy:
    # save what removal would lose first; None: do not even look (a roll-back of what the
    # caller itself just made, where nobody can have worked yet)
    archive: Archive | None = None
    # the commit the branch must still point at to be deleted; None: its tip when looked at
    branch_at: str | None = None
    keep_branch: bool = False
    # a worktree already gone: drop git's bookkeeping of it (`git worktree prune`)
    forget_if_gone: bool = True
    # a step that fails is skipped, not raised (a roll-back undoing what it can)
    best_effort: bool = False
    # commits whose work is kept elsewhere although no ref holds them (what an attempt
    # landed, squashed into its target): neither they nor their ancestors count as unsaved
    saved: tuple[str, ...] = ()


@record
class Survey:
    """What removing would touch, looked at before anything is removed."""

    worktree: Path | None
    present: bool  # a worktree directory to remove
    branch: str | None
    branch_tip: str | None  # the commit the branch is deleted at; None: no branch to delete
    work: UnsavedWork  # what would be lost (looked at only when the policy archives)


@record
class Removed:
    archive_path: str | None
    worktree: str | None  # "removed", "to the pool" (handed back), or None: nothing there
    branch: bool  # the branch was deleted


def survey(
    git: Git,
    repo: Repository,
    worktree: Path | None,
    branch: str | None,
    policy: Policy,
    *,
    present: bool | None = None,
) -> Survey:
    """Look at what is there (``present``: the caller's own answer for the worktree)."""
    if present is None:
        present = worktree is not None and worktree.exists()
    if policy.keep_branch:
        branch = None
    tip = None
    if branch:
        tip = policy.branch_at or git.branch_commit(repo, branch)
    work = NOTHING_UNSAVED
    if policy.archive is not None and (present or tip):
        work = unsaved_work(git, repo, worktree, branch if tip else None, policy.saved)
    return Survey(worktree, present, branch, tip, work)


def carry_out(
    git: Git,
    repo: Repository,
    found: Survey,
    policy: Policy,
    checkpoint: Callable[[str], None] = lambda step: None,
    *,
    hand_back: Callable[[Path], bool] | None = None,
) -> Removed:
    """Archive, remove the worktree, delete the branch (see the module docstring).
    ``hand_back``: offered the worktree instead of removing it (cleanup --to-pool); True
    when it took it."""
    saved = None
    if policy.archive is not None and not found.work.empty:
        # imported only when needed: tarfile and its compressors are not imported on
        # every dispatch (a dispatch's roll-back never archives)
        from orch.workspace.salvage import save_work

        saved = str(
            save_work(
                git,
                repo,
                found.worktree,
                found.work,
                found.branch if found.branch_tip else None,
                policy.archive.root,
                policy.archive.name,
                dict(policy.archive.about),
            )
        )
        checkpoint("archived")
    worktree = None
    if found.present and found.worktree is not None:
        path = found.worktree
        if hand_back is not None and hand_back(path):
            worktree = "to the pool"
        else:
            with _step(policy):
                force_remove_worktree(git, repo, path)
            worktree = "removed"
        checkpoint("worktree-removed")
    elif found.worktree is not None and policy.forget_if_gone:
        with _step(policy):
            git.prune_worktrees(repo, check=False)
    deleted = False
    if found.branch and found.branch_tip:
        with _step(policy):
            deleted = git.delete_branch_if_at(repo, found.branch, found.branch_tip)
        checkpoint("branch-deleted")
    return Removed(saved, worktree, deleted)


def remove(
    git: Git,
    repo: Repository,
    worktree: Path | None,
    branch: str | None,
    policy: Policy,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> Removed:
    """Remove ``worktree`` and ``branch`` (either may be None) under ``policy``."""
    with _step(policy):
        found = survey(git, repo, worktree, branch, policy)
        return carry_out(git, repo, found, policy, checkpoint)
    return Removed(None, None, False)  # best effort, and even looking failed


def _step(policy: Policy) -> contextlib.AbstractContextManager[None]:
    if policy.best_effort:
        return contextlib.suppress(OrchError, OSError)
    return contextlib.nullcontext()
