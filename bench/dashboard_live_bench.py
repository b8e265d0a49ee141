"""Benchmark: how soon the dashboard's change stream tells of a change (issue 20, point 3 and
the second half of point 7). Target: p99 at most 1 s.

Starts the installed ``orch serve`` (a real process, its loop included) on a store of its
own, opens its change stream (``GET /api/changes``: the bytes a page's EventSource reads),
and makes ``--changes`` changes one at a time from another process: each cancels a queued
attempt through the store API (what ``orch cancel`` commits, without the seconds of a
command's start-up, which are not the stream's). Measured per change: from the moment its
commit returned in the changing process to the moment the stream delivered the
``changed`` message naming its attempt (CLOCK_MONOTONIC, shared by both processes). The
next change waits for that message. SQLite and PostgreSQL (a database of its own, made on
``ORCH_BENCH_PG_URL``, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).

Usage: python bench/dashboard_live_bench.py [--changes N] [--backend sqlite|postgresql|both]
       [--orch PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import add_orch_and_json, bench_run, compile_orch, log, publish, report_head

TARGET_MS = 1000.0
TOKEN = "bench-token"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# run by orch's own Python: seed queued attempts, then cancel one per line read, printing
# the monotonic time its commit returned
DRIVER = """
import os, sys, time
from pathlib import Path
from orch.config import resolve
from orch.models import NewAttempt
from orch.store import open_store
s = resolve(os.environ)
store = open_store(s.database_url, s.locks_dir)
ids = []
for i in range(int(sys.argv[1])):
    aid = os.urandom(4).hex()
    a = store.create_attempt(NewAttempt(id=aid, task_key=f'live-{i}', repository='/bench',
        base_ref='HEAD', base_commit='0' * 40, branch_name=f'orch/live-{aid}',
        worktree_path=f'/nonexistent/{aid}', worker=None, prompt='bench'), 'bench')
    store.finish_provisioning(a.id, Path('/nonexistent.json'), 'bench')
    ids.append(a.id)
print('ready', flush=True)
for aid in ids:
    sys.stdin.readline()
    store.cancel(aid, 'bench', 'bench')
    print(aid, time.monotonic(), flush=True)
"""

PG_ADMIN = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    if sys.argv[2] == 'create':
        conn.execute(f'CREATE DATABASE "{sys.argv[3]}"')
    else:
        conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[3]}" WITH (FORCE)')
"""


class Stream:
    """The change stream, read by a thread: each message's data and when it arrived."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.request("GET", f"/api/changes?token={TOKEN}")
        response = self.conn.getresponse()
        if response.status != 200:
            raise SystemExit(f"the change stream answered {response.status}")
        self.response = response
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        data = None
        for raw in self.response.fp:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
            elif not line and data is not None:
                with self.cond:
                    self.seen.append((time.monotonic(), data))
                    self.cond.notify_all()
                data = None

    def arrival(self, attempt_id: str, after: int) -> float:
        """When the first message after the ``after``-th one named ``attempt_id`` (or all)."""
        deadline = time.monotonic() + 60
        with self.cond:
            while True:
                for at, data in self.seen[after:]:
                    if data["attempts"] is None or attempt_id in data["attempts"]:
                        return at
                if not self.cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise SystemExit(f"no message named {attempt_id} within 60 s")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(orch: str, python: str, env: dict[str, str], changes: int) -> list[float]:
    errors = Path(env["HOME"]) / "serve.err"
    serve = subprocess.Popen(
        [orch, "serve", "--port", "0", "--token", TOKEN],
        env=env,
        cwd=env["HOME"],
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        text=True,
        start_new_session=True,
    )
    driver = None
    try:
        assert serve.stdout is not None
        port = None
        for line in serve.stdout:
            found = re.search(r"dashboard at http://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        if port is None:
            raise SystemExit(f"orch serve printed no dashboard URL: {errors.read_text()[-800:]}")
        stream = Stream(port)
        driver = subprocess.Popen(
            [python, "-c", DRIVER, str(changes)],
            env=env,
            cwd=env["HOME"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdin is not None and driver.stdout is not None
        if driver.stdout.readline().strip() != "ready":
            raise SystemExit("the driver did not seed its attempts")
        time.sleep(1.0)  # untimed: the seeding's own messages pass
        latencies = []
        for _ in range(changes):
            with stream.cond:
                before = len(stream.seen)
            driver.stdin.write("\n")
            driver.stdin.flush()
            attempt_id, committed = driver.stdout.readline().split()
            latencies.append((stream.arrival(attempt_id, before) - float(committed)) * 1000)
        return latencies
    finally:
        if driver is not None:
            driver.kill()
            driver.wait()
        subprocess.run([orch, "serve", "--stop"], env=env, cwd=env["HOME"], capture_output=True)
        if serve.poll() is None:
            serve.kill()
        serve.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    add_orch_and_json(ap)
    args = ap.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    report: dict[str, Any] = {"changes": args.changes, "target_p99_ms": TARGET_MS, "backends": {}}
    lines = []
    with bench_run("orch-live-bench-", args.orch) as br:
        report.update(report_head(br.env))
        compile_orch(br.python, br.env, log)
        for backend in backends:
            env = {**br.env, "ORCH_HOME": str(br.root / f"home-{backend}")}
            database = None
            admin = os.environ.get("ORCH_BENCH_PG_URL", PG_URL)
            if backend == "postgresql":
                database = f"orch_live_bench_{uuid.uuid4().hex[:8]}"
                conninfo = admin.replace("+psycopg", "")
                subprocess.run(
                    [br.python, "-c", PG_ADMIN, conninfo, "create", database], check=True
                )
                env["ORCH_DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/" + database
                subprocess.run(
                    [br.orch, "db", "upgrade"],
                    env=env,
                    cwd=env["HOME"],
                    check=True,
                    capture_output=True,
                )
            try:
                log(f"{backend}: {args.changes} changes")
                ms = measure(br.orch, br.python, env, args.changes)
            finally:
                if database is not None:
                    conninfo = admin.replace("+psycopg", "")
                    subprocess.run([br.python, "-c", PG_ADMIN, conninfo, "drop", database])
            row = {"p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "max_ms": max(ms)}
            report["backends"][backend] = row
            verdict = "ok" if row["p99_ms"] <= TARGET_MS else "OVER the 1 s target"
            lines.append(
                f"  {backend:>10}: p50 {row['p50_ms']:7.1f}  p99 {row['p99_ms']:7.1f}  "
                f"max {row['max_ms']:7.1f} ms  ({verdict})"
            )
    load = os.getloadavg()[0]
    report["load"] = load
    text = "\n".join(
        [f"change committed -> the stream's message, {args.changes} changes (load {load:.1f}):"]
        + lines
    )
    publish(report, text, args.json)


if __name__ == "__main__":
    main()
