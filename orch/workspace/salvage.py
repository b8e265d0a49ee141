"""Saving work that removing a worktree or branch would lose, before anything is removed.

Shared by cleanup and doctor. The archive holds a patch of uncommitted changes to tracked
files, a tarball of untracked files, a git bundle of the commits no other branch or remote
keeps, and a manifest (written last) that says how to restore each.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from orch.errors import WorkspaceError
from orch.git import Git, Repository, UnsavedWork, save_bundle, save_patch, untracked_files
from orch.system import archive


def save_work(
    git: Git,
    repo: Repository,
    worktree: Path | None,
    work: UnsavedWork,
    branch: str | None,
    archive_root: Path,
    name: str,
    about: dict[str, Any],
) -> Path:
    target = archive.new_archive_dir(archive_root, name)
    try:
        return _save(git, repo, worktree, work, branch, target, name, about)
    except BaseException:
        # an incomplete archive is never a reason to delete anything: leave none behind
        archive.discard(target)
        raise


def _save(
    git: Git,
    repo: Repository,
    worktree: Path | None,
    work: UnsavedWork,
    branch: str | None,
    target: Path,
    name: str,
    about: dict[str, Any],
) -> Path:
    files: dict[str, str] = {}
    if worktree is not None and worktree.is_dir() and work.dirty:
        if save_patch(git, worktree, target / "uncommitted.patch"):
            files["uncommitted.patch"] = (
                f"changes to tracked files: git -C <worktree> apply {target / 'uncommitted.patch'}"
            )
        untracked = untracked_files(git, worktree)
        if untracked and archive.save_files(worktree, untracked, target / "untracked.tar.gz"):
            files["untracked.tar.gz"] = (
                f"untracked files: tar -C <worktree> -xzf {target / 'untracked.tar.gz'}"
            )
    if work.unmerged_commits:
        bundle = target / "commits.bundle"
        refs = save_bundle(git, repo, work.head, branch, bundle, name)
        if not refs:
            raise WorkspaceError(
                f"could not bundle the {work.unmerged_commits} unmerged commit(s) of "
                f"{branch or work.head}: nothing was removed"
            )
        files["commits.bundle"] = "commits: " + "; ".join(
            f"git fetch {bundle} {ref}:{ref.replace('refs/orch-archive/', 'refs/heads/restored-')}"
            for ref in refs
        )
    if work.dirty and not (set(files) & {"uncommitted.patch", "untracked.tar.gz"}):
        raise WorkspaceError(
            f"could not save the uncommitted work in {worktree}: nothing was removed"
        )
    archive.write_manifest(
        target,
        {
            **about,
            "repository": str(repo.root),
            "worktree_path": str(worktree) if worktree else None,
            "branch_name": branch,
            "head": work.head,
            "unmerged_commits": work.unmerged_commits,
            "uncommitted_paths": [p.path for p in work.dirty],
            "files": files,
            "saved_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    return target
