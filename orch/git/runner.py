"""Running git: the one place a git process is started.

Git's own lock files are expected to be busy when many orch processes share a repository:
a command that fails only because a lock is held is retried with backoff, bounded by
``lock_timeout``, and only then reported (``LockBusy``). Commands whose answer is wanted
only later run in the background (``Pending``). Nothing here knows what a command means:
the other modules of the adapter name each command; this one must never be called with a
command line built outside orch.git.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from orch.errors import GitError, LockBusy

_LOCK_BUSY = re.compile(
    r"Unable to create '[^']*\.lock': File exists"
    r"|could not lock config file"
    r"|Another git process seems to be running",
)
T = TypeVar("T")


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


class RunningOutput:
    """A read-only git command running in the background, its output kept as bytes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._output: tuple[bytes | None] | None = None

    def output(self) -> bytes | None:
        """What git printed; None when it failed (the caller has another way)."""
        if self._output is None:
            out, _err = self._proc.communicate()
            self._output = (out if self._proc.returncode == 0 else None,)
        return self._output[0]

    def cancel(self) -> None:
        """Stop the command if its output was not read yet (and reap it)."""
        if self._output is None:
            self._proc.kill()
            self._proc.communicate()
            self._output = (None,)


class Runner:
    """Runs git with orch's environment; holds no knowledge of any repository."""

    def __init__(self, lock_timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.lock_timeout = lock_timeout
        base = dict(os.environ if env is None else env)
        # orch parses git's messages; keep them in English and never open an editor/pager.
        base.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"})
        self._env = base

    def run(
        self,
        args: Sequence[str],
        cwd: Path | None = None,
        *,
        check: bool = True,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``git args``; retry while git reports a busy lock; raise ``GitError``.
        ``input`` given as bytes goes to git byte for byte (a patch of files in any
        encoding); the output is decoded as always."""
        cmd = ["git", *args]
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        full_env = {**self._env, **(env or {})}
        while True:
            try:
                # file names and file contents need not be UTF-8: never fail decoding them
                if isinstance(input, bytes):
                    raw = subprocess.run(
                        cmd, cwd=cwd, input=input, capture_output=True, env=full_env
                    )
                    proc = subprocess.CompletedProcess(
                        cmd,
                        raw.returncode,
                        raw.stdout.decode(errors="surrogateescape"),
                        raw.stderr.decode(errors="surrogateescape"),
                    )
                else:
                    proc = subprocess.run(
                        cmd,
                        cwd=cwd,
                        input=input,
                        capture_output=True,
                        text=True,
                        errors="surrogateescape",
                        env=full_env,
                    )
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise not_started(exc, cwd) from exc
            if proc.returncode == 0 or not check:
                return proc
            if _LOCK_BUSY.search(proc.stderr):
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"git lock stayed busy for {self.lock_timeout:g}s: "
                        + last_line(proc.stderr)
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            raise GitError(failed(args, proc.returncode, proc.stderr))

    def output_bytes(
        self, args: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> bytes:
        """Run a read-only ``git args`` and return its output byte for byte (no decoding,
        no newline translation: a patch must apply to files with any encoding or CRLF)."""
        return read_again(lambda: self._output_bytes(args, cwd, env))

    def _output_bytes(
        self, args: Sequence[str], cwd: Path | None, env: Mapping[str, str] | None
    ) -> bytes:
        full_env = {**self._env, **(env or {})}
        try:
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=full_env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise not_started(exc, cwd) from exc
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            raise (_Raced if raced(proc.returncode, stderr) else GitError)(
                failed(args, proc.returncode, stderr)
            )
        return proc.stdout

    def output_head(
        self,
        args: Sequence[str],
        limit: int,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[bytes, bool]:
        """The first ``limit`` bytes of a read-only ``git args``'s output, byte for byte,
        and whether it printed more (git is then stopped: a long answer is never held in
        memory whole)."""
        return read_again(lambda: self._output_head(args, limit, cwd, env))

    def _output_head(
        self,
        args: Sequence[str],
        limit: int,
        cwd: Path | None,
        env: Mapping[str, str] | None,
    ) -> tuple[bytes, bool]:
        full_env = {**self._env, **(env or {})}
        # standard error goes to a file: git blocked on a full stderr pipe while this
        # process waits on its stdout would hang both
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=errors, env=full_env
                )
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise not_started(exc, cwd) from exc
            assert proc.stdout is not None
            with proc.stdout:
                data = proc.stdout.read(limit + 1)
                more = len(data) > limit
                if more:
                    proc.kill()
            code = proc.wait()
            if not more and code != 0:
                errors.seek(0)
                stderr = errors.read().decode(errors="replace")
                raise (_Raced if raced(code, stderr) else GitError)(failed(args, code, stderr))
        return data[:limit], more

    def run_into(
        self,
        args: Sequence[str],
        out: int,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Run a read-only ``git args`` with its output going straight to the file
        descriptor ``out`` (a terminal, a pipe to a pager), never held in memory. A reader
        that stops early (a pager quit) is not a failure."""
        full_env = {**self._env, **(env or {})}
        try:
            proc = subprocess.run(
                ["git", *args], cwd=cwd, stdout=out, stderr=subprocess.PIPE, env=full_env
            )
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise not_started(exc, cwd) from exc
        if proc.returncode not in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE):
            raise GitError(failed(args, proc.returncode, proc.stderr.decode(errors="replace")))

    def start_output(
        self, args: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> RunningOutput:
        """Start a read-only ``git args`` in the background; its output, byte for byte,
        comes later (``RunningOutput.output``). Several at once use both cores."""
        try:
            proc = self._background(args, cwd, {**self._env, **(env or {})}, text=False)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise not_started(exc, cwd) from exc
        return RunningOutput(proc)

    @staticmethod
    def _background(
        args: Sequence[str], cwd: Path | None, env: Mapping[str, str], *, text: bool
    ) -> subprocess.Popen[Any]:
        """``git args`` started with its output to a pipe, its errors dropped; ``text``:
        decoded with surrogate escapes."""
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=text,
            errors="surrogateescape" if text else None,
            env=env,
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
            proc = self._background(args, cwd, self._env, text=True)
        except FileNotFoundError as exc:
            if cwd is not None and not cwd.is_dir():
                raise  # the directory is gone, not git: the caller knows what it was
            raise not_started(exc, cwd) from exc
        if yield_cpu:
            # the child has not been waited for: its pid cannot have been reused yet
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
        return Pending(proc, parse)


def not_started(exc: OSError, cwd: Path | None) -> GitError:
    """Why git could not be started: a working directory that is gone (removed while
    orch used it) raises the same FileNotFoundError as a missing git, so look which."""
    if cwd is not None and not cwd.is_dir():
        what = "no longer exists" if not cwd.exists() else "is not a directory"
        return GitError(f"cannot run git in {cwd}: the directory {what}")
    if cwd is None:
        try:
            os.getcwd()
        except FileNotFoundError:
            return GitError("cannot run git: the current directory no longer exists")
    return GitError("git is not installed or not on PATH")


# A read of a live worktree races with its agent rewriting files: git maps a file to hash
# it, and a file truncated meanwhile kills git with SIGBUS, or git sees fewer bytes than it
# was told ("short read", "cannot hash"). Measured: 26 and 7 of 1,500 `git diff --stat`
# while a loop rewrote seven files. Such a read is made again after a moment (the writer
# moves on), READ_TRIES times in all at most.
READ_TRIES = 6
_RACED_WORDS = ("short read while indexing", "cannot hash ", "failed to insert into database")


def raced(code: int, stderr: str) -> bool:
    """Whether a read-only git command failed because a file changed while git read it."""
    return code == -signal.SIGBUS or (code == 128 and any(w in stderr for w in _RACED_WORDS))


class _Raced(Exception):
    """A read that raced with a file being rewritten (see ``raced``): made again."""


def read_again(read: Callable[[], T]) -> T:
    """``read`` (a read-only git command), made again after a moment while it raced with
    a file being rewritten; a ``GitError`` once it has raced ``READ_TRIES`` times."""
    for attempt in range(READ_TRIES):
        try:
            return read()
        except _Raced as exc:
            if attempt == READ_TRIES - 1:
                raise GitError(exc.args[0]) from None
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def failed(args: Sequence[str], code: int, stderr: str) -> str:
    """What a failed git command says: its last line, else how it ended (a git killed by
    a signal, or one that exits non-zero in silence, says nothing)."""
    if stderr.strip():
        why = last_line(stderr)
    elif code < 0:
        try:
            why = f"killed by {signal.Signals(-code).name}, no message"
        except ValueError:
            why = f"killed by signal {-code}, no message"
    else:
        why = f"exit status {code}, no message"
    return f"git {' '.join(args[:2])} failed: {why}"


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"
