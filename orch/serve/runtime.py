"""The files under ``$ORCH_HOME/serve`` that say which loop and server run, and where.

A process holds ``<name>.lock`` (an ``flock``, released by the kernel even on kill -9)
for as long as it runs, and writes ``<name>.json`` with its pid and start time. A record
whose process is gone (or whose pid now belongs to another program) is stale and is
removed by whoever reads it. Records are written atomically (temp file + rename), private
to the user like everything under the orch home.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from orch import atomic, fslock, private
from orch.errors import ServeError, describe_os_error
from orch.record import record
from orch.system import processes

LOOP = "loop"
SERVER = "server"


def serve_dir(home: Path) -> Path:
    return home / "serve"


def loop_log(home: Path) -> Path:
    """Where the loop started in the background writes what it does."""
    return serve_dir(home) / "loop.log"


@record
class Record:
    """Who runs as ``name``: a pid with its start time, and what it told about itself."""

    name: str
    pid: int
    started_at: float | None
    info: dict[str, Any]

    @property
    def alive(self) -> bool:
        return processes.is_alive(self.pid, self.started_at)


def write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        _write_json(path, data)
    except OSError as exc:  # a full disk, an unwritable orch home: one line, not a traceback
        raise ServeError(f"cannot write {path}: {describe_os_error(exc)}") from exc


def _write_json(path: Path, data: dict[str, Any]) -> None:
    private.make_dir(path.parent)
    atomic.write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def take(home: Path, name: str) -> fslock.HeldLock | None:
    """Become the one ``name`` process of this orch home, or None if one already runs."""
    path = serve_dir(home) / f"{name}.lock"
    try:
        private.make_dir(path.parent)
        return fslock.try_lock(path, f"pid {os.getpid()}")
    except OSError as exc:  # an orch home that is not writable
        raise ServeError(f"cannot take {path}: {describe_os_error(exc)}") from exc


def publish(home: Path, name: str, **info: Any) -> Record:
    """Record this process as the running ``name`` (call while holding its lock)."""
    pid = os.getpid()
    record = Record(name, pid, processes.start_time(pid), info)
    write_json(
        serve_dir(home) / f"{name}.json", {"pid": pid, "started_at": record.started_at, **info}
    )
    return record


def withdraw(home: Path, name: str) -> None:
    """Remove this process's record (never another process's)."""
    path = serve_dir(home) / f"{name}.json"
    data = read_json(path)
    if data is not None and data.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def running(home: Path, name: str) -> Record | None:
    """The live ``name`` process, or None; a stale record is removed on the way."""
    path = serve_dir(home) / f"{name}.json"
    data = read_json(path)
    if data is None:
        return None
    pid, started = data.pop("pid", None), data.pop("started_at", None)
    record = (
        Record(name, pid, started if isinstance(started, float) else None, data)
        if isinstance(pid, int)
        else None
    )
    if record is not None and record.alive:
        return record
    # stale: the process died without withdrawing (kill -9, a crash, a reboot)
    with contextlib.suppress(OSError):
        if read_json(path) == {**data, "pid": pid, "started_at": started}:
            path.unlink()
    return None
