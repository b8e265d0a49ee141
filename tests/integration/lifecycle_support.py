"""What the lifecycle tests (issue 3) share: a clock that moves only when told, attempts
made straight through the store, real worker processes, and bounded waiting.

Nothing here fakes orch: attempts are created through ``Store.create_attempt``, workers
are the installed ``orch`` entry point in real processes, and everything that waits does
so with a generous upper bound and fails saying what it waited for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from click.testing import Result
from helpers import with_prompt

from orch.config import Settings, resolve
from orch.models import Attempt, NewAttempt, WorkerIdentity
from orch.store import Store
from orch.system import processes

ORCH_BIN = str(Path(sys.executable).parent / "orch")
BASE_COMMIT = "ba5e" + "0" * 36
# Earlier than anything another test writes, so that "the oldest queued attempt" is ours
# even in the PostgreSQL database that every test of one xdist worker shares.
START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
WAIT_LIMIT = 30.0  # seconds: an upper bound on waiting for a process, never an assertion

RunCli = Callable[..., Result]


class StepClock:
    """A clock that moves only when told to."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


class OffsetClock:
    """The real clock moved by ``offset`` seconds (to judge real leases from the future)."""

    def __init__(self, offset: float) -> None:
        self.offset = dt.timedelta(seconds=offset)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def new_attempt(
    repository: str,
    task_key: str = "task",
    worker: str | None = None,
    attempt_id: str | None = None,
    worktree_path: str | None = None,
    prompt: str = "do it",
) -> NewAttempt:
    attempt_id = attempt_id or secrets.token_hex(4)
    return NewAttempt(
        id=attempt_id,
        task_key=task_key,
        repository=repository,
        base_ref="HEAD",
        base_commit=BASE_COMMIT,
        branch_name=f"orch/{task_key}-{attempt_id}",
        worktree_path=worktree_path or f"/worktrees/{task_key}-{attempt_id}",
        worker=worker,
        prompt=prompt,
    )


def ready_attempt(
    store: Store, repository: str, task_key: str = "task", worker: str | None = None, **kw: Any
) -> Attempt:
    """A queued attempt whose workspace is ready, as dispatch leaves it (no git needed)."""
    created = store.create_attempt(new_attempt(repository, task_key, worker, **kw), "dispatcher")
    return store.finish_provisioning(created.id, Path(f"/inbox/{created.id}.json"), "dispatcher")


def remote_worker(name: str) -> WorkerIdentity:
    """A worker on another host: only its lease tells whether it lives."""
    return WorkerIdentity(name=name, host="elsewhere.invalid")


def this_process(name: str) -> WorkerIdentity:
    pid = os.getpid()
    return WorkerIdentity(
        name=name, host=processes.hostname(), pid=pid, started_at=processes.start_time(pid)
    )


def settings() -> Settings:
    return resolve(os.environ)


def wait_for(check: Callable[[], Any], what: str, limit: float = WAIT_LIMIT) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {limit:g}s waiting for {what}")
        time.sleep(0.02)


def json_of(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    return data


def dispatch(run_cli: RunCli, repo: Path, task_key: str, *args: str) -> dict[str, Any]:
    attempt: dict[str, Any] = json_of(
        run_cli("dispatch", task_key, "--json", *with_prompt(args), cwd=repo)
    )["attempt"]
    return attempt


def show(run_cli: RunCli, ref: str) -> dict[str, Any]:
    return json_of(run_cli("show", ref, "--json"))


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


class Proc:
    """A real process (``orch`` or a shell) with its output in files, never left running."""

    def __init__(
        self, argv: list[str], out_dir: Path, env: dict[str, str] | None = None, **kw: Any
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = secrets.token_hex(3)
        self.out_path, self.err_path = out_dir / f"{stem}.out", out_dir / f"{stem}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
                **kw,
            )
        self.pid = self.popen.pid

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, limit: float = WAIT_LIMIT) -> int:
        try:
            return self.popen.wait(limit)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.popen.args!r} still running after {limit:g}s\n{self.output()}"
            ) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGCONT)
            self.popen.kill()
        self.popen.wait()

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def output(self) -> str:
        return f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@contextlib.contextmanager
def procs(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start processes with ``start(argv, env=...)``; all are killed on the way out."""
    started: list[Proc] = []

    def start(argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> Proc:
        proc = Proc(argv, tmp_path / "proc-output", env, **kw)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.kill()


def is_running(pid: int | None, started_at: float | None) -> bool:
    return pid is not None and processes.is_alive(pid, started_at)
