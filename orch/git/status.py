"""Status: what a worktree holds that its HEAD does not (porcelain parsing, dirty paths,
a fingerprint to notice change, and the work that removing it would lose).

Reads run with ``--no-optional-locks`` so they never take ``index.lock`` from under an
agent working there; only ``settle_status`` (a pool member nobody uses yet) may write the
index. Nothing here changes a worktree's files or a ref.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from orch.git.refs import Repository
from orch.git.runner import Pending, Runner
from orch.git.worktrees import worktree_admin_dir
from orch.record import record


@record
class DirtyPath:
    """One path ``git status --porcelain`` reports."""

    code: str  # the two-letter porcelain status, '??' for untracked
    path: str


PendingDirtyCheck = Pending[list[DirtyPath] | None]  # None: git could not tell


class Status(Runner):
    def dirty_paths(self, worktree: Path) -> list[DirtyPath]:
        """Tracked, staged and untracked-not-ignored changes, read without taking locks."""
        out = self.run(
            ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=normal"],
            cwd=worktree,
        ).stdout
        return parse_porcelain(out)

    def start_dirty_check(self, worktree: Path, *, yield_cpu: bool = False) -> PendingDirtyCheck:
        """Start the dirty check in the background (it can overlap the checkout).

        Single-threaded: git's parallel index refresh would take the cores this process
        is importing and checking out on (at 50k files it slowed the import by ~50 ms,
        against ~3 ms without the threads). ``yield_cpu``: a check whose answer is wanted
        only later runs at the lowest priority, so that it takes only CPU time the caller
        does not want (at 50k files it took ~35 ms off a dispatch on a 2-core machine)."""
        return self._start(
            [
                "-c",
                "core.preloadIndex=false",
                "--no-optional-locks",
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=normal",
            ],
            lambda returncode, out: parse_porcelain(out) if returncode == 0 else None,
            cwd=worktree,
            yield_cpu=yield_cpu,
        )

    def settle_status(self, worktree: Path, *, untracked_cache: bool) -> list[DirtyPath] | None:
        """The dirty paths of a worktree nobody else uses, letting git rewrite its index
        (fresh stat data) and, with ``untracked_cache``, keep an untracked cache in it;
        None when git failed."""
        proc = self.run(
            [
                *(["-c", "core.untrackedCache=true"] if untracked_cache else []),
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=normal",
            ],
            cwd=worktree,
            check=False,
        )
        return parse_porcelain(proc.stdout) if proc.returncode == 0 else None

    def tracks(self, path: Path) -> bool:
        """Whether the repository around ``path`` tracks that file (False outside git)."""
        proc = self.run(
            ["--no-optional-locks", "ls-files", "--error-unmatch", "--", path.name],
            cwd=path.parent,
            check=False,
        )
        return proc.returncode == 0


def parse_porcelain(out: str) -> list[DirtyPath]:
    """Parse ``git status --porcelain=v1 -z``; a rename's source entry is skipped."""
    result: list[DirtyPath] = []
    fields = out.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, name = entry[:2], entry[3:]
        result.append(DirtyPath(code=code, path=name))
        if code[0] in "RC" or code[1] in "RC":
            # the rename/copy source follows as its own field (a worktree-side rename,
            # " R", shows after `git add -N`)
            i += 1
    return result


def ignored_entries(git: Runner, root: Path) -> list[str]:
    """Ignored files and directories of the main worktree (a fully ignored directory is
    one entry ending in '/'), read without taking locks."""
    out = git.run(
        [
            "--no-optional-locks",
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ],
        cwd=root,
    ).stdout
    return [p for p in out.split("\0") if p]


def fingerprint(git: Runner, worktree: Path) -> dict[str, tuple[str, int, int]]:
    """What a worktree looks like now: HEAD, and each changed path with its status, size
    and modification time (so a second edit of an already dirty file shows too)."""
    head = git.run(
        ["--no-optional-locks", "rev-parse", "-q", "--verify", "HEAD"], cwd=worktree, check=False
    ).stdout.strip()
    out = git.run(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        cwd=worktree,
    ).stdout
    result: dict[str, tuple[str, int, int]] = {"HEAD": (head, 0, 0)}
    for entry in parse_porcelain(out):
        try:
            st = (worktree / entry.path).lstat()
            result[entry.path] = (entry.code, st.st_size, st.st_mtime_ns)
        except OSError:
            result[entry.path] = (entry.code, -1, -1)
    return result


@record
class UnsavedWork:
    """What removing a worktree and its branch would lose."""

    dirty: tuple[DirtyPath, ...]  # uncommitted changes and untracked, not ignored, files
    unmerged_commits: int  # commits reachable only from this branch / worktree HEAD
    head: str | None  # the worktree's HEAD commit (None when the worktree is gone)

    @property
    def empty(self) -> bool:
        return not self.dirty and not self.unmerged_commits

    def describe(self) -> str:
        parts = []
        if self.dirty:
            parts.append(f"{len(self.dirty)} uncommitted path{'s' if len(self.dirty) != 1 else ''}")
        if self.unmerged_commits:
            n = self.unmerged_commits
            parts.append(f"{n} commit{'s' if n != 1 else ''} on no other branch or remote")
        return " and ".join(parts) or "nothing"


def _never_checked_out(worktree: Path, admin: Path) -> bool:
    """A worktree registered but never populated (a dispatch killed between `worktree add
    --no-checkout` and the checkout): no index, nothing but git's pointer file. Its
    status lists every file as deleted, which is not anybody's work."""
    try:
        return not (admin / "index").exists() and set(os.listdir(worktree)) <= {".git"}
    except OSError:
        return False


def unsaved_work(
    git: Runner,
    repo: Repository,
    worktree: Path | None,
    branch: str | None,
    saved: Sequence[str] = (),
) -> UnsavedWork:
    """Uncommitted changes in ``worktree`` and commits nothing else keeps.

    A commit is safe when another branch or a remote-tracking ref contains it (a branch
    merged into its base is therefore always safe), or when one of ``saved`` does (the
    attempt's commit that landed: its work is in the target even after a squash).
    Read without taking locks.
    """
    dirty: list[DirtyPath] = []
    head = None
    admin = worktree_admin_dir(worktree) if worktree is not None and worktree.is_dir() else None
    if worktree is not None and admin is not None:
        if not _never_checked_out(worktree, admin):
            out = git.run(
                ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                cwd=worktree,
            ).stdout
            dirty = parse_porcelain(out)
        proc = git.run(
            ["--no-optional-locks", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=worktree,
            check=False,
        )
        head = proc.stdout.strip() or None
    tips = [t for t in (head, f"refs/heads/{branch}" if branch else None) if t]
    tips = [
        t
        for t in tips
        if git.run(
            ["--git-dir", str(repo.common_dir), "rev-parse", "--verify", "-q", t], check=False
        ).returncode
        == 0
    ]
    unmerged = 0
    if tips:
        # --exclude patterns for --branches are relative to refs/heads/
        exclude = [f"--exclude={branch}"] if branch else []
        out = git.run(
            [
                "--git-dir",
                str(repo.common_dir),
                "rev-list",
                "--count",
                # a saved commit git has since pruned counts for nothing, not as an error
                *(["--ignore-missing"] if saved else []),
                *tips,
                "--not",
                *exclude,
                "--branches",
                "--remotes",
                *saved,
            ],
        ).stdout
        unmerged = int(out.strip() or 0)
    return UnsavedWork(dirty=tuple(dirty), unmerged_commits=unmerged, head=head)
