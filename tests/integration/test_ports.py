"""Port bundles: disjoint blocks under concurrency, busy ports skipped, shell-safe exports."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orch.models import PortBundle
from orch.system.ports import export_lines
from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, assert_failed_cleanly, json_out
from tests.support.repos import git


def _bundle(run_cli: Any, attempt_id: str) -> dict[str, Any]:
    return json_out(run_cli("ports", attempt_id, "--json"))


def test_dispatch_leases_a_bundle_and_writes_it_everywhere(repo: Path, run_cli: Any) -> None:
    attempt = dispatch(run_cli, repo, "web-app")
    bundle = _bundle(run_cli, attempt["id"])
    ports = bundle["ports"]
    assert bundle["size"] == 100 and ports["base"] == bundle["start"]
    assert (ports["web"], ports["api"], ports["db"]) == (
        bundle["start"],
        bundle["start"] + 1,
        bundle["start"] + 2,
    )
    payload = json.loads(Path(attempt["payload_path"]).read_text())
    assert payload["ports"] == ports
    worktree = Path(attempt["worktree_path"])
    assert json.loads((worktree / ".orch" / "ports.json").read_text())["ports"] == ports
    # never committed: git does not even see it
    assert git("status", "--porcelain", "--untracked-files=all", cwd=worktree) == ""
    assert run_cli("ports", attempt["id"], "--get", "api").stdout.strip() == str(ports["api"])
    line = assert_failed_cleanly(run_cli("ports", attempt["id"], "--get", "nope"), 2)
    assert line == f"Error: no port slot 'nope' (slots: {', '.join(ports)})"


def test_a_port_in_use_is_skipped(
    repo: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = 41000 + (os.getpid() % 200) * 20
    monkeypatch.setenv("ORCH_PORT_BASE", str(base))
    monkeypatch.setenv("ORCH_PORT_BLOCK_SIZE", "10")
    holder = socket.socket()
    holder.bind(("127.0.0.1", base + 7))  # a process holds a port inside the first block
    holder.listen()
    try:
        attempt = dispatch(run_cli, repo, "busy")
        start = _bundle(run_cli, attempt["id"])["start"]
    finally:
        holder.close()
    assert start != base and start >= base + 10


def test_32_concurrent_dispatches_get_32_disjoint_blocks(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo("busy-repo")
    env = {**os.environ, "ORCH_PORT_BLOCK_SIZE": "10"}
    go = tmp_path / "go"
    script = (
        "import os, sys, time, subprocess\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        f"sys.exit(subprocess.call([{ORCH_BIN!r}, 'dispatch', sys.argv[1], '--prompt', 'p',"
        " '--json']))\n"
    )
    procs = [
        subprocess.Popen(
            ["python3", "-c", script, f"task-{i}"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(32)
    ]
    time.sleep(0.5)
    go.touch()
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    starts = []
    for out, _err in results:
        payload = json.loads(Path(json.loads(out)["attempt"]["payload_path"]).read_text())
        starts.append(payload["ports"]["base"])
    assert len(set(starts)) == 32
    blocks = sorted(starts)
    assert all(b - a >= 10 for a, b in itertools.pairwise(blocks))


def test_export_lines_are_inert_in_every_shell(tmp_path: Path) -> None:
    bundle = PortBundle(start=23000, size=100, slots={"web": 0, "db_main": 5})
    script = (
        "\n".join(export_lines(bundle))
        + '\necho "$ORCH_PORT_WEB $ORCH_PORT_DB_MAIN $ORCH_PORT_COUNT"\n'
    )
    for shell in ("sh", "bash"):
        out = subprocess.run([shell, "-c", script], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "23000 23005 100"
    assert all(line.split("=", 1)[1].startswith("'") for line in export_lines(bundle))
