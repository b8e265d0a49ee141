#!/usr/bin/env python3
"""Does history slow the present? The everyday commands at 1k, 100k (1M) ended attempts.

For each store size and each backend (SQLite; PostgreSQL when ``--pg-url`` is given) it
makes a fresh store, seeds it with that many ended attempts with the shape of real rows
(60% succeeded, 25% failed, 10% cancelled, 5% timed out; all cleaned up, one in ten
archived; 8 events and one run each, a follow-up for one in four, a finished queued task
per task key, a webhook delivery per finished event: ``tests/support/history``,
bulk inserts through the store's own tables, run by orch's Python from its checkout; a
PostgreSQL store is then ``VACUUM ANALYZE``d, untimed, as autovacuum keeps a store whose
rows came over a year), adds
a few live attempts through ``orch dispatch`` in a real repository, and times, each as a
subprocess through the installed entry point (median of ``--repeat``):

* ``orch list`` (the default page), ``orch show <a seeded attempt>``, ``orch wait`` on an
  ended attempt, ``orch loop --once``, ``orch work --once -- true`` (an attempt dispatched
  untimed right before), ``orch doctor``, ``orch cleanup --all-terminal --dry-run``;
* the dashboard's first view: ``/``, ``/api/attempts`` as the page asks for it,
  ``/api/status`` and ``/api/tasks`` of a running ``orch serve`` (and the bytes of the
  attempts page).

It prints each time (wall, and CPU: user + system of the command and its children, the
steadier measure on a busy machine), its ratio to the smallest size, and how long seeding
took. The target is every ratio ≤ 1.2.

    python bench/history_bench.py [--sizes 1000,100000] [--pg-url URL [--no-sqlite]]
                                  [--only commands|dashboard] [--repeat 5]
                                  [--stores DIR [--seed-only]] [--json out.json]

``--only dashboard`` times the dashboard's first view alone (``--only commands``: the
commands alone). ``--stores DIR`` keeps the seeded stores (and PostgreSQL databases) and
reuses them: a 1M store takes 10 to 15 minutes to seed, which can be done once, untimed,
and measured later on a quiet machine (each run adds its few live attempts to the kept
store).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import add_orch_and_json, bench_run, log, publish, report_head, run

CHECKOUT = Path(__file__).resolve().parent.parent  # the seeder lives in its tests/support
TOKEN = "bench-token"
COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("list", ["list"]),
    ("show", ["show", "{seeded}"]),
    ("wait", ["wait", "{seeded}"]),
    ("loop --once", ["loop", "--once"]),
    ("work --once", ["work", "--once", "--", "true"]),
    ("doctor", ["doctor"]),
    ("cleanup --dry-run", ["cleanup", "--all-terminal", "--dry-run"]),
)


def _timed(
    cmd: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...]
) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the command and its children, git included):
    on a busy machine the CPU time is the steadier measure of the work done."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    req = urllib.request.Request(url, headers={"X-Orch-Token": TOKEN})
    with urllib.request.urlopen(req, timeout=120) as res:
        return len(res.read())


def _dashboard(orch: str, env: dict[str, str], repo: Path, repeat: int) -> tuple[float, int]:
    """The median time of the dashboard's first view, and the bytes of its attempts page."""
    port = _free_port()
    server = subprocess.Popen(
        [orch, "serve", "--port", str(port), "--token", TOKEN],
        env=env,
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # until it answers
            try:
                _get(base + "/api/tasks")
                break
            except OSError:
                time.sleep(0.1)
        times, size = [], 0
        for _ in range(repeat):
            start = time.perf_counter()
            _get(base + "/")
            size = _get(base + "/api/attempts?limit=50")
            _get(base + "/api/status")
            _get(base + "/api/tasks")
            times.append(time.perf_counter() - start)
        return statistics.median(times), size
    finally:
        subprocess.run([orch, "serve", "--stop"], env=env, cwd=repo, capture_output=True)
        server.wait(timeout=60)


def measure(
    orch: str,
    python: str,
    base_env: dict[str, str],
    root: Path,
    url: str,
    size: int,
    repeat: int,
    only: str | None = None,
    seed_only: bool = False,
) -> dict[str, Any]:
    env = {**base_env, "ORCH_HOME": str(root / "orch-home"), "ORCH_DATABASE_URL": url}
    repo = root / "repo"
    seeded_mark = root / "seeded"
    seeding = None
    if seeded_mark.exists():  # --stores: seeded by an earlier run
        log(f"  reusing the store seeded in {root}")
        run([orch, "db", "upgrade"], env, cwd=repo)
    else:
        repo.mkdir(parents=True)
        run(["git", "init", "-q", "-b", "main"], env, cwd=repo)
        (repo / "README").write_text("bench\n")
        run(["git", "add", "README"], env, cwd=repo)
        run(["git", "commit", "-qm", "init"], env, cwd=repo)
        run([orch, "db", "upgrade"], env, cwd=repo)
        start = time.perf_counter()
        run(
            [python, "-m", "tests.support.history", url, str(size), str(repo)],
            {**env, "PYTHONPATH": str(CHECKOUT)},
            cwd=CHECKOUT,
        )
        seeding = time.perf_counter() - start
        if url.startswith("postgresql"):
            # a year of rows arrives slowly, and autovacuum keeps the planner's statistics
            # of them; a bulk load in seconds gives it no time (without this the planner
            # chose scans: loop 1.77x at 100k)
            _sql(url, ["VACUUM ANALYZE"], env, python)
        seeded_mark.write_text(f"{size}\n")
        log(f"  seeded {size} ended attempts in {seeding:.1f}s")
    if seed_only:
        return {"size": size, "seeding_s": seeding, "times": {}, "cpu": {}}
    for n in range(3):  # a few live attempts beside the history
        run([orch, "dispatch", f"live-{n}", "--prompt", "do it"], env, cwd=repo)
    seeded = "h" + f"{size // 2:07d}"
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, args in COMMANDS if only != "dashboard" else ():
        samples = []
        for _ in range(repeat):
            if name == "work --once":
                run([orch, "dispatch", f"work-{time.monotonic_ns()}", "--prompt", "x"], env, repo)
            cmd = [orch, *(a.format(seeded=seeded) for a in args)]
            # doctor exits 18 when it finds problems; the history has none, a rerun may
            samples.append(_timed(cmd, env, repo, ok=(0, 18, 20)))
        times[name] = statistics.median(w for w, _ in samples)
        cpu[name] = statistics.median(c for _, c in samples)
        log(f"  {name:<20} {times[name]:.3f}s wall, {cpu[name]:.3f}s CPU")
    page = 0
    if only != "commands":
        times["dashboard first view"], page = _dashboard(orch, env, repo, repeat)
        log(f"  dashboard first view {times['dashboard first view']:.3f}s ({page} bytes)")
    return {
        "size": size,
        "seeding_s": seeding,
        "times": times,
        "cpu": cpu,
        "attempts_page_bytes": page,
    }


def _sql(url: str, statements: list[str], env: dict[str, str], python: str) -> None:
    """Run ``statements`` outside a transaction on the database of ``url``, with orch's
    Python (psycopg is installed there, not necessarily beside this script)."""
    code = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
        "    for statement in sys.argv[2:]: c.execute(statement)\n"
    )
    run(
        [python, "-c", code, url.replace("postgresql+psycopg://", "postgresql://"), *statements],
        env,
    )


def _pg_database(
    admin_url: str, name: str, env: dict[str, str], python: str, action: str = "create"
) -> str:
    """A new database on the server of ``admin_url`` (``action="drop"``: drop it)."""
    statements = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']
    if action == "create":
        statements.append(f'CREATE DATABASE "{name}"')
    _sql(admin_url, statements, env, python)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,100000", help="store sizes, smallest first")
    ap.add_argument("--pg-url", default=None, help="also measure PostgreSQL (admin URL)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL (--pg-url)")
    ap.add_argument(
        "--stores",
        default=None,
        help="keep the seeded stores in this directory (and their PostgreSQL databases) and "
        "reuse them in later runs: seed once (untimed), measure when the machine is quiet",
    )
    ap.add_argument("--seed-only", action="store_true", help="with --stores: seed, measure nothing")
    ap.add_argument(
        "--only", choices=("commands", "dashboard"), help="time only these (default: both)"
    )
    add_orch_and_json(ap)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if args.pg_url else [])
    with bench_run("orch-history-bench-", args.orch) as br:
        report: dict[str, Any] = {**report_head(br.env), "load": os.getloadavg(), "runs": []}
        for backend in backends:
            for size in sizes:
                root = (Path(args.stores) if args.stores else br.root) / f"{backend}-{size}"
                kept = args.stores is not None and (root / "seeded").exists()
                log(f"{backend}, {size} ended attempts")
                name = f"orch_hbench_{size}"
                if backend == "sqlite":
                    url = f"sqlite:///{root}/orch.db"
                elif kept:
                    url = args.pg_url.rsplit("/", 1)[0] + "/" + name
                else:
                    url = _pg_database(args.pg_url, name, br.env, br.python)
                try:
                    result = measure(
                        br.orch,
                        br.python,
                        br.env,
                        root,
                        url,
                        size,
                        args.repeat,
                        args.only,
                        args.seed_only,
                    )
                finally:
                    if backend == "postgresql" and args.stores is None:
                        _pg_database(args.pg_url, name, br.env, br.python, action="drop")
                report["runs"].append({"backend": backend, **result})
        report["load_after"] = os.getloadavg()
        publish(report, _table(report), args.json)


def _table(report: dict[str, Any]) -> str:
    lines = [f"load average before {report['load']}, after {report['load_after']}"]
    for backend in sorted({r["backend"] for r in report["runs"]}):
        runs = [r for r in report["runs"] if r["backend"] == backend]
        first = runs[0]
        head = f"{backend:<22}" + "".join(f"{r['size']:>16}" for r in runs)
        lines += ["", head]
        for measure in ("times", "cpu"):
            lines.append("wall time (median)" if measure == "times" else "CPU time (median)")
            for name in first[measure]:
                row = f"  {name:<20}"
                for r in runs:
                    t = r[measure][name]
                    row += f"{t:>9.3f}s {t / first[measure][name]:>4.2f}x"
                lines.append(row)
        lines.append(
            f"{'seeding':<22}"
            + "".join(
                f"{r['seeding_s']:>15.1f}s" if r["seeding_s"] is not None else f"{'(kept)':>16}"
                for r in runs
            )
        )
        lines.append(
            f"{'attempts page bytes':<22}"
            + "".join(f"{r.get('attempts_page_bytes', '-'):>16}" for r in runs)
        )
    return "\n".join(lines) + "\n" + json.dumps({"target": "every ratio <= 1.2"})


if __name__ == "__main__":
    main()
