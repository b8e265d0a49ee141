"""Benchmark of the attempt lifecycle through orch's store API.

Measures, on a fresh store:

* cycles per second with 1 and 8 worker processes, and the claim latency (median, p99),
  in three modes (``--modes``): ``separate`` claim+heartbeat+finish, three durable write
  transactions a cycle; ``chained``, the same but the finish claims the next attempt in
  its transaction (``Store.finish_and_claim``, what ``orch work`` does): two a cycle;
  ``batch:K``, ``claim_many`` of K attempts and one ``finish_many`` (claim+finish, no
  heartbeat: two transactions per K attempts), for workers that run several at once;
* the wake latency of ``orch.attempts.lifecycle.wait`` (the code behind ``orch wait``): the time
  from the commit that ends an attempt to the waiter returning, median and p99, and the
  same through the ``orch wait`` command in a subprocess (which adds process exit).

Usage: python bench/lifecycle_bench.py [--backend sqlite|postgresql] [--attempts N]
       [--processes 1,8] [--modes separate,chained,batch:32] [--wakes N] [--json out.json]
PostgreSQL uses ORCH_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
and a throwaway database of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import queue as queue_module
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orch.attempts import lifecycle
from orch.attempts.intent import record_intent
from orch.models import Finish, NewAttempt, State, WorkerIdentity
from orch.store import Store, open_store, upgrade_store

TARGET_CYCLES_8 = 500.0
TARGET_CLAIM_P99_MS = 50.0
TARGET_WAKE_MEDIAN_MS = 50.0
TARGET_PG_CYCLES = 2000.0  # claim+finish at 8 and 16 processes, batching allowed (issue 5)
TARGET_PG_WAKE_MEDIAN_MS = 10.0
TARGET_PG_WAKE_P99_MS = 50.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


SYNCHRONOUS = os.environ.get("ORCH_SQLITE_SYNCHRONOUS", "NORMAL")


def open_bench_store(url: str, home: Path) -> Store:
    return open_store(url, home / "locks", auto_migrate=True, synchronous=SYNCHRONOUS)


def seed(store: Store, count: int, repository: str) -> list[str]:
    ids = []
    for i in range(count):
        attempt_id = uuid.uuid4().hex[:8]
        new = NewAttempt(
            id=attempt_id,
            task_key=f"bench-{i}",
            repository=repository,
            base_ref="HEAD",
            base_commit="0" * 40,
            branch_name=f"orch/bench-{attempt_id}",
            worktree_path=f"/nonexistent/{attempt_id}",
            worker=None,
            prompt="bench",
        )
        attempt_id = record_intent(store, new, "bench").id  # ids are 32 random bits
        store.finish_provisioning(attempt_id, Path(f"/nonexistent/{attempt_id}.json"), "bench")
        ids.append(attempt_id)
    return ids


def worker_loop(
    url: str, home: str, name: str, mode: str, out: Any, ready: Any, start: Any
) -> None:
    """One worker process. ``mode``: ``separate`` (claim, heartbeat, finish: three write
    transactions a cycle), ``chained`` (the finish claims the next attempt in the same
    transaction, as ``orch work`` does: two) or ``batch:K`` (``claim_many`` of K, then
    ``finish_many``). The claim latency is the time of the call that
    hands the worker its next lease(s)."""
    store = open_bench_store(url, Path(home))
    identity = WorkerIdentity(name=name, host="bench", pid=None, started_at=None)
    claims: list[float] = []
    cycles = 0
    store.get_many(["-"])  # connected, and the read path warm
    ready.put(name)
    start.wait()
    if mode.startswith("batch:"):
        size = int(mode.split(":")[1])
        while True:
            t0 = time.perf_counter()
            leases = store.claim_many(identity, 30.0, name, size)
            claims.append(time.perf_counter() - t0)
            if not leases:
                break
            store.finish_many(
                [Finish(le.attempt.id, le.token, State.SUCCEEDED, 0, "ok") for le in leases],
                name,
            )
            cycles += len(leases)
    else:
        t0 = time.perf_counter()
        lease = store.claim(identity, 30.0, name)
        claims.append(time.perf_counter() - t0)
        while lease is not None:
            store.heartbeat(lease.attempt.id, lease.token, 30.0)
            t0 = time.perf_counter()
            if mode == "chained":
                _ended, lease = store.finish_and_claim(
                    lease.attempt.id, lease.token, State.SUCCEEDED, name, 0, "ok", identity, 30.0
                )
            else:
                store.finish(lease.attempt.id, lease.token, State.SUCCEEDED, name, 0, "ok")
                t0 = time.perf_counter()
                lease = store.claim(identity, 30.0, name)
            claims.append(time.perf_counter() - t0)
            cycles += 1
    store.close()
    out.put((cycles, claims[:-1]))


def cycles_per_second(
    url: str, home: Path, processes: int, attempts: int, mode: str
) -> dict[str, Any]:
    store = open_bench_store(url, home)
    seed(store, attempts, f"/bench/{uuid.uuid4().hex}")
    if not url.startswith("sqlite"):
        # a store in use has current statistics (autovacuum); a table seeded a moment
        # ago has none and the planner would sort every queued row for each claim
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE attempts")
    store.close()
    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Queue()
    start = ctx.Event()
    procs = [
        ctx.Process(target=worker_loop, args=(url, str(home), f"w{i}", mode, out, ready, start))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    # the clock starts once every process has imported orch and connected
    for _ in procs:
        _get(ready, procs)
    t0 = time.perf_counter()
    start.set()
    results = [_get(out, procs) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    claims = [c for r in results for c in r[1]]
    return {
        "mode": mode,
        "processes": processes,
        "cycles": total,
        "seconds": wall,
        "cycles_per_second": total / wall,
        "claim_median_ms": statistics.median(claims) * 1000,
        "claim_p99_ms": pct(claims, 0.99) * 1000,
    }


def _get(queue: Any, procs: list[Any]) -> Any:
    """The next item, or an exit (not a hang) when a worker process died without one."""
    while True:
        try:
            return queue.get(timeout=1.0)
        except queue_module.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(
                    f"a worker process failed (exit code {dead[0].exitcode})"
                ) from None


def _wait_then_stamp(store: Store, attempt_id: str, stamps: list[float]) -> None:
    lifecycle.wait(store, [attempt_id], 30.0, "bench")
    stamps.append(time.perf_counter())


def wake_latency(
    url: str, home: Path, trials: int, start_waiter: Callable[[str], Callable[[], float]]
) -> dict[str, float]:
    """How long after a finish commits a waiter on the attempt returns. ``start_waiter``
    starts one and returns once it is asleep between looks, handing back what to call,
    after the finish, for the moment the waiter returned."""
    store = open_bench_store(url, home)
    ids = seed(store, trials, f"/bench/{uuid.uuid4().hex}")
    identity = WorkerIdentity(name="w", host="bench")
    latencies = []
    for attempt_id in ids:
        lease = store.claim(identity, 30.0, "bench", attempt_id)
        assert lease is not None
        returned = start_waiter(attempt_id)
        store.finish(attempt_id, lease.token, State.SUCCEEDED, "bench", 0, "ok")
        committed = time.perf_counter()
        latencies.append(returned() - committed)
    store.close()
    return {
        "trials": trials,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
    }


def wake_latency_api(url: str, home: Path, trials: int) -> dict[str, float]:
    def start_waiter(attempt_id: str) -> Callable[[], float]:
        stamps: list[float] = []
        waiter_store = open_bench_store(url, home)
        th = threading.Thread(target=_wait_then_stamp, args=(waiter_store, attempt_id, stamps))
        th.start()
        time.sleep(0.2)  # the waiter is asleep between looks

        def returned() -> float:
            th.join()
            waiter_store.close()
            return stamps[0]

        return returned

    return wake_latency(url, home, trials, start_waiter)


def wake_latency_cli(url: str, home: Path, trials: int, env: dict[str, str]) -> dict[str, float]:
    orch = str(Path(sys.executable).parent / "orch")

    def start_waiter(attempt_id: str) -> Callable[[], float]:
        proc = subprocess.Popen([orch, "wait", attempt_id], env=env, stdout=subprocess.DEVNULL)
        time.sleep(0.6)  # past start-up: the waiter is polling

        def returned() -> float:
            proc.wait()
            return time.perf_counter()

        return returned

    return wake_latency(url, home, trials, start_waiter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--processes", default="1,8")
    parser.add_argument("--wakes", type=int, default=40)
    parser.add_argument(
        "--modes",
        default="separate,chained",
        help="comma-separated: separate, chained, batch:K (see worker_loop)",
    )
    parser.add_argument(
        "--synchronous",
        choices=("NORMAL", "FULL"),
        default="NORMAL",
        help="SQLite durability: NORMAL (orch's default) or FULL",
    )
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    # spawned worker processes read it from the environment
    os.environ["ORCH_SQLITE_SYNCHRONOUS"] = args.synchronous
    global SYNCHRONOUS
    SYNCHRONOUS = args.synchronous

    tmp = Path(tempfile.mkdtemp(prefix="orch-lifecycle-bench-"))
    home = tmp / "home"
    env = {**os.environ, "ORCH_HOME": str(home), "HOME": str(tmp)}
    cleanup = None
    if args.backend == "sqlite":
        url = f"sqlite:///{home / 'orch.db'}"
    else:
        url, cleanup = make_pg_database()
        upgrade_store(url, home / "locks")
    env["ORCH_DATABASE_URL"] = url
    os.environ.update({"ORCH_HOME": str(home), "ORCH_DATABASE_URL": url})
    try:
        report: dict[str, Any] = {
            "date": dt.date.today().isoformat(),
            "backend": args.backend,
            "sqlite_synchronous": args.synchronous if args.backend == "sqlite" else None,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "cycles": [
                cycles_per_second(url, home, int(n), args.attempts, mode)
                for mode in args.modes.split(",")
                for n in args.processes.split(",")
            ],
            "wake_api": wake_latency_api(url, home, args.wakes),
            "wake_cli": wake_latency_cli(url, home, max(10, args.wakes // 2), env),
        }
    finally:
        if cleanup:
            cleanup()
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


def make_pg_database() -> tuple[str, Any]:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(
        os.environ.get("ORCH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    )
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"orch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return admin.set(database=name).render_as_string(hide_password=False), drop


def print_report(report: dict[str, Any]) -> None:
    sync = f" synchronous={report['sqlite_synchronous']}" if report["sqlite_synchronous"] else ""
    print(
        f"orch lifecycle bench, {report['backend']}{sync}, {report['cpus']} cpus, {report['date']}"
    )
    print(
        f"{'mode':>9} {'processes':>9} {'cycles':>7} {'cycles/s':>9} {'claim p50 ms':>12} "
        f"{'claim p99 ms':>12}"
    )
    for row in report["cycles"]:
        print(
            f"{row['mode']:>9} {row['processes']:>9} {row['cycles']:>7} "
            f"{row['cycles_per_second']:>9.0f} "
            f"{row['claim_median_ms']:>12.2f} {row['claim_p99_ms']:>12.2f}"
        )
    for row in report["cycles"]:
        if report["backend"] == "postgresql" and row["processes"] in (8, 16):
            ok = row["cycles_per_second"] >= TARGET_PG_CYCLES
            print(
                f"{row['mode']}, {row['processes']} processes: >= {TARGET_PG_CYCLES:.0f} "
                f"cycles/s {'PASS' if ok else 'FAIL'}"
            )
        if row["processes"] != 8 or report["backend"] != "sqlite":
            continue
        ok = row["cycles_per_second"] >= TARGET_CYCLES_8
        p99 = row["claim_p99_ms"] <= TARGET_CLAIM_P99_MS
        print(
            f"{row['mode']}, 8 processes: >= {TARGET_CYCLES_8:.0f} cycles/s "
            f"{'PASS' if ok else 'FAIL'}; claim p99 <= {TARGET_CLAIM_P99_MS:.0f} ms "
            f"{'PASS' if p99 else 'FAIL'}"
        )
    for key, label in (
        ("wake_api", "wait wake (API)"),
        ("wake_cli", "orch wait (CLI, incl. exit)"),
    ):
        w = report[key]
        print(
            f"{label:<28} median {w['median_ms']:.1f} ms  p99 {w['p99_ms']:.1f} ms"
            f"  ({w['trials']} trials)"
        )
    wake = report["wake_api"]
    if report["backend"] == "postgresql":  # LISTEN/NOTIFY (issue 5)
        ok = (
            wake["median_ms"] <= TARGET_PG_WAKE_MEDIAN_MS
            and wake["p99_ms"] <= TARGET_PG_WAKE_P99_MS
        )
        print(
            f"target wake median <= {TARGET_PG_WAKE_MEDIAN_MS:.0f} ms and p99 <= "
            f"{TARGET_PG_WAKE_P99_MS:.0f} ms: {'PASS' if ok else 'FAIL'}"
        )
    else:
        ok = wake["median_ms"] <= TARGET_WAKE_MEDIAN_MS
        print(f"target wake median <= {TARGET_WAKE_MEDIAN_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
