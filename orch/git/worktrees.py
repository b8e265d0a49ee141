"""Worktrees: registering and populating one, removing it, git's bookkeeping of it
(list, verify, repair, lock, unlock, prune), and reading git's administrative files
(``.git/worktrees/<name>``) without a git process.

Registration (``git worktree add``) is serialised per repository by a cross-process lock
because concurrent ``git worktree add`` is not safe (see DESIGN.md §5). Nothing here
decides whether removing a worktree loses work: the caller has checked
(orch.workspace.removal).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from orch import private
from orch.errors import GitError
from orch.fslock import file_lock, slot_lock
from orch.git.checkout import Checkout, checkout_env
from orch.git.refs import Repository
from orch.git.runner import Runner
from orch.record import record


class Worktrees(Checkout):
    def add_worktree(
        self,
        repo: Repository,
        path: Path,
        branch: str | None,
        commit: str,
        *,
        sparse: Sequence[str] = (),
        submodules: bool = False,
        lfs_skip_smudge: bool = False,
        hook: bool = True,
        hooks: Path | None = None,
    ) -> None:
        """Register and populate a worktree for an existing branch (None: detached at
        ``commit``, as a pool member is). ``hook``: run post-checkout (a worktree made
        ahead of its branch runs it once its HEAD is on the branch); ``hooks``: where the
        repository's hooks are, if known (see ``post_checkout``).

        Registration (``worktree add --no-checkout``, a few ms) runs under a per-repository
        lock and is verified; populating the files runs outside it, at most one checkout
        per core at a time. ``sparse`` limits the checkout to those directories (cone mode).
        """
        private.make_dir(path.parent, fix_existing=False)
        target = [branch] if branch is not None else ["--detach", commit]
        with file_lock(repo.orch_dir / "worktree.lock", self.lock_timeout, "worktree registration"):
            for tries_left in (1, 0):
                self.run(
                    ["worktree", "add", "--no-checkout", "--quiet", str(path), *target],
                    cwd=repo.root,
                )
                if worktree_registered(path):
                    break
                self._unregister(repo, path)
                if not tries_left:
                    raise GitError(f"git did not register the worktree {path}")
        if sparse:
            self.set_sparse(repo, path, sparse)
        env = checkout_env(lfs_skip_smudge)
        slots = max(1, os.cpu_count() or 1)
        with slot_lock(repo.orch_dir / "checkout-slots", slots, self.lock_timeout * 4, "checkout"):
            self.run(["reset", "--hard", "--quiet", "--no-recurse-submodules"], cwd=path, env=env)
        # `worktree add` would have run post-checkout; hooks such as git-lfs depend on it.
        if hook:
            self.post_checkout(path, "0" * len(commit), commit, env, hooks)
        if submodules:
            self.update_submodules(path, env)

    def remove_worktree(self, repo: Repository, path: Path) -> None:
        """Unregister and delete a worktree orch itself just created (rollback only)."""
        if path.exists():
            self.run(
                ["worktree", "remove", "--force", "--force", str(path)], cwd=repo.root, check=False
            )
        self._unregister(repo, path)

    def _unregister(self, repo: Repository, path: Path) -> None:
        admin = worktree_admin_dir(path)
        if path.exists() and admin is None:
            # registration never completed: the directory holds nothing of the user's
            _rmtree(path)
        self.prune_worktrees(repo, check=False)

    def list_worktrees(self, repo: Repository) -> list[dict[str, str]]:
        out = self.run(["worktree", "list", "--porcelain"], cwd=repo.root).stdout
        return parse_worktree_list(out)

    def lock_worktree(self, repo: Repository, path: Path, reason: str) -> None:
        """``git worktree lock``: git then keeps its bookkeeping even while it is missing."""
        self.run(["worktree", "lock", "--reason", reason, str(path)], cwd=repo.root)

    def unlock_worktree(self, repo: Repository, path: Path, *, check: bool = True) -> None:
        """``git worktree unlock`` (``check=False``: whether or not it was locked)."""
        self.run(["worktree", "unlock", str(path)], cwd=repo.root, check=check)

    def repair_worktree(self, repo: Repository, path: Path, *, check: bool = True) -> None:
        """Point git's bookkeeping at a worktree that moved to ``path`` (and back)."""
        self.run(["worktree", "repair", str(path)], cwd=repo.root, check=check)

    def prune_worktrees(self, repo: Repository, *, check: bool = True) -> None:
        """Drop git's bookkeeping of worktrees whose directory is gone (not locked ones)."""
        self.run(["worktree", "prune"], cwd=repo.root, check=check)


def parse_worktree_list(out: str) -> list[dict[str, str]]:
    """``git worktree list --porcelain``: one dict per worktree, the main one first; each
    line's first word is a key, the rest its value (``""`` for a bare flag: ``bare``,
    ``detached``, or ``locked`` with no reason)."""
    entries = []
    for block in out.strip().split("\n\n"):
        entry: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            entry[key] = value
        entries.append(entry)
    return entries


def force_remove_worktree(git: Worktrees, repo: Repository, path: Path) -> None:
    """Remove a worktree orch has checked is safe to remove (locked or dirty alike)."""
    if path.exists():
        proc = git.run(
            ["worktree", "remove", "--force", "--force", str(path)], cwd=repo.root, check=False
        )
        if proc.returncode != 0 and path.exists():
            admin = worktree_admin_dir(path)
            _rmtree(path)
            if admin is not None:
                _rmtree(admin)
    git.prune_worktrees(repo, check=False)


def prune_candidates(git: Runner, repo: Repository) -> list[str]:
    proc = git.run(["worktree", "prune", "--dry-run", "--verbose"], cwd=repo.root)
    # git prints what it would prune on stderr
    out = proc.stdout + proc.stderr
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def _rmtree(path: Path) -> None:
    import shutil  # imported when needed: it pulls in compression modules at start-up

    shutil.rmtree(path, ignore_errors=True)


# -- git's administrative files, read without a git process ---------------------------------


def worktree_admin_dir(path: Path) -> Path | None:
    """The ``.git/worktrees/<name>`` directory a worktree's ``.git`` file points at."""
    try:
        text = (path / ".git").read_text()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    admin = Path(text[len("gitdir: ") :].strip())
    return admin if admin.is_absolute() else (path / admin).resolve()


def worktree_registered(path: Path) -> bool:
    """Check the bookkeeping that `git worktree list`, `prune` and `fsck` rely on."""
    admin = worktree_admin_dir(path)
    if admin is None:
        return False
    try:
        gitdir = Path((admin / "gitdir").read_text().strip())
        return (
            (admin / "commondir").is_file()
            and (admin / "HEAD").is_file()
            and (gitdir.resolve() == (path / ".git").resolve())
        )
    except OSError:
        return False


def admin_of_repository(repo: Repository, admin: Path) -> bool:
    """Whether ``admin`` (a worktree's administrative directory) is in ``repo``'s
    ``worktrees`` directory, i.e. the worktree is this repository's."""
    return admin.resolve().parent == (repo.common_dir / "worktrees").resolve()


@record
class WorktreeRecord:
    """What git's administrative files say about a directory (cheap file reads). A field
    is None when its file could not be read (or an earlier one says there is none)."""

    is_dir: bool
    admin: Path | None  # the .git/worktrees/<name> its .git file points at
    of_repository: bool  # that directory is the repository's own
    known: bool  # and it exists: git still knows the worktree
    lock_reason: str | None  # why `git worktree lock` locked it; None: not locked
    head: str | None  # what its HEAD file holds: a commit, or "ref: <branch>"
    recorded: Path | None  # the .git file git's bookkeeping points back at

    def points_back(self, path: Path) -> bool:
        """Whether git's bookkeeping points back at the worktree at ``path``."""
        return self.recorded is not None and self.recorded.resolve() == (path / ".git").resolve()


def read_worktree_record(repo: Repository, path: Path) -> WorktreeRecord:
    if not path.is_dir():
        return WorktreeRecord(False, None, False, False, None, None, None)
    admin = worktree_admin_dir(path)
    if admin is None:
        return WorktreeRecord(True, None, False, False, None, None, None)
    ours = admin_of_repository(repo, admin)
    known = ours and admin.is_dir()
    return WorktreeRecord(
        is_dir=True,
        admin=admin,
        of_repository=ours,
        known=known,
        lock_reason=_read(admin / "locked") if known else None,
        head=_read(admin / "HEAD") if known else None,
        recorded=Path(r) if known and (r := _read(admin / "gitdir")) is not None else None,
    )


def worktree_head(path: Path) -> str | None:
    """What the worktree's HEAD file holds (a commit when detached), read as a file."""
    admin = worktree_admin_dir(path)
    return _read(admin / "HEAD") if admin else None


def index_stat(path: Path) -> os.stat_result | None:
    """The worktree's index file's status (its size and when git last wrote it)."""
    admin = worktree_admin_dir(path)
    try:
        return (admin / "index").stat() if admin else None
    except OSError:
        return None


def _read(file: Path) -> str | None:
    try:
        return file.read_text().strip()
    except OSError:
        return None
