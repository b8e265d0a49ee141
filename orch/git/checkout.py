"""Checking files out in a worktree: moving a detached worktree to another commit (only
the files that differ), pointing its HEAD at a branch, the post-checkout hook, sparse
checkout, submodules, and the patterns orch adds to ``info/exclude``.

Every command here changes one worktree's files or HEAD; none registers or removes a
worktree (orch.git.worktrees) or moves a branch (orch.git.refs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from orch.errors import GitError
from orch.fslock import file_lock
from orch.git.refs import Refs, Repository


def checkout_env(lfs_skip_smudge: bool) -> dict[str, str]:
    """Extra environment for commands that check files out."""
    return {"GIT_LFS_SKIP_SMUDGE": "1"} if lfs_skip_smudge else {}


class Checkout(Refs):
    def attach_head(self, path: Path, branch: str, detached_at: str) -> None:
        """Point the HEAD of a worktree detached at ``detached_at`` at ``branch`` (already
        at the commit it has checked out), as `git checkout` would record it."""
        self.run(
            [
                "symbolic-ref",
                "-m",
                f"checkout: moving from {detached_at} to {branch}",
                "HEAD",
                f"refs/heads/{branch}",
            ],
            cwd=path,
        )

    def switch_files(self, path: Path, old: str, new: str, env: Mapping[str, str]) -> None:
        """Rewrite only the files that differ between ``old`` (checked out, clean) and
        ``new`` (a two-way ``read-tree -m -u``); HEAD is left for the caller to move."""
        self.run(["read-tree", "-m", "-u", old, new], cwd=path, env=env)

    def checkout_detached(self, path: Path, commit: str, env: Mapping[str, str]) -> None:
        """Detach ``path``'s HEAD at ``commit``, rewriting only the files that differ."""
        self.run(["checkout", "-q", "--detach", commit], cwd=path, env=env)

    def remove_untracked_and_ignored(self, path: Path) -> None:
        """Delete every untracked file in ``path``, ignored ones and nested repositories
        too (``clean -ffdx``): only for a worktree whose work is saved or not wanted."""
        self.run(["clean", "-ffdxq"], cwd=path)

    def post_checkout(
        self, path: Path, old: str, new: str, env: Mapping[str, str], hooks: Path | None = None
    ) -> None:
        """Run the post-checkout hook as `git checkout` would. ``hooks``: the directory
        the repository's hooks are in, when the caller has read it
        (``start_repository_facts``); a missing hook there then costs no git process.
        None: git looks (``core.hooksPath`` may be set)."""
        if hooks is not None and not os.path.lexists(hooks / "post-checkout"):
            return
        self.run(
            ["hook", "run", "--ignore-missing", "post-checkout", "--", old, new, "1"],
            cwd=path,
            env=env,
        )

    def update_submodules(self, path: Path, env: Mapping[str, str]) -> None:
        """Initialise and check out the submodules the worktree's commit records."""
        self.run(["submodule", "update", "--init", "--recursive", "--quiet"], cwd=path, env=env)

    def set_sparse(self, repo: Repository, path: Path, paths: Sequence[str]) -> None:
        """Cone-mode sparse checkout of ``paths`` in a worktree not yet populated.

        The first one in a repository turns on ``extensions.worktreeConfig`` in the shared
        config; that write is serialised so that parallel dispatches do not fight over
        ``config.lock``, and later ones find it set and write only their own config.
        """
        args = ["sparse-checkout", "set", "--cone", "--", *paths]
        if self.config_value(repo, "extensions.worktreeConfig") == "true":
            self.run(args, cwd=path)
            return
        with file_lock(repo.orch_dir / "config.lock", self.lock_timeout, "repository config"):
            self.run(args, cwd=path)


def add_excludes(repo: Repository, lines: list[str], lock_timeout: float = 30.0) -> None:
    """Add patterns to the repository's ``info/exclude`` (shared by all its worktrees) once,
    so that files orch puts into worktrees are never committed."""
    exclude = repo.common_dir / "info" / "exclude"

    def missing() -> list[str]:
        try:
            present = set(exclude.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            present = set()
        return [ln for ln in lines if ln not in present]

    if not missing():
        return
    try:
        with file_lock(repo.orch_dir / "exclude.lock", lock_timeout, "info/exclude"):
            todo = missing()
            if not todo:
                return
            exclude.parent.mkdir(parents=True, exist_ok=True)
            text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
            prefix = "" if not text or text.endswith("\n") else "\n"
            with exclude.open("a", encoding="utf-8") as fh:
                fh.write(prefix + "# orch: files orch puts into worktrees, never committed\n")
                fh.write("".join(f"{ln}\n" for ln in todo))
    except OSError as exc:
        raise GitError(f"cannot update {exclude}: {exc.strerror}") from exc
