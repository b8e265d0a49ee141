"""Local processes: liveness with start times, signalling, and spawning agent commands.

Liveness compares a pid's start time (psutil, portable to macOS) with the one recorded at
claim time, so a pid the kernel reused for another program is not mistaken for the worker.
The only module that spawns or signals processes other than git.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from orch import private

START_TIME_TOLERANCE = 0.05  # seconds; psutil derives start times from clock ticks


def hostname() -> str:
    return socket.gethostname()


def start_time(pid: int) -> float | None:
    import psutil  # imported on use: most commands never check a process

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def is_alive(pid: int, started_at: float | None) -> bool:
    """True while the process that had ``pid`` at ``started_at`` still runs."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.Error, ValueError):
        return False
    return started_at is None or abs(created - started_at) <= START_TIME_TOLERANCE


def _signal(pid: int, sig: int) -> None:
    """Signal a child of this process (not yet waited for, so its pid cannot be reused)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)  # an agent started by orch leads its own process group
        else:
            os.kill(pid, sig)


class _Identified:
    """A process known by its pid and start time: each signal checks, right before it is
    sent, that the pid still belongs to the process started at that time, so a pid the
    kernel gave to another program is never hit (neither it nor a group it leads)."""

    def __init__(self, pid: int, started_at: float) -> None:
        import psutil

        self._psutil = psutil
        self.pid, self.started_at = pid, started_at
        self._proc = psutil.Process(pid)  # psutil.Error when there is no such process

    def alive(self) -> bool:
        psutil = self._psutil
        try:
            if self._proc.status() == psutil.STATUS_ZOMBIE:
                return False
            created = self._proc.create_time()
        except (psutil.Error, ValueError):
            return False
        return abs(created - self.started_at) <= START_TIME_TOLERANCE

    def send(self, sig: int) -> bool:
        """Signal the process (its whole group when it leads one); False when it is gone."""
        if not self.alive():
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(self.pid) == self.pid:
                # a group outlives its leader's pid: the pid is not reused while the group
                # exists, and the leader was checked just above
                os.killpg(self.pid, sig)
            else:
                self._proc.send_signal(sig)  # psutil checks the pid's identity again
        return True


def terminate(pid: int, started_at: float | None, grace: float) -> str:
    """SIGTERM, then SIGKILL after ``grace`` seconds; say what happened.

    A process whose start time was not recorded is never signalled: nothing could tell it
    from another program that got its pid since."""
    import psutil

    if started_at is None:
        return "not signalled (its start time is unknown)"
    try:
        target = _Identified(pid, started_at)
    except (psutil.Error, ValueError):
        return "not running"
    if not target.send(signal.SIGTERM):
        return "not running"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not target.alive():
            return "stopped by SIGTERM"
        time.sleep(0.02)
    if not target.send(signal.SIGKILL):
        return "stopped by SIGTERM"
    return "killed by SIGKILL"


class AgentProcess:
    """An agent command running in its own process group, output appended to a log."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self._log: IO[bytes] = private.open_append(log_path)  # lives as long as the run
        try:
            self._proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        except OSError:
            self._log.close()
            raise
        self.pid = self._proc.pid
        self.started_at = start_time(self.pid)

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float) -> int:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace``."""
        if self._proc.poll() is None:
            _signal(self.pid, signal.SIGTERM)
            if self.wait(grace) is None:
                _signal(self.pid, signal.SIGKILL)
        code = self._proc.wait()
        self.close()
        return code

    def close(self) -> None:
        self._log.close()


def start_failure(program: str, exc: OSError) -> str:
    """Why ``program`` could not be started, in a user's words."""
    if isinstance(exc, FileNotFoundError):
        return "not found on PATH" if os.sep not in program else "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def log_tail(path: Path, lines: int = 20, max_bytes: int = 16384) -> list[str]:
    """The last ``lines`` lines of a log file (reads at most ``max_bytes`` from its end)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def log_size(path: Path) -> int:
    """Where the log ends now (0 when there is none yet): a run's output starts there."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_lines_from(path: Path, offset: int) -> Iterator[str]:
    """The log's lines from byte ``offset`` on, decoded leniently; none if it is unreadable."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh:
                yield raw.decode("utf-8", "replace")
    except OSError:
        return


def hook_output_tail(
    path: Path, label: str, lines: int = 20, max_bytes: int = 65536
) -> list[str] | None:
    """The last ``lines`` lines that the newest hook run called ``label`` wrote to the log
    at ``path`` (between the banners ``run_hook`` writes around it; up to the log's end
    while it runs), from at most ``max_bytes`` of it; None when the log holds no such
    run. The log is mapped, not read: an agent's log may be large."""
    start = f"=== orch {label}: ".encode()
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as log:
            at = log.rfind(b"\n" + start) + 1  # the newest run's banner
            if at == 0 and log[: len(start)] != start:
                return None
            begin = log.find(b"\n", at) + 1 or len(log)
            end = log.find(f"\n=== orch {label} ".encode(), begin - 1)
            end = len(log) if end < 0 else end + 1
            data = log[max(begin, end - max_bytes) : end]
    except (OSError, ValueError):  # missing, unreadable, or empty (nothing to map)
        return None
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def append_log(path: Path, text: str) -> None:
    with private.open_append(path) as fh:
        fh.write(text.encode("utf-8"))


def run_hook(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    label: str = "set-up hook",
    pass_fds: Sequence[int] = (),
    input_data: bytes | None = None,
) -> int | None:
    """Run a hook command (``sh -c``: the set-up hook, the check, an event hook) in its
    own process group with output appended to the log, ``input_data`` (if any) on its
    standard input; None on timeout (the whole process group is then killed, as it is
    when this process is interrupted while waiting)."""
    append_log(log_path, f"=== orch {label}: {command}\n")
    with private.open_append(log_path) as log, _stdin(input_data) as stdin:
        proc = subprocess.Popen(
            ["sh", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        except BaseException:
            _signal(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    append_log(
        log_path, f"=== orch {label} {'timed out' if code is None else f'exited with {code}'}\n"
    )
    return code


@contextlib.contextmanager
def _stdin(data: bytes | None) -> Iterator[int | IO[bytes]]:
    """A hook's standard input: nothing, or ``data`` from a file (a pipe would block
    this process on a hook that never reads)."""
    if data is None:
        yield subprocess.DEVNULL
        return
    with tempfile.TemporaryFile() as fh:
        fh.write(data)
        fh.seek(0)
        yield fh


# waits until its standard input ends, then becomes the command it was given
_AFTER_EXIT = 'read _; exec "$@" </dev/null'


def spawn_detached(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path, after_exit: bool = False
) -> int:
    """Start a background command in a session of its own that outlives this process,
    output appended to ``log_path``; returns at once with its pid (never waited for).

    With ``after_exit`` the command runs only once this process has ended: ``/bin/sh``
    waits on a pipe whose one writer is this process (never inherited, never closed
    here: the kernel closes it as the process ends), then ``exec``s it. A command that
    starts a Python interpreter (hundreds of ms of CPU) as its last act then never slows
    its own exit."""
    private.make_dir(log_path.parent)
    os.close(private.open_fd(log_path, os.O_WRONLY))  # made or fixed private, then appended to
    output = [
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    if not after_exit:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), *output]
        return os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)
    gate, _writer = os.pipe()  # both close-on-exec; the writer lives as long as this process
    try:
        sh = ["/bin/sh", "-c", _AFTER_EXIT, argv[0], *argv]
        actions = [(os.POSIX_SPAWN_DUP2, gate, 0), *output]
        return os.posix_spawn(sh[0], sh, dict(env), file_actions=actions, setsid=True)
    finally:
        os.close(gate)


def run_bounded(
    argv: Sequence[str], input_text: str, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """Run ``argv`` to completion, or kill its whole process group after ``timeout``
    seconds and return None."""
    # `with` closes all three pipes: a timeout can strike before the input was written,
    # and a second communicate() without input never closes stdin
    with subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(input_text, timeout)
        except subprocess.TimeoutExpired:
            _signal(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
