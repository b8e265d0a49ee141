"""Starting, finding and stopping the loop and the dashboard server of one orch home."""

from __future__ import annotations

import os
import time

from orch.config import Settings
from orch.errors import ServeError, describe_os_error
from orch.serve import runtime
from orch.serve.loop import orch_argv
from orch.system import processes

LOOP_START_LIMIT = 30.0  # seconds a new loop may take to publish itself


def ensure_loop(settings: Settings) -> tuple[runtime.Record, bool]:
    """The running loop, started in a session of its own if none runs.

    Returns the loop's record and whether this call started it. Two callers racing here
    both spawn a loop; the loop's lock lets one run and the other exit at once."""
    found = runtime.running(settings.home, runtime.LOOP)
    if found is not None:
        return found, False
    log = runtime.loop_log(settings.home)
    try:
        pid = processes.spawn_detached(orch_argv("loop"), os.environ, log)
    except OSError as exc:
        raise ServeError(f"cannot start the loop (log {log}): {describe_os_error(exc)}") from exc
    started = processes.start_time(pid)
    deadline = time.monotonic() + LOOP_START_LIMIT
    while time.monotonic() < deadline:
        found = runtime.running(settings.home, runtime.LOOP)
        if found is not None:
            return found, found.pid == pid
        if not processes.is_alive(pid, started):
            # it exited at start-up (or lost the race to another loop, which then shows)
            found = runtime.running(settings.home, runtime.LOOP)
            if found is not None:
                return found, False
            raise ServeError(f"the loop (pid {pid}) exited at start-up: see {log}")
        time.sleep(0.05)
    raise ServeError(f"the loop (pid {pid}) did not start within {LOOP_START_LIMIT:g}s: see {log}")


def stop(settings: Settings, grace: float) -> list[str]:
    """Stop the dashboard server and the loop (SIGTERM, then SIGKILL); say what happened."""
    said = []
    for name in (runtime.SERVER, runtime.LOOP):
        found = runtime.running(settings.home, name)
        if found is None:
            said.append(f"no {name} running")
            continue
        outcome = processes.terminate(found.pid, found.started_at, grace)
        runtime.running(settings.home, name)  # a SIGKILLed process leaves its record: drop it
        said.append(f"{name} pid {found.pid} {outcome}")
    return said
