"""``orch serve`` and ``orch loop`` as real processes: one loop per orch home whatever
happens (two starts at once, a stale pid file, a reused pid, kill -9), the loop outliving
a Ctrl-C of the dashboard, and ``orch serve --stop`` stopping both."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orch.serve import runtime
from orch.system import processes
from tests.support.cli import ORCH_BIN
from tests.support.dashboard import http
from tests.support.processes import Proc, wait_for

RunOrch = Callable[..., subprocess.CompletedProcess[str]]
FAST = {"ORCH_SERVE_INTERVAL": "0.2"}


@pytest.fixture
def procs(tmp_path: Path, isolated_env: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def _start(*args: str) -> Proc:
        proc = Proc([ORCH_BIN, *args], tmp_path / "out", env=FAST, start_new_session=True)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.kill()
    loop = runtime.running(isolated_env, runtime.LOOP)
    if loop is not None:  # a loop a test started in the background
        processes.terminate(loop.pid, loop.started_at, 5)


def dashboard_url(proc: Proc) -> str:
    found = wait_for(lambda: re.search(r"dashboard at (\S+)", proc.stdout), "the dashboard URL")
    return str(found.group(1))


def loop_record(home: Path) -> runtime.Record:
    record: runtime.Record = wait_for(
        lambda: runtime.running(home, runtime.LOOP), "the loop to publish itself"
    )
    return record


def test_serve_starts_the_loop_which_outlives_ctrl_c_and_stop_ends_both(
    procs: Callable[..., Proc], run_orch: RunOrch, isolated_env: Path
) -> None:
    server = procs("serve", "--port", "0")
    url = dashboard_url(server)
    loop = loop_record(isolated_env)
    assert f"started loop pid {loop.pid}" in server.stdout
    base, _, query = url.partition("?")
    code, status = http(f"{base}api/status?{query}")
    assert code == 200 and status["loop_pid"] == loop.pid
    assert http(base + "api/status")[0] == 401  # the printed URL's token is needed

    again = run_orch("serve", "--port", "0", env=FAST)
    assert again.returncode == 0, again.stderr
    assert f"orch serve already runs at {url} (pid {server.pid})" in again.stdout

    os.killpg(server.pid, signal.SIGINT)  # Ctrl-C reaches the dashboard's process group
    assert server.wait() == 0
    assert runtime.running(isolated_env, runtime.SERVER) is None
    assert loop.alive, "the loop must survive Ctrl-C of the dashboard"

    second = procs("serve", "--port", "0")
    dashboard_url(second)
    assert f"reusing the running loop pid {loop.pid}" in second.stdout
    stopped = run_orch("serve", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"server pid {second.pid} stopped by SIGTERM" in stopped.stdout
    assert f"loop pid {loop.pid} stopped by SIGTERM" in stopped.stdout
    assert second.wait() == 0 and not loop.alive
    assert sorted(p.name for p in runtime.serve_dir(isolated_env).glob("*.json")) == ["status.json"]
    nothing = run_orch("serve", "--stop")
    assert nothing.stdout.splitlines() == ["no server running", "no loop running"]


def test_two_loops_started_at_once_leave_exactly_one_running(
    procs: Callable[..., Proc], isolated_env: Path
) -> None:
    first, second = procs("loop"), procs("loop")
    record = loop_record(isolated_env)
    loser = second if record.pid == first.pid else first
    winner = first if loser is second else second
    assert loser.wait() == 0
    assert "the loop already runs for this orch home" in loser.stdout
    assert winner.popen.poll() is None
    status = runtime.serve_dir(isolated_env) / "status.json"
    wait_for(
        lambda: (json.loads(status.read_text()) if status.exists() else {}).get("loop"),
        "a status snapshot",
    )
    winner.signal(signal.SIGTERM)
    assert winner.wait() == 0
    assert runtime.running(isolated_env, runtime.LOOP) is None


def test_a_loop_killed_with_sigkill_is_replaced_and_its_stale_record_removed(
    procs: Callable[..., Proc], run_orch: RunOrch, isolated_env: Path
) -> None:
    killed = procs("loop")
    old = loop_record(isolated_env)
    killed.signal(signal.SIGKILL)
    killed.wait()
    record_file = runtime.serve_dir(isolated_env) / "loop.json"
    assert record_file.exists()  # kill -9 gave it no chance to withdraw

    server = procs("serve", "--port", "0")
    dashboard_url(server)
    new = loop_record(isolated_env)
    assert new.pid != old.pid and f"started loop pid {new.pid}" in server.stdout
    assert run_orch("serve", "--stop").returncode == 0
    assert server.wait() == 0


def test_a_pid_file_naming_a_reused_pid_is_stale(
    procs: Callable[..., Proc], isolated_env: Path
) -> None:
    """The pid is alive (this test process) but started at another time: not the loop."""
    runtime.write_json(
        runtime.serve_dir(isolated_env) / "loop.json",
        {"pid": os.getpid(), "started_at": 1.0, "interval": 5},
    )
    assert runtime.running(isolated_env, runtime.LOOP) is None
    assert not (runtime.serve_dir(isolated_env) / "loop.json").exists()
    loop = procs("loop")
    assert loop_record(isolated_env).pid == loop.pid


def test_a_busy_port_is_one_error_line_and_leaves_no_server_record(
    procs: Callable[..., Proc], run_orch: RunOrch, isolated_env: Path
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_orch("serve", "--port", str(port), env=FAST)
    assert busy.returncode == 19, busy.stderr
    assert busy.stderr.splitlines()[-1].startswith("Error: cannot serve the dashboard on ")
    assert "Traceback" not in busy.stderr
    assert runtime.running(isolated_env, runtime.SERVER) is None
    assert runtime.running(isolated_env, runtime.LOOP) is None  # nothing was started
