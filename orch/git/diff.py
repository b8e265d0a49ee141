"""Diffs: what changed between a base commit and a tip (a commit, a tree, or a worktree's
files), the commits between them, and a worktree's state written as a tree.

Reading a worktree where an agent may be working never takes its ``index.lock``: every
read runs with ``--no-optional-locks``, and when the worktree's untracked files must show
(or its state be written as a tree) git works on a private copy of its index
(``GIT_INDEX_FILE`` pointing into a temporary directory, removed afterwards), never on
the worktree's own index. Names travel NUL-separated (``-z``) so that spaces, newlines
and bytes that are not UTF-8 survive (the runner decodes with surrogate escapes).
Nothing here writes a ref, a worktree's files or its index.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

from orch.errors import GitError
from orch.git.runner import Runner, last_line
from orch.git.worktrees import worktree_admin_dir
from orch.record import record

DiffFormat = Literal["patch", "stat", "name-only"]

# git's one-letter status of a raw diff entry, in the words orch prints
_STATUS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type-changed",
}


@record
class DiffRange:
    """What to diff: ``base`` against ``tip`` (a commit or tree), or against the files of
    the worktree at ``cwd`` when ``tip`` is None; ``env`` names a private index."""

    base: str
    tip: str | None
    git_dir: Path | None = None  # a diff of two commits or trees needs no worktree
    cwd: Path | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


@record
class FileChange:
    """One file an attempt changed, with its line counts."""

    path: str
    status: str  # added, modified, deleted, renamed, copied, type-changed
    additions: int | None  # None for a binary file
    deletions: int | None
    old_path: str | None = None  # where a renamed or copied file came from

    @property
    def binary(self) -> bool:
        return self.additions is None


@record
class CommitInfo:
    """One commit on an attempt's branch since its base."""

    sha: str
    subject: str
    author_name: str
    author_email: str
    date: str  # the author date, ISO 8601


@record
class PrivateIndex:
    """A private copy of a live worktree's index that git may rewrite."""

    env: dict[str, str]  # what points git at the copy (GIT_INDEX_FILE)
    nested_repositories: tuple[str, ...] = ()  # untracked repositories, left out


@record
class WorktreeTree:
    """A live worktree's files written as a tree object, without touching its index."""

    tree: str  # the id of the tree object holding the worktree's files
    nested_repositories: tuple[str, ...] = ()  # untracked repositories, left out


class Diffs(Runner):
    def _diff_args(
        self, where: DiffRange, options: list[str], paths: Sequence[str] = ()
    ) -> list[str]:
        git_dir = ["--git-dir", str(where.git_dir)] if where.git_dir is not None else []
        # paths are file names, never patterns: a name like '*.txt' or ':(glob)x' is itself
        literal = ["--literal-pathspecs"] if paths else []
        # -M: renames found whatever the user's diff.renames says; --end-of-options keeps
        # a commit or tree id from being read as an option
        tip = [where.tip] if where.tip is not None else []
        return [
            "--no-optional-locks",
            *literal,
            *git_dir,
            "diff",
            "-M",
            *options,
            "--end-of-options",
            where.base,
            *tip,
            "--",  # never a path that happens to be named like the base
            *paths,
        ]

    def diff_output(
        self, where: DiffRange, fmt: DiffFormat, *, color: bool, stat_width: int | None = None
    ) -> bytes:
        """``git diff`` of ``where`` as git prints it (a patch, ``--stat`` or
        ``--name-only``), byte for byte; ``color``: with git's colours."""
        args = self._diff_args(where, format_options(fmt, color, stat_width))
        return self.output_bytes(args, cwd=where.cwd, env=where.env)

    def diff_into(
        self,
        where: DiffRange,
        fmt: DiffFormat,
        out: int,
        *,
        color: bool,
        stat_width: int | None = None,
    ) -> None:
        """``diff_output`` written by git straight to the file descriptor ``out`` (a
        large diff is never held in memory, and a pager shows its start at once)."""
        args = self._diff_args(where, format_options(fmt, color, stat_width))
        self.run_into(args, out, cwd=where.cwd, env=where.env)

    def file_patch(self, where: DiffRange, paths: Sequence[str], limit: int) -> tuple[bytes, bool]:
        """The plain patch of ``where`` limited to ``paths`` (a file, or a renamed file's
        two names), at most ``limit`` bytes of it, and whether there was more. git's own
        patch, never an external diff program or a text conversion the user configured:
        its reader parses it."""
        args = self._diff_args(where, ["--color=never", "--no-ext-diff", "--no-textconv"], paths)
        return self.output_head(args, limit, cwd=where.cwd, env=where.env)

    def changed_files(self, where: DiffRange) -> list[FileChange]:
        """Every changed file of ``where`` with its status and line counts, from one git
        process (``--raw`` and ``--numstat`` together, in the same order)."""
        out = self.run(
            self._diff_args(where, ["--raw", "--numstat", "-z", "--color=never"]),
            cwd=where.cwd,
            env=where.env,
        ).stdout
        return parse_raw_numstat(out)

    def commits_between(self, git_dir: Path, base: str, tip: str) -> list[CommitInfo]:
        """The commits ``tip`` has that ``base`` has not, newest first."""
        out = self.run(
            [
                "--git-dir",
                str(git_dir),
                "log",
                "-z",
                "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
                "--end-of-options",
                f"{base}..{tip}",
                "--",
            ]
        ).stdout
        commits = []
        for entry in out.split("\0"):
            # a message or name in bytes that are not UTF-8 (a commit without an encoding
            # header) is text to show: its bad bytes become replacement characters
            fields = _shown(entry.strip("\n")).split("\x1f")
            if len(fields) == 5:
                sha, name, email, date, subject = fields
                commits.append(CommitInfo(sha, subject, name, email, date))
        return commits

    @contextlib.contextmanager
    def private_index(self, worktree: Path, *, untracked: bool) -> Iterator[PrivateIndex]:
        """A copy of the worktree's index, for git to work on instead of the real one;
        ``untracked``: with the untracked, not ignored, files added as intent-to-add (so
        that a diff against the worktree shows them as new files). The copy is removed
        afterwards.

        The copy is a hard link to the index file when the temporary directory is on the
        same file system, else a plain read of it: git replaces that file by a rename and
        never writes it in place, so either is one whole version of it, git's writes to
        the copy replace the link and never reach the worktree's index, and the agent's
        ``git add`` never waits."""
        source = index_file(worktree)
        if source is None:
            raise GitError(f"the worktree {worktree} has no index (it was never checked out)")
        with tempfile.TemporaryDirectory(prefix="orch-index-") as tmp:
            copy = Path(tmp) / "index"
            try:
                _link_or_copy(source, copy)
            except FileNotFoundError as exc:
                raise GitError(f"the worktree {worktree} has no index") from exc
            env = {"GIT_INDEX_FILE": str(copy)}
            nested: tuple[str, ...] = ()
            if untracked:
                nested = self.add_untracked(worktree, env, intent_only=True)
            yield PrivateIndex(env, nested)

    def add_untracked(
        self, worktree: Path, env: Mapping[str, str], *, intent_only: bool
    ) -> tuple[str, ...]:
        """Add the untracked, not ignored, files of ``worktree`` to the private index
        ``env`` names; ``intent_only``: as intent-to-add (no content is stored). Returns
        the untracked repositories nested in it (``dir/``), which are not files and are
        left out.

        A file the agent deletes between the listing and the add fails the add: the
        listing is taken again, once. A file outside a sparse checkout's paths is still
        the agent's work: git refuses it without ``--sparse`` (git 2.35+, so only then)."""
        sparse: list[str] = []
        for _ in range(3):
            out = self.run(
                ["--no-optional-locks", "ls-files", "-z", "--others", "--exclude-standard"],
                cwd=worktree,
                env=env,
            ).stdout
            names = [n for n in out.split("\0") if n]
            nested = tuple(n for n in names if n.endswith("/"))
            files = [n for n in names if not n.endswith("/")]
            if not files:
                return nested
            proc = self.run(
                [
                    "--literal-pathspecs",
                    "add",
                    *sparse,
                    *(["--intent-to-add"] if intent_only else []),
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                cwd=worktree,
                input="\0".join(files) + "\0",
                env=env,
                check=False,
            )
            if proc.returncode == 0:
                return nested
            if "sparse-checkout" in proc.stderr and not sparse:
                sparse = ["--sparse"]
        raise GitError(f"git add of the untracked files failed: {last_line(proc.stderr)}")

    def worktree_tree(self, worktree: Path) -> WorktreeTree:
        """The worktree's files (tracked and untracked, not ignored, without untracked
        nested repositories) written as a tree object, through a private index; returns
        the tree's id and the nested repositories left out. Writes objects to the
        repository's object store (unreachable ones, which git's gc removes in time),
        never a ref or the worktree's own index."""
        with self.private_index(worktree, untracked=False) as index:
            self.run(["add", "--update"], cwd=worktree, env=index.env)
            nested = self.add_untracked(worktree, index.env, intent_only=False)
            tree = self.run(["write-tree"], cwd=worktree, env=index.env).stdout.strip()
            return WorktreeTree(tree, nested)


def format_options(fmt: DiffFormat, color: bool, stat_width: int | None) -> list[str]:
    options = ["--color=always" if color else "--color=never"]
    if fmt == "stat":
        options.append(f"--stat={stat_width}" if stat_width else "--stat")
    elif fmt == "name-only":
        options.append("--name-only")
    return options


def _link_or_copy(source: Path, dest: Path) -> None:
    """A hard link (no bytes read) when ``dest`` is on the same file system, else a copy.
    link(2) can fail with ENOENT while a rename replaces ``source`` (an agent's git
    writing its index), where open(2) sees the old or the new file: the copy is the
    answer to that too, and raises FileNotFoundError when there is no file."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _shown(text: str) -> str:
    """git's output (decoded with surrogate escapes) as text to show."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def index_file(worktree: Path) -> Path | None:
    """The worktree's own index file, if it has one."""
    admin = worktree_admin_dir(worktree)
    path = (admin if admin is not None else worktree / ".git") / "index"
    return path if path.is_file() else None


def parse_raw_numstat(out: str) -> list[FileChange]:
    """Parse ``git diff --raw --numstat -z``: every raw entry (``:modes ids status\\0path``
    and a second path for a rename or copy), then every numstat entry in the same order
    (``adds\\tdels\\tpath`` or, for a rename or copy, ``adds\\tdels\\t\\0old\\0new``)."""
    fields = out.split("\0")
    raw: list[tuple[str, str, str | None]] = []
    counts: list[tuple[int | None, int | None]] = []
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if not field:
            continue
        if field.startswith(":"):
            letter = field.split()[-1][:1]
            if letter in "RC":
                raw.append((letter, fields[i + 1], fields[i]))
                i += 2
            else:
                raw.append((letter, fields[i], None))
                i += 1
            continue
        adds, dels, rest = field.split("\t", 2)
        if not rest:
            i += 2  # a rename's two names follow as fields of their own
        counts.append((None, None) if adds == "-" else (int(adds), int(dels)))
    if len(counts) != len(raw):
        raise GitError("git diff printed raw and numstat entries that do not match")
    return [
        FileChange(
            path=path,
            status=_STATUS.get(letter, "modified"),
            additions=adds,
            deletions=dels,
            old_path=old,
        )
        for (letter, path, old), (adds, dels) in zip(raw, counts, strict=True)
    ]
