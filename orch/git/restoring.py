"""Restoring saved work (``orch restore``), the reverse of ``saving``: the refs a bundle
carries, its commits brought into the object store, a saved patch applied and checked.

Writes no ref and removes nothing: the caller (orch.attempts.restore) makes the branch
and the worktree through ``Refs`` and ``Worktrees`` and decides what to undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orch.git.refs import Repository
from orch.git.runner import Runner


def bundle_heads(git: Runner, repo: Repository, bundle: Path) -> dict[str, str]:
    """The refs a bundle carries and their commits (``git bundle list-heads``)."""
    out = git.run(["bundle", "list-heads", str(bundle.absolute())], cwd=repo.root).stdout
    heads = {}
    for line in out.splitlines():
        sha, _, ref = line.partition(" ")
        if ref:
            heads[ref] = sha
    return heads


def fetch_bundle_objects(git: Runner, repo: Repository, bundle: Path, refs: Sequence[str]) -> None:
    """Bring the commits of a bundle's ``refs`` into the object store; no ref is written."""
    git.run(["fetch", "--no-tags", "--quiet", str(bundle.absolute()), *refs], cwd=repo.root)


def apply_patch(git: Runner, worktree: Path, patch: Path) -> None:
    """Apply a saved ``git diff HEAD --binary`` to the worktree's files (unstaged)."""
    git.run(["apply", str(patch.absolute())], cwd=worktree)


def patch_applied(git: Runner, worktree: Path, patch: Path) -> bool:
    """Whether the worktree holds the patch's changes (it would apply in reverse)."""
    proc = git.run(["apply", "--check", "-R", str(patch.absolute())], cwd=worktree, check=False)
    return proc.returncode == 0
