"""The git adapter: the only module that runs git.

Every write goes through the git CLI. Read-only commands in a worktree an agent may be
using run with ``--no-optional-locks`` so they never take ``index.lock`` from under it.
Git's own lock files are expected to be busy when many orch processes share a repository:
a command that fails only because a lock is held is retried with backoff, bounded by
``lock_timeout``, and only then reported (``LockBusy``). Worktree registration is
serialised per repository by a cross-process lock because concurrent ``git worktree add``
is not safe (see DESIGN.md §5).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from orch.errors import (
    BareRepository,
    BaseRefNotACommit,
    EmptyRepository,
    GitError,
    LockBusy,
    NotAGitRepository,
    UnknownBaseRef,
    WorkspaceError,
    describe_os_error,
)
from orch.fslock import file_lock, slot_lock

_LOCK_BUSY = re.compile(
    r"Unable to create '[^']*\.lock': File exists"
    r"|could not lock config file"
    r"|Another git process seems to be running",
)
T = TypeVar("T")
_HEX_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a full SHA-1 or SHA-256 object id


HOOKS_FACT_SECONDS = 30.0  # how long a read of core.hooksPath is trusted


@dataclasses.dataclass(frozen=True)
class Repository:
    """A repository as orch uses it: where to run git, and what identifies it."""

    root: Path  # the main worktree
    common_dir: Path  # the shared .git directory: refs, objects, worktree bookkeeping
    invoked_from_linked_worktree: bool
    invoked_root: Path | None = None  # the linked worktree orch was run in, if any

    @property
    def orch_dir(self) -> Path:
        """orch's own bookkeeping inside the repository (locks only; git ignores it)."""
        return self.common_dir / "orch"


@dataclasses.dataclass(frozen=True)
class DirtyPath:
    code: str  # the two-letter porcelain status, '??' for untracked
    path: str


class Pending(Generic[T]):
    """A git command running in the background; ``parse`` makes its result from the exit
    code and the output."""

    def __init__(self, proc: subprocess.Popen[str], parse: Callable[[int, str], T]) -> None:
        self._proc = proc
        self._parse = parse
        self._result: tuple[T] | None = None

    def result(self) -> T:
        if self._result is None:
            out, _err = self._proc.communicate()
            self._result = (self._parse(self._proc.returncode, out),)
        return self._result[0]

    def close(self) -> None:
        """Wait for the command if nobody asked for its result (reaps the process)."""
        self.result()

    def cancel(self) -> None:
        """Stop a command whose answer is no longer wanted (nothing if it was read): its
        result is then what git says when killed."""
        if self._result is None:
            self._proc.kill()
            self.result()


PendingDirtyCheck = Pending[list[DirtyPath] | None]  # None: git could not tell
PendingRepositoryUrl = Pending[str]


class Git:
    def __init__(self, lock_timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.lock_timeout = lock_timeout
        base = dict(os.environ if env is None else env)
        # orch parses git's messages; keep them in English and never open an editor/pager.
        base.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"})
        self._env = base
        # repositories whose config set no core.hooksPath when repository_url read it (and
        # when): their hooks are in <common dir>/hooks, so a missing hook needs no git
        # process. Trusted for HOOKS_FACT_SECONDS only, i.e. within the dispatch that read
        # it: a long-lived Git (`orch work`) must see a core.hooksPath set later.
        self._default_hooks: dict[Path, float] = {}

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        cwd: Path | None = None,
        *,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``git args``; retry while git reports a busy lock; raise ``GitError``."""
        cmd = ["git", *args]
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        full_env = {**self._env, **(env or {})}
        while True:
            try:
                # file names and file contents need not be UTF-8: never fail decoding them
                proc = subprocess.run(
                    cmd,
                    cwd=cwd,
                    input=input,
                    capture_output=True,
                    text=True,
                    errors="surrogateescape",
                    env=full_env,
                )
            except FileNotFoundError as exc:
                raise GitError("git is not installed or not on PATH") from exc
            if proc.returncode == 0 or not check:
                return proc
            if _LOCK_BUSY.search(proc.stderr):
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"git lock stayed busy for {self.lock_timeout:g}s: "
                        + _last_line(proc.stderr)
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            raise GitError(f"git {' '.join(args[:2])} failed: {_last_line(proc.stderr)}")

    def output_bytes(self, args: Sequence[str], cwd: Path | None = None) -> bytes:
        """Run a read-only ``git args`` and return its output byte for byte (no decoding,
        no newline translation: a patch must apply to files with any encoding or CRLF)."""
        try:
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=self._env)
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH") from exc
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise GitError(f"git {' '.join(args[:2])} failed: {_last_line(stderr)}")
        return proc.stdout

    # -- discovery -------------------------------------------------------------------------

    def discover(self, path: Path) -> Repository:
        """Find the repository containing ``path``; refuse bare and non-repositories."""
        if not path.exists():
            raise NotAGitRepository(f"not a git repository: {path} does not exist")
        if not path.is_dir():
            raise NotAGitRepository(f"not a git repository: {path} is not a directory")
        ask = [
            "rev-parse",
            "--path-format=absolute",
            "--is-bare-repository",
            "--is-inside-work-tree",
            "--git-dir",
            "--git-common-dir",
        ]
        # one git process on the usual path: in a work tree --show-toplevel answers too
        # (outside one it fails, and the four answers above say why)
        proc = self.run([*ask, "--show-toplevel"], cwd=path, check=False)
        toplevel = None
        if proc.returncode == 0:
            toplevel = Path(proc.stdout.splitlines()[4])
        else:
            proc = self.run(ask, cwd=path, check=False)
        if proc.returncode != 0:
            if "not a git repository" in proc.stderr:
                raise NotAGitRepository(f"not a git repository: {path}")
            raise GitError(f"cannot inspect {path}: {_last_line(proc.stderr)}")
        is_bare, inside, git_dir, common_dir = proc.stdout.splitlines()[:4]
        if is_bare == "true":
            raise BareRepository(
                f"{path} is a bare repository: orch dispatches from a repository "
                "with a main worktree"
            )
        if inside != "true":
            raise NotAGitRepository(f"{path} is inside a .git directory, not a work tree")
        common = Path(common_dir)
        linked = Path(git_dir) != common
        toplevel = toplevel or self._toplevel(path)
        return Repository(
            root=self._main_worktree(path, common) if linked else toplevel,
            common_dir=common,
            invoked_from_linked_worktree=linked,
            invoked_root=toplevel if linked else None,
        )

    def _toplevel(self, path: Path) -> Path:
        out = self.run(["rev-parse", "--show-toplevel"], cwd=path).stdout.strip()
        return Path(out)

    def _main_worktree(self, path: Path, common: Path) -> Path:
        out = self.run(["worktree", "list", "--porcelain"], cwd=path).stdout
        first = out.split("\n\n", 1)[0].splitlines()
        if "bare" in first:
            raise BareRepository(
                f"the main repository {common} is bare: orch dispatches from a main worktree"
            )
        return Path(first[0].removeprefix("worktree "))

    # -- refs ------------------------------------------------------------------------------

    def resolve_commit(self, repo: Repository, ref: str) -> str:
        """Resolve ``ref`` to a commit SHA once; say plainly what is wrong if it cannot."""
        common = ["--git-dir", str(repo.common_dir)]
        verify = [*common, "rev-parse", "--verify", "--quiet", "--end-of-options"]
        commit = self.run([*verify, f"{ref}^{{commit}}"], check=False)
        if commit.returncode == 0:
            return commit.stdout.strip()  # the usual case: one git process
        # say what is wrong: no such ref, an empty repository, or not a commit
        proc = self.run([*verify, ref], check=False)
        if proc.returncode != 0:
            if ref == "HEAD" and self._head_is_unborn(repo):
                raise EmptyRepository(
                    f"the repository {repo.root} has no commits yet: commit something first"
                )
            raise UnknownBaseRef(f"unknown base ref {ref!r} in {repo.root}")
        oid = proc.stdout.strip()
        peeled = self.run([*verify, f"{oid}^{{commit}}"], check=False)
        if peeled.returncode != 0:
            kind = self.run([*common, "cat-file", "-t", oid], check=False).stdout.strip()
            if not kind:
                # rev-parse --verify accepts any full-length hex id without looking it up
                raise UnknownBaseRef(f"unknown base ref {ref!r} in {repo.root}")
            raise BaseRefNotACommit(
                f"base ref {ref!r} names a {kind or 'non-commit object'}, not a commit"
            )
        return peeled.stdout.strip()

    def resolve_base(self, repo: Repository, ref: str) -> tuple[str, bool]:
        """``ref``'s commit and whether that commit has a ``.gitmodules``, from one git
        process (``resolve_commit`` says what is wrong when ``ref`` is not a commit)."""
        if ref.isprintable() and ref.strip() == ref:  # one line of cat-file's input
            proc = self.run(
                ["--git-dir", str(repo.common_dir), "cat-file", "--batch-check"],
                input=f"{ref}^{{commit}}\n{ref}^{{commit}}:.gitmodules\n",
                check=False,
            )
            lines = proc.stdout.splitlines()
            if proc.returncode == 0 and len(lines) == 2:
                commit, _, kind = lines[0].partition(" ")
                if kind.startswith("commit ") and _HEX_ID.fullmatch(commit):
                    return commit, not lines[1].endswith(" missing")
        commit = self.resolve_commit(repo, ref)
        return commit, self.has_submodules(repo, commit)

    def _head_is_unborn(self, repo: Repository) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "symbolic-ref", "-q", "HEAD"], check=False
        )
        return proc.returncode == 0

    def create_branch(self, repo: Repository, branch: str, commit: str, reason: str) -> None:
        """Create ``refs/heads/<branch>`` at ``commit``; fail if it exists (create-only)."""
        self.run(
            ["update-ref", "-m", reason, "--stdin"],
            cwd=repo.root,
            input=f"create refs/heads/{branch} {commit}\n",
        )

    def delete_branch_if_at(self, repo: Repository, branch: str, commit: str) -> bool:
        """Delete the branch only while it still points at ``commit`` (never loses work)."""
        proc = self.run(
            ["update-ref", "--stdin"],
            cwd=repo.root,
            input=f"delete refs/heads/{branch} {commit}\n",
            check=False,
        )
        return proc.returncode == 0

    def branch_commit(self, repo: Repository, branch: str) -> str | None:
        proc = self.run(
            [
                "--git-dir",
                str(repo.common_dir),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{branch}",
            ],
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    # -- status ----------------------------------------------------------------------------

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

    def _start(
        self,
        args: Sequence[str],
        parse: Callable[[int, str], T],
        cwd: Path | None = None,
        *,
        yield_cpu: bool = False,
    ) -> Pending[T]:
        """Start ``git args`` in the background (OSError when ``cwd`` is gone, GitError
        when git is missing);
        ``yield_cpu``: at the lowest scheduling priority (nice 19)."""
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                errors="surrogateescape",
                env=self._env,
            )
        except FileNotFoundError as exc:
            if cwd is not None and not cwd.is_dir():
                raise  # the directory is gone, not git
            raise GitError("git is not installed or not on PATH") from exc
        if yield_cpu:
            # the child has not been waited for: its pid cannot have been reused yet
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
        return Pending(proc, parse)

    def repository_url(self, repo: Repository) -> str:
        """The repository's identity across clones: its origin's URL, else its own path."""
        return self.start_repository_url(repo).result()

    def start_repository_url(self, repo: Repository) -> PendingRepositoryUrl:
        """``repository_url``, read in the background (the dispatch opens its store
        meanwhile). Also learns whether the repository sets core.hooksPath."""
        started = time.monotonic()

        def parse(returncode: int, out: str) -> str:
            values: dict[str, str] = {}
            for line in out.splitlines():  # the last value wins, as with --get
                key, _, value = line.partition(" ")
                values[key] = value
            if returncode in (0, 1) and "core.hookspath" not in values:
                self._default_hooks[repo.common_dir] = started
            url = values.get("remote.origin.url", "").strip().rstrip("/")
            return url.removesuffix(".git").rstrip("/") if url else str(repo.root)

        return self._start(
            [
                "--git-dir",
                str(repo.common_dir),
                "config",
                "--get-regexp",
                r"^(remote\.origin\.url|core\.hookspath)$",
            ],
            parse,
        )

    def has_commit(self, repo: Repository, commit: str) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "cat-file", "-e", f"{commit}^{{commit}}"],
            check=False,
        )
        return proc.returncode == 0

    def current_branch(self, worktree: Path) -> str | None:
        proc = self.run(
            ["--no-optional-locks", "symbolic-ref", "-q", "--short", "HEAD"],
            cwd=worktree,
            check=False,
        )
        return proc.stdout.strip() or None

    def head_commit(self, worktree: Path) -> str:
        return self.run(["--no-optional-locks", "rev-parse", "HEAD"], cwd=worktree).stdout.strip()

    # -- worktrees -------------------------------------------------------------------------

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
    ) -> None:
        """Register and populate a worktree for an existing branch (None: detached at
        ``commit``, as a pool member is). ``hook``: run post-checkout (a worktree made
        ahead of its branch runs it once its HEAD is on the branch).

        Registration (``worktree add --no-checkout``, a few ms) runs under a per-repository
        lock and is verified; populating the files runs outside it, at most one checkout
        per core at a time. ``sparse`` limits the checkout to those directories (cone mode).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
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
            self.post_checkout(path, "0" * len(commit), commit, env, repo)
        if submodules:
            self.update_submodules(path, env)

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

    def post_checkout(
        self,
        path: Path,
        old: str,
        new: str,
        env: Mapping[str, str],
        repo: Repository | None = None,
    ) -> None:
        """Run the post-checkout hook as `git checkout` would (skipped without a git
        process when ``repo``'s hooks are known to be in the default place and it has none)."""
        if (
            repo is not None
            and time.monotonic() - self._default_hooks.get(repo.common_dir, -math.inf)
            < HOOKS_FACT_SECONDS
            and not os.path.lexists(repo.common_dir / "hooks" / "post-checkout")
        ):
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

    def config_value(self, repo: Repository, key: str) -> str | None:
        proc = self.run(["--git-dir", str(repo.common_dir), "config", "--get", key], check=False)
        return proc.stdout.strip() or None

    def config_value_in(self, worktree: Path, key: str) -> str | None:
        """A config value as git sees it in ``worktree`` (its own config.worktree too)."""
        proc = self.run(["config", "--get", key], cwd=worktree, check=False)
        return proc.stdout.strip() or None

    def has_submodules(self, repo: Repository, commit: str) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "cat-file", "-e", f"{commit}:.gitmodules"],
            check=False,
        )
        return proc.returncode == 0

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
        self.run(["worktree", "prune"], cwd=repo.root, check=False)

    def list_worktrees(self, repo: Repository) -> list[dict[str, str]]:
        out = self.run(["worktree", "list", "--porcelain"], cwd=repo.root).stdout
        entries = []
        for block in out.strip().split("\n\n"):
            entry: dict[str, str] = {}
            for line in block.splitlines():
                key, _, value = line.partition(" ")
                entry[key] = value
            entries.append(entry)
        return entries


def checkout_env(lfs_skip_smudge: bool) -> dict[str, str]:
    """Extra environment for commands that check files out."""
    return {"GIT_LFS_SKIP_SMUDGE": "1"} if lfs_skip_smudge else {}


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
        if code[0] in "RC":
            i += 1  # the rename/copy source follows as its own field
    return result


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


@dataclasses.dataclass(frozen=True)
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
    git: Git, repo: Repository, worktree: Path | None, branch: str | None
) -> UnsavedWork:
    """Uncommitted changes in ``worktree`` and commits nothing else keeps.

    A commit is safe when another branch or a remote-tracking ref contains it (a branch
    merged into its base is therefore always safe). Read without taking locks.
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
                *tips,
                "--not",
                *exclude,
                "--branches",
                "--remotes",
            ],
        ).stdout
        unmerged = int(out.strip() or 0)
    return UnsavedWork(dirty=tuple(dirty), unmerged_commits=unmerged, head=head)


def save_patch(git: Git, worktree: Path, dest: Path) -> bool:
    """Write the uncommitted changes to tracked files (staged and not) as a binary patch."""
    patch = git.output_bytes(["--no-optional-locks", "diff", "HEAD", "--binary"], cwd=worktree)
    if not patch:
        return False
    # written here, not with `git diff --output`, which ignores a failed write (full disk)
    try:
        with open(dest, "wb") as fh:
            fh.write(patch)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise WorkspaceError(
            f"cannot save uncommitted changes to {dest}: {describe_os_error(exc)}"
        ) from exc
    return True


def untracked_files(git: Git, worktree: Path) -> list[str]:
    out = git.run(
        ["--no-optional-locks", "ls-files", "-z", "--others", "--exclude-standard"], cwd=worktree
    ).stdout
    return [p for p in out.split("\0") if p]


def save_bundle(
    git: Git, repo: Repository, head: str | None, branch: str | None, dest: Path, name: str
) -> list[str]:
    """Bundle the commits that only ``branch`` and ``head`` reach; return the bundle's refs.

    Restorable with ``git fetch <bundle> <ref>:<ref>``. A detached ``head`` gets a
    short-lived ref of its own (``refs/orch-archive/<name>``) because a bundle carries refs.
    """
    refs: list[str] = []
    temp = None
    branch_tip = git.branch_commit(repo, branch) if branch else None
    if branch_tip:
        refs.append(f"refs/heads/{branch}")
    if head and head != branch_tip:
        temp = f"refs/orch-archive/{name}"
        git.run(["update-ref", temp, head], cwd=repo.root)
        refs.append(temp)
    if not refs:
        return []
    try:
        exclude = [f"--exclude={branch}"] if branch else []
        proc = git.run(
            ["bundle", "create", str(dest), *refs, "--not", *exclude, "--branches", "--remotes"],
            cwd=repo.root,
            check=False,
        )
    finally:
        if temp:
            git.run(["update-ref", "-d", temp], cwd=repo.root, check=False)
    if proc.returncode != 0 and "empty bundle" in proc.stderr.lower():
        return []
    if proc.returncode != 0:
        raise GitError(f"git bundle failed: {_last_line(proc.stderr)}")
    # git leaves out a ref whose tip another branch already keeps: name only what it holds
    heads = git.run(["bundle", "list-heads", str(dest.absolute())], cwd=repo.root).stdout
    held = {line.split(" ", 1)[1] for line in heads.splitlines() if " " in line}
    return [ref for ref in refs if ref in held]


def force_remove_worktree(git: Git, repo: Repository, path: Path) -> None:
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
    git.run(["worktree", "prune"], cwd=repo.root, check=False)


def branches_with_prefix(git: Git, repo: Repository, prefix: str) -> dict[str, str]:
    out = git.run(
        [
            "--git-dir",
            str(repo.common_dir),
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            f"refs/heads/{prefix}/",
        ],
    ).stdout
    result = {}
    for line in out.splitlines():
        name, _, sha = line.partition(" ")
        result[name] = sha
    return result


def prune_candidates(git: Git, repo: Repository) -> list[str]:
    proc = git.run(["worktree", "prune", "--dry-run", "--verbose"], cwd=repo.root)
    # git prints what it would prune on stderr
    out = proc.stdout + proc.stderr
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


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


def ignored_entries(git: Git, root: Path) -> list[str]:
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


def fingerprint(git: Git, worktree: Path) -> dict[str, tuple[str, int, int]]:
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


# -- restoring from the archive (orch restore) -----------------------------------------------


def bundle_heads(git: Git, repo: Repository, bundle: Path) -> dict[str, str]:
    """The refs a bundle carries and their commits (``git bundle list-heads``)."""
    out = git.run(["bundle", "list-heads", str(bundle.absolute())], cwd=repo.root).stdout
    heads = {}
    for line in out.splitlines():
        sha, _, ref = line.partition(" ")
        if ref:
            heads[ref] = sha
    return heads


def fetch_bundle_objects(git: Git, repo: Repository, bundle: Path, refs: Sequence[str]) -> None:
    """Bring the commits of a bundle's ``refs`` into the object store; no ref is written."""
    git.run(["fetch", "--no-tags", "--quiet", str(bundle.absolute()), *refs], cwd=repo.root)


def apply_patch(git: Git, worktree: Path, patch: Path) -> None:
    """Apply a saved ``git diff HEAD --binary`` to the worktree's files."""
    git.run(["apply", str(patch.absolute())], cwd=worktree)


def patch_applied(git: Git, worktree: Path, patch: Path) -> bool:
    """Whether the worktree holds the patch's changes (it would apply in reverse)."""
    proc = git.run(["apply", "--check", "-R", str(patch.absolute())], cwd=worktree, check=False)
    return proc.returncode == 0
