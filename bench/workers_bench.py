#!/usr/bin/env python3
"""Benchmark of many ``orch work`` processes on one PostgreSQL, directly and through PgBouncer.

On a throwaway PostgreSQL server of its own (initdb, ``max_connections`` as given, 100 by
default) and a PgBouncer of its own in front of it (transaction mode, ``--pool-size``
server connections), for each worker count N and each route (``direct``, ``pgbouncer``):

* seeds N x ``--per-worker`` queued attempts through the store's own code, each with a
  worktree directory of its own (an empty directory: the agent is ``true``);
* starts N ``orch work --quiet --idle-poll 1 -- true`` processes at once, and samples the
  server's connections to the bench database (``pg_stat_activity``'s client backends,
  every 0.1 s; the server's own autovacuum workers on it are counted apart) until every
  attempt has ended;
* then, the workers idle, queues ``--pickups`` attempts one at a time and measures how long
  each waited for an idle worker (claim latency: queued -> claimed, the store's clock);
* and prints: server connections held (peak while working, peak while idle), attempts per
  second (first claim to last finish), claim latency (p50, p90), and failures: attempts
  that did not succeed (``worker_gone`` named apart), workers that exited, stderr lines
  saying "too many clients" (ridden out) and "prepared statement" (a correctness bug).

Then the wake latency of ``orch wait`` (``lifecycle.wait``) through the pooler: from the
commit of a finish to the waiter returning, with ``listen_url`` (LISTEN on the server
itself) and without (the sweep only).

Needs initdb/pg_ctl under /usr/lib/postgresql/*/bin and pgbouncer (scripts/ensure-pgbouncer
installs it); as root both run as the postgres user. Each worker is a Python process of
some 40-60 MB: N workers need N times that in memory, and starting them takes a core
for about 0.3 s each.

    python bench/workers_bench.py [--workers 10,50] [--routes direct,pgbouncer]
        [--max-connections 100] [--pool-size 20] [--per-worker 2] [--concurrency 1]
        [--json out.json]

With ``--concurrency C`` each of the N workers is ``orch work --concurrency C``: N
processes run N x C agents at once (and hold at most N connections).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import glob
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from orch.attempts import lifecycle
from orch.attempts.intent import record_intent
from orch.models import NewAttempt, State, WorkerIdentity
from orch.store import Connecting, Store, open_store, upgrade_store

LIMIT = 1800.0  # seconds: give up on a run that has not ended by then
WAKE_TARGET_MS = 10.0
STARTED: list[subprocess.Popen[bytes]] = []  # every worker, killed when the bench ends


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres() -> list[str]:
    """initdb, postgres and pgbouncer refuse root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class Server:
    """A throwaway PostgreSQL server with ``max_connections`` as given."""

    def __init__(self, root: Path, max_connections: int) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        if not bindirs:
            raise SystemExit("no /usr/lib/postgresql/*/bin: install PostgreSQL's server")
        self.bin = Path(bindirs[0])
        self.dir = root / "pg"
        self.dir.mkdir()
        give_to_postgres(self.dir)
        self.port = free_port()
        self.options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={max_connections} -c fsync=off"
        )
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        self.pg_ctl("start")

    def _run(self, *argv: str) -> None:
        proc = subprocess.run([*as_postgres(), *argv], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {proc.stderr or proc.stdout}")

    def pg_ctl(self, action: str, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), action, "-D", str(self.dir / "data"), "-w",
                  "-l", str(self.dir / "server.log"), "-o", self.options, *args)  # fmt: skip

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(SystemExit):
            self.pg_ctl("stop", "-m", "immediate")


class Bouncer:
    """A PgBouncer of the bench's own, in transaction mode, in front of ``server``."""

    def __init__(self, root: Path, server: Server, pool_size: int) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise SystemExit("pgbouncer not installed: run scripts/ensure-pgbouncer")
        self.dir = root / "pgbouncer"
        self.dir.mkdir()
        self.port = free_port()
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={server.port}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir}/userlist.txt\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 5000\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.dir}/pgbouncer.log\npidfile = {self.dir}/pgbouncer.pid\n"
        )
        for path in [self.dir, *self.dir.iterdir()]:
            give_to_postgres(path)

        def more_files() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))

        self.proc = subprocess.Popen(
            [*as_postgres(), binary, str(self.dir / "pgbouncer.ini")],
            preexec_fn=more_files,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.url("postgres", self.port), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"pgbouncer did not answer: see {self.dir}/pgbouncer.log"
                    ) from exc
                time.sleep(0.2)

    def server_log(self, database: str) -> dict[str, int]:
        """What PgBouncer's log says it did with its server connections to ``database``:
        how many it opened, and why it closed each one it closed."""
        told: collections.Counter[str] = collections.Counter()
        with contextlib.suppress(OSError), open(self.dir / "pgbouncer.log") as log:
            for line in log:
                if " S-" not in line or f"{database}/" not in line:
                    continue
                if "new connection to server" in line:
                    told["opened"] += 1
                elif "closing because:" in line:
                    why = line.split("closing because:", 1)[1].split("(age", 1)[0].strip()
                    told[f"closed: {why}"] += 1
        return dict(told)

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def seed(store: Store, root: Path, count: int) -> list[str]:
    """Queued attempts, each in a repository and a worktree directory of its own (so no
    worker watches another's neighbours)."""
    ids = []
    for i in range(count):
        attempt_id = uuid.uuid4().hex[:8]
        worktree = root / attempt_id
        worktree.mkdir()
        new = NewAttempt(
            id=attempt_id, task_key=f"bench-{i}", repository=f"/bench/{attempt_id}",
            base_ref="HEAD", base_commit="0" * 40, branch_name=f"orch/bench-{attempt_id}",
            worktree_path=str(worktree), worker=None, prompt="bench",
        )  # fmt: skip
        attempt_id = record_intent(store, new, "bench").id
        store.finish_provisioning(attempt_id, root / f"{attempt_id}.json", "bench")
        ids.append(attempt_id)
    return ids


BENCH_NAME = "orch workers_bench"  # the bench's own connections, which it does not count


class Sampler(threading.Thread):
    """The server's connections to one database, every 0.1 s, on a connection of its own
    (opened first: on a full server it still gets to look)."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=True)
        self.database = database
        self.samples: list[tuple[float, int]] = []
        # who held the connections at the highest count: application_name -> count
        self.at_peak: dict[str, int] = {}
        self.peak_rows: list[dict[str, Any]] = []
        # samples in which each other kind of backend was seen on the database
        self.others_seen: collections.Counter[str] = collections.Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            found = self.conn.execute(
                "SELECT pid, coalesce(application_name, ''), coalesce(state, ''), "
                "extract(epoch FROM now() - backend_start), backend_type "
                "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND application_name IS DISTINCT FROM %s",
                (self.database, BENCH_NAME),
            ).fetchall()
            # connections only: the server's own workers on the database (autovacuum,
            # busy after hundreds of finishes) take no connection slot and are not
            # anybody's connection
            rows = [r for r in found if r[4] == "client backend"]
            for r in found:
                if r[4] != "client backend":
                    self.others_seen[str(r[4])] += 1
            count = len(rows)
            if count > max((c for _, c in self.samples), default=-1):
                self.at_peak = dict(collections.Counter(str(r[1]) for r in rows))
                # each connection at the peak: its name, state and age (a backend the
                # pooler just opened has no name yet; one it just closed is still exiting)
                self.peak_rows = [
                    {"pid": r[0], "name": r[1], "state": r[2], "age_s": round(float(r[3]), 2)}
                    for r in rows
                ]
            self.samples.append((time.monotonic(), count))

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((c for t, c in self.samples if since <= t <= until), default=0)

    def median(self, since: float = 0.0, until: float = float("inf")) -> float:
        counts = [c for t, c in self.samples if since <= t <= until]
        return statistics.median(counts) if counts else 0.0

    def states(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, count(*) FROM attempts GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.conn.close()


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_run(
    server: Server, bouncer: Bouncer | None, workers: int, per_worker: int, pickups: int,
    orch: str, root: Path, worker_source: str | None, concurrency: int = 1,
) -> dict[str, Any]:  # fmt: skip
    route = "pgbouncer" if bouncer else "direct"
    database = f"bench_{route}_{workers}_{uuid.uuid4().hex[:6]}"
    admin = psycopg.connect(server.url("postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    direct = server.url(database)
    run_dir = root / database
    (run_dir / "worktrees").mkdir(parents=True)
    upgrade_store(direct, run_dir / "locks")
    # the bench's own connections are taken before the workers come: on a full server
    # they would not get one
    # named, and holding no connection between its own transactions: the sampler counts
    # the workers' connections (and the pooler's) only
    store = open_store(
        direct,
        run_dir / "locks",
        connecting=Connecting(application_name=BENCH_NAME, hold_idle=False),
    )
    # each of a worker's slots gets --per-worker attempts
    ids = seed(store, run_dir / "worktrees", workers * concurrency * per_worker)
    env = {
        **os.environ,
        "ORCH_HOME": str(run_dir / "home"),
        "ORCH_DATABASE_URL": server.url(database, bouncer.port) if bouncer else direct,
        "ORCH_HOST_NAME": "bench",
    }
    if bouncer:
        env.update(ORCH_POOLER="true", ORCH_LISTEN_URL=direct)
    if worker_source:  # the workers run that orch (an older commit: the "before")
        env["PYTHONPATH"] = worker_source
    sampler = Sampler(direct, database)
    sampler.start()
    procs, errs = [], []
    # the option only when asked for: an older orch (--worker-source) has none
    many = ["--concurrency", str(concurrency)] if concurrency > 1 else []
    started = time.monotonic()
    for i in range(workers):
        err = (run_dir / f"worker-{i}.err").open("w")
        errs.append(err)
        STARTED.append(
            subprocess.Popen(
                [orch, "work", "--quiet", "--idle-poll", "1", *many, "--", "true"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        )  # fmt: skip
        procs.append(STARTED[-1])
    while True:
        states = sampler.states()
        if sum(v for k, v in states.items() if State(k).terminal) >= len(ids):
            break
        if time.monotonic() - started > LIMIT or all(p.poll() is not None for p in procs):
            break  # (every worker gone: nobody is left to end the rest)
        time.sleep(0.5)
    worked = time.monotonic()
    memory = sum(rss_mb(p.pid) for p in procs if p.poll() is None)
    time.sleep(2)
    idle_from = time.monotonic()
    time.sleep(5)  # idle: every worker between its looks for work
    idle_until = time.monotonic()
    # claim latency: attempts queued one at a time for idle workers
    alive = any(p.poll() is None for p in procs)
    picked = seed(store, run_dir / "worktrees", pickups) if pickups and alive else []
    deadline = time.monotonic() + 120
    while sum(a.state is not State.QUEUED for a in store.get_many(picked)) < len(picked):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    store.close()
    exited = [(i, p.returncode) for i, p in enumerate(procs) if p.poll() is not None]
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for err in errs:
        err.close()
    sampler.close()
    bench = psycopg.connect(direct, autocommit=True)
    ended = dict(bench.execute(
        "SELECT state, count(*) FROM attempts WHERE id = ANY(%s) GROUP BY state", (ids,)
    ).fetchall())  # fmt: skip
    (first_claim, last_end) = bench.execute(
        "SELECT min(e.created_at), max(a.updated_at) FROM attempts a "
        "JOIN attempt_events e ON e.attempt_id = a.id AND e.kind = 'claimed' "
        "WHERE a.id = ANY(%s)",
        (ids,),
    ).fetchone()
    waits = [
        float(w)
        for (w,) in bench.execute(
            "SELECT extract(epoch FROM e.created_at - a.created_at) FROM attempts a "
            "JOIN attempt_events e ON e.attempt_id = a.id AND e.kind = 'claimed' "
            "WHERE a.id = ANY(%s)",
            (picked,),
        )
    ]
    # why each attempt that did not succeed ended so: the event that ended it, its actor
    # (the reaping worker) and its reason ("lease expired (last heartbeat ...)", ...)
    endings = [
        {"attempt": a, "state": st, "event": k, "actor": who, "reason": (d or {}).get("reason")}
        for (a, st, k, who, d) in bench.execute(
            "SELECT DISTINCT ON (a.id) a.id, a.state, e.kind, e.actor, e.detail "
            "FROM attempts a JOIN attempt_events e ON e.attempt_id = a.id "
            "WHERE a.id = ANY(%s) AND a.state <> 'succeeded' ORDER BY a.id, e.id DESC",
            (ids,),
        )
    ]
    bench.close()
    stderr = "".join((run_dir / f"worker-{i}.err").read_text() for i in range(workers))
    admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    admin.close()
    span = (last_end - first_claim).total_seconds() if first_claim and last_end else 0.0
    return {
        "route": route,
        "workers": workers,
        "concurrency": concurrency,
        "attempts": len(ids),
        "succeeded": int(ended.get("succeeded", 0)),
        "worker_gone": int(ended.get("worker_gone", 0)),
        "not_succeeded": len(ids) - int(ended.get("succeeded", 0)),
        "not_succeeded_why": endings,
        "workers_exited": len(exited),
        "server_connections_peak_working": sampler.peak(started, worked),
        "server_connections_at_peak_by_name": sampler.at_peak,
        "server_connections_at_peak": sampler.peak_rows,
        "other_backends_seen_in_samples": dict(sampler.others_seen),
        "pooler_server_connections": bouncer.server_log(database) if bouncer else {},
        "server_connections_peak_idle": sampler.peak(idle_from, idle_until),
        "server_connections_median_idle": sampler.median(idle_from, idle_until),
        "attempts_per_second": len(ids) / span if span else 0.0,
        "claim_latency_p50_ms": pct(waits, 0.5) * 1000,
        "claim_latency_p90_ms": pct(waits, 0.9) * 1000,
        "too_many_clients_lines": stderr.count("too many clients"),
        "prepared_statement_lines": stderr.count("prepared statement"),
        "traceback_lines": stderr.count("Traceback"),
        "worker_rss_mb_total": round(memory),
        "stderr_sample": stderr.strip().splitlines()[-3:],
    }


def wake_latency(server: Server, bouncer: Bouncer, root: Path, trials: int,
                 listen: bool) -> dict[str, Any]:  # fmt: skip
    """From a finish's commit to ``lifecycle.wait`` returning, through the pooler."""
    database = f"bench_wake_{uuid.uuid4().hex[:6]}"
    admin = psycopg.connect(server.url("postgres"), autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    direct, pooled = server.url(database), server.url(database, bouncer.port)
    locks = root / database / "locks"
    (root / database / "worktrees").mkdir(parents=True)
    upgrade_store(direct, locks)
    told = Connecting(pooler=True, listen_url=direct if listen else None)
    latencies = []
    with open_store(pooled, locks, connecting=Connecting(pooler=True)) as store:
        ids = seed(store, root / database / "worktrees", trials)
        for attempt_id in ids:
            lease = store.claim(WorkerIdentity(name="w", host="bench"), 60.0, "w", attempt_id)
            assert lease is not None
            stamps: list[float] = []
            with open_store(pooled, locks, connecting=told) as waiting:

                def wait(attempt: str = attempt_id, into: list[float] = stamps) -> None:
                    lifecycle.wait(waiting, [attempt], 60.0, "bench")
                    into.append(time.perf_counter())

                thread = threading.Thread(target=wait)
                thread.start()
                time.sleep(0.3)  # asleep between its looks
                store.finish(attempt_id, lease.token, State.SUCCEEDED, "w", 0, "ok")
                committed = time.perf_counter()
                thread.join()
            latencies.append(stamps[0] - committed)
    admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    admin.close()
    return {
        "listen_url": listen,
        "trials": trials,
        "p50_ms": statistics.median(latencies) * 1000,
        "p90_ms": pct(latencies, 0.9) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="10,50")
    parser.add_argument("--routes", default="direct,pgbouncer")
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--per-worker", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="each worker runs 'orch work --concurrency C' (C x --per-worker attempts each)",
    )
    parser.add_argument("--pickups", type=int, default=20)
    parser.add_argument("--wakes", type=int, default=30)
    parser.add_argument("--orch", default=str(Path(sys.executable).parent / "orch"))
    parser.add_argument(
        "--worker-source",
        default=None,
        help="run the workers on the orch package in this directory (a worktree of an "
        "older commit, to measure before and after)",
    )
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    with contextlib.suppress(ValueError, OSError):  # a worker is a file descriptor or more
        resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))

    root = Path(tempfile.mkdtemp(prefix="orch-workers-bench-"))
    os.chmod(root, 0o755)  # the server and the pooler run as postgres under it
    server = Server(root, args.max_connections)
    bouncer = Bouncer(root, server, args.pool_size) if "pgbouncer" in args.routes else None
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "max_connections": args.max_connections,
        "pool_size": args.pool_size,
        "concurrency": args.concurrency,
        "worker_source": args.worker_source,
        "load_before": os.getloadavg()[0],
        "runs": [],
    }
    try:
        for n in (int(x) for x in args.workers.split(",")):
            for route in args.routes.split(","):
                result = one_run(
                    server, bouncer if route == "pgbouncer" else None, n, args.per_worker,
                    args.pickups, args.orch, root, args.worker_source, args.concurrency,
                )  # fmt: skip
                report["runs"].append(result)
                print(json.dumps(result), flush=True)
        if bouncer is not None and args.wakes:
            report["wake"] = [
                wake_latency(server, bouncer, root, args.wakes, listen=True),
                wake_latency(server, bouncer, root, max(5, args.wakes // 3), listen=False),
            ]
    finally:
        for proc in STARTED:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if bouncer is not None:
            bouncer.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    report["load_after"] = os.getloadavg()[0]

    print()
    print(f"max_connections={args.max_connections} pool_size={args.pool_size} "
          f"cpus={os.cpu_count()} load {report['load_before']:.1f} -> {report['load_after']:.1f}")  # fmt: skip
    header = ("route", "N", "C", "attempts", "failed", "gone", "exited", "conn peak", "idle peak/median",
              "att/s", "claim p50 ms", "p90 ms", "too many", "prepared")  # fmt: skip
    print(" | ".join(header))
    for r in report["runs"]:
        print(" | ".join(str(x) for x in (
            r["route"], r["workers"], r.get("concurrency", 1), r["attempts"], r["not_succeeded"], r["worker_gone"],
            r["workers_exited"], r["server_connections_peak_working"],
            f"{r['server_connections_peak_idle']}/{r['server_connections_median_idle']:g}",
            f"{r['attempts_per_second']:.1f}",
            f"{r['claim_latency_p50_ms']:.0f}", f"{r['claim_latency_p90_ms']:.0f}",
            r["too_many_clients_lines"], r["prepared_statement_lines"],
        )))  # fmt: skip
    for w in report.get("wake", []):
        verdict = "PASS" if w["p50_ms"] <= WAKE_TARGET_MS else "FAIL"
        label = "with listen_url" if w["listen_url"] else "without (sweep)"
        target = f" (target <= {WAKE_TARGET_MS:g} ms: {verdict})" if w["listen_url"] else ""
        print(f"orch wait wake through pgbouncer {label}: p50 {w['p50_ms']:.1f} ms, "
              f"p90 {w['p90_ms']:.1f} ms over {w['trials']}{target}")  # fmt: skip
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
