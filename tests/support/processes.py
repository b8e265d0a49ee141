"""Real processes (orch or a shell) that are never left running, waiting with deadlines,
and stand-ins put in place of a program on PATH.

Every wait has an upper bound and fails saying what it waited for; a bound is a guard
against hanging, never an assertion about speed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orch.system import processes

WAIT_LIMIT = 30.0  # seconds of an idle machine: an upper bound on waiting, never an assertion
MAX_SLOWDOWN = 8.0  # a bound stretches at most this much on a loaded machine


def stand_in(bin_dir: Path, name: str, script: str) -> dict[str, str]:
    """Put an executable ``name`` that runs ``script`` in ``bin_dir`` (made if need be), in
    place of the program of that name; the environment's ``PATH`` that finds it first."""
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / name
    program.write_text(script)
    program.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def load_factor() -> float:
    """How many times slower than idle this machine runs now: the one-minute load average
    per core, at least 1 and at most ``MAX_SLOWDOWN``."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return 1.0
    return min(MAX_SLOWDOWN, max(1.0, load / (os.cpu_count() or 1)))


def wait_for(check: Callable[[], Any], what: str, limit: float = WAIT_LIMIT) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``limit`` seconds of an
    idle machine. Each second waited counts as 1/``load_factor()`` of one, so a bound that
    is generous when the machine is quiet stays generous when the suite shares it with
    other work (a fixed 30 s once failed a test on a loaded machine)."""
    started = last = time.monotonic()
    spent = 0.0
    while True:
        value = check()
        if value:
            return value
        now = time.monotonic()
        spent += (now - last) / load_factor()
        last = now
        if spent > limit:
            raise AssertionError(
                f"gave up after {now - started:.0f}s ({limit:g}s of an idle machine) "
                f"waiting for {what}"
            )
        time.sleep(0.02)


def is_running(pid: int | None, started_at: float | None) -> bool:
    return pid is not None and processes.is_alive(pid, started_at)


def wait_for_git_under(root: Path, timeout: float = 60.0) -> None:
    """Wait until no git process works in a directory under ``root``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if comm.startswith("git") and Path(cwd).is_relative_to(root):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.02)
    raise AssertionError(f"git still running under {root} after {timeout} s")


def all_at_once(argvs: list[list[str]], limit: float = 120.0, **kw: Any) -> list[str]:
    """Start every command before waiting for any (``kw`` goes to Popen: cwd, env); each
    must exit 0. Returns their standard outputs."""
    started = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        for argv in argvs
    ]
    try:
        outputs = [p.communicate(timeout=limit) for p in started]
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert all(p.returncode == 0 for p in started), outputs
    return [out for out, _err in outputs]


def released_together(
    count: int, argv: Callable[[int, Path, Path], list[str]], run_dir: Path
) -> list[tuple[int, str, str]]:
    """Run ``count`` processes, the ``i``-th as ``argv(i, ready, go)``, and release them at
    one moment: each creates its ``ready`` file once set up, then waits for the ``go`` file,
    made once all are ready. Returns each one's exit status, standard output and error."""
    run_dir.mkdir(parents=True, exist_ok=True)
    go = run_dir / "go"
    racers = [
        subprocess.Popen(
            argv(i, run_dir / f"ready-{i}", go),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(run_dir.glob("ready-*"))) < count:
            early = [p.communicate() for p in racers if p.poll() is not None]
            assert not early, f"a racer ended before the barrier: {early}"
            assert time.monotonic() < deadline, "racers never got ready"
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=300) for p in racers]
    finally:
        for p in racers:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return [(p.returncode, out, err) for p, (out, err) in zip(racers, outputs, strict=True)]


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
            return self.popen.wait(limit * load_factor())  # see wait_for
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.popen.args!r} still running after {limit:g}s\n{self.output()}"
            ) from None

    def stop_at_once(self) -> None:
        """Two SIGTERMs, as an operator stops ``orch work`` at once (the second one stops
        its agents); the first given time to land, since two in one instant may merge."""
        self.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            # still draining after 10 s: the two were merged after all, so repeat the
            # second (never sooner: a SIGTERM that lands while it shuts down would kill it)
            self.signal(signal.SIGTERM)

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


Start = Callable[..., Proc]
