"""One repository against the store: worktrees, branches and directories under orch's names
that no row owns, members of its warm pool, and git's stale worktree bookkeeping."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.git import (
    Repository,
    admin_of_repository,
    branches_with_prefix,
    prune_candidates,
    worktree_admin_dir,
)
from orch.models import Attempt, WorkspaceStatus
from orch.workspace import pool

if TYPE_CHECKING:
    pass

from orch.attempts.doctor.base import _inside, _nonempty
from orch.attempts.doctor.leftovers import LeftoverChecks


class RepositoryChecks(LeftoverChecks):
    def _repository(self, repo: Repository, rows: list[Attempt]) -> None:
        root = self.settings.worktree_root / naming.repository_dir_name(repo.root)
        # resolved, as git lists worktrees (rows written before orch resolved the
        # worktree root may name it through a symbolic link)
        owned_paths = {
            str(Path(a.worktree_path).resolve())
            for a in rows
            if a.worktree_path and a.workspace_status.occupies_worktree
        }
        owned_branches = {
            a.branch_name
            for a in rows
            if a.branch_name and a.workspace_status != WorkspaceStatus.FAILED
        }
        self._missing_worktrees(rows, repo)
        # registered worktrees under orch's root that no row owns
        registered = []
        for entry in self.git.list_worktrees(repo):
            path = Path(entry.get("worktree", ""))
            if not _inside(path, self.settings.worktree_root):
                continue
            registered.append(path)
            if str(path) in owned_paths or "prunable" in entry:
                continue
            if self._in_use(path, repo):
                continue  # a pool member (checked below), or a live dispatch's or attempt's
            branch = entry.get("branch", "").removeprefix("refs/heads/") or None
            if branch and not branch.startswith(f"{self.settings.branch_prefix}/"):
                branch = None  # never delete a branch orch did not name
            if branch and self._branch_owned(repo, branch, owned_branches):
                branch = None
            finding = self._report(
                "orphan-worktree",
                str(path),
                "a worktree under orch's root that no attempt owns",
                "remove it (saving unsaved work to the archive first)",
            )
            self._repair(
                finding, functools.partial(self._save_and_remove, repo, path, branch, path.name)
            )
        # directories under the repository's root that git does not know
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if child in registered or str(child) in owned_paths or child.name == pool.POOL_DIR:
                    continue
                if self._in_use(child):
                    continue
                finding = self._report(
                    "stray-directory",
                    str(child),
                    "not a registered worktree",
                    "move it into the archive (nothing is deleted)"
                    if _nonempty(child)
                    else "remove it (empty)",
                )
                self._repair(finding, functools.partial(self._move_aside, child))
        self._pool(repo)
        # branches with orch's prefix that no row owns
        for branch, tip in sorted(
            branches_with_prefix(self.git, repo, self.settings.branch_prefix).items()
        ):
            if branch in owned_branches:
                continue
            checked_out = any(
                e.get("branch") == f"refs/heads/{branch}" for e in self.git.list_worktrees(repo)
            )
            if checked_out:
                continue  # reported above as an orphan worktree, or someone's own checkout
            if self._branch_owned(repo, branch, owned_branches):
                continue
            finding = self._report(
                "orphan-branch",
                branch,
                f"at {tip[:12]}, no attempt owns it",
                "delete it (bundling commits no other ref keeps into the archive first)",
            )
            self._repair(
                finding,
                functools.partial(
                    self._save_and_remove, repo, None, branch, branch.replace("/", "-")
                ),
            )
        # git's own stale bookkeeping
        candidates = prune_candidates(self.git, repo)
        if candidates:
            finding = self._report(
                "prunable-worktrees", str(repo.root), "; ".join(candidates), "git worktree prune"
            )
            self._repair(finding, functools.partial(self._prune, repo))

    def _pool(self, repo: Repository) -> None:
        """Warm pool members that must not be handed out: removed (a member of another
        repository is moved into the archive; unsaved work is archived first)."""
        for member in pool.inspect(self.git, repo, self.settings):
            if member.problem is None:
                continue
            finding = self._report(
                "pool-member-damaged",
                str(member.path),
                member.problem,
                "remove it (saving anything unsaved to the archive first)",
            )
            self._repair(finding, functools.partial(self._remove_member, repo, member.path))

    def _remove_member(self, repo: Repository, path: Path) -> str | None:
        if not pool.take(path):
            return None  # a dispatch claimed it since it was checked: the attempt's now
        admin = worktree_admin_dir(path) if path.is_dir() else None
        if admin is None or not admin_of_repository(repo, admin):
            return pool.discard(self.git, repo, self.settings, path)
        self.git.repair_worktree(repo, path, check=False)
        saved = self._save_and_remove(repo, path, None, f"pool-{path.name}")
        pool.unmark(path)
        return saved
