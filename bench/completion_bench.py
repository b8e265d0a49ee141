#!/usr/bin/env python3
"""Benchmark shell completion (issue 21, point 2): the answer to a key press, with 10,000
attempts in the store, against the floor ``python -c "import click"``.

Once per run the script seeds an embedded store with ``--attempts`` attempts (default
10,000; four per task key) through orch's own store code, in a temporary directory where
HOME, ORCH_HOME, XDG_* and GIT_CONFIG_GLOBAL point (nothing touches the real home). Then,
interleaved in every iteration and in a rotating order, it times each of these as a
subprocess by wall clock:

* floor: ``<orch's python> -c "import click"``, what any click program pays;
* ids: ``_ORCH_COMPLETE=bash_complete COMP_WORDS="orch show " COMP_CWORD=2 orch``, what
  bash runs when one presses Tab after ``orch show`` (the newest 200 ids: the target);
* id prefix: the same after ``orch show <two hex digits>``;
* task keys: after ``orch list --task ``;
* commands: after ``orch `` (no store read: the cost of the command tree alone).

Each answer is checked (200 ids, all of the store's; task keys; command names). The
measured orch is byte-compiled first and PYTHONDONTWRITEBYTECODE is dropped, as an
installed orch runs. Reported: median, p90 and fastest run of each, and each above the
floor; the target is ids ≤ 50 ms above the floor (median), printed PASS/FAIL (exit 0/1).

    python bench/completion_bench.py [--attempts 10000] [--runs 30] [--json out.json]

Standard library only, plus orch itself for the seeding: run it with orch's Python
(``.venv/bin/python``). ``orch`` is the entry point next to that Python, else on PATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

# the helpers are dispatch_bench's (this directory is on sys.path when run)
from dispatch_bench import (
    Sample,
    compile_orch,
    find_orch,
    isolated_env,
    python_of,
    summary,
    timed,
    verdict,
)

TARGET_ABOVE_FLOOR_MS = 50.0
ATTEMPTS_PER_TASK = 4
ANSWER_LIMIT = 200  # orch.store.glance.LIMIT


def seed(home: Path, count: int) -> None:
    """``count`` attempts through orch's store, ATTEMPTS_PER_TASK per task key."""
    from orch.models import NewAttempt
    from orch.naming import new_attempt_id
    from orch.store import open_store

    home.mkdir(mode=0o700, parents=True)
    url = f"sqlite:///{home / 'orch.db'}"
    with open_store(url, home / "locks") as store:
        for i in range(count):
            attempt_id = new_attempt_id()
            task_key = f"task-{i // ATTEMPTS_PER_TASK:05d}"
            store.create_attempt(
                NewAttempt(
                    id=attempt_id,
                    task_key=task_key,
                    repository="/bench/repo",
                    base_ref="HEAD",
                    base_commit="0" * 40,
                    branch_name=f"orch/{task_key}-{attempt_id}",
                    worktree_path=f"/bench/worktrees/{task_key}-{attempt_id}",
                    worker=None,
                    prompt="bench",
                ),
                "bench",
            )


def store_ids(home: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{home / 'orch.db'}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM attempts")}
    finally:
        conn.close()


def task_count(attempts: int) -> int:
    return -(-attempts // ATTEMPTS_PER_TASK)


def completion_env(env: dict[str, str], words: str) -> dict[str, str]:
    cword = len(words.split(" ")) - 1
    return {**env, "_ORCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}


def answers(out: str) -> list[str]:
    """The values of click's bash answer (``type,value`` lines)."""
    return [line.split(",", 1)[1] for line in out.splitlines() if line]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--orch", default=None, help="the orch entry point to measure")
    parser.add_argument("--json", dest="json_out", default=None, help="write everything here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    orch = find_orch(args.orch)
    python = python_of(orch)
    root = Path(tempfile.mkdtemp(prefix="orch-completion-bench-"))
    env = isolated_env(root)
    home = root / "orch-home"
    env["ORCH_HOME"] = str(home)
    load_start = os.getloadavg()
    try:
        compile_orch(python, env, print)
        t0 = time.perf_counter()
        seed(home, args.attempts)
        seeded = time.perf_counter() - t0
        ids = store_ids(home)
        prefix = sorted(ids)[len(ids) // 2][:2]
        sides: dict[str, list[str]] = {
            "floor": [python, "-c", "import click"],
            "ids": [orch],
            "id prefix": [orch],
            "task keys": [orch],
            "commands": [orch],
        }
        words = {
            "ids": "orch show ",
            "id prefix": f"orch show {prefix}",
            "task keys": "orch list --task ",
            "commands": "orch ",
        }
        envs = {side: completion_env(env, words[side]) if side in words else env for side in sides}
        order = list(sides)
        samples: dict[str, list[Sample]] = {side: [] for side in sides}
        for side in order:  # one untimed round: caches warm, answers checked
            check(side, answers(timed(sides[side], envs[side]).stdout), ids, prefix)
        for i in range(args.runs):
            turn = order[i % len(order) :] + order[: i % len(order)]
            for side in turn:
                sample = timed(sides[side], envs[side])
                if side != "floor":
                    check(side, answers(sample.stdout), ids, prefix)
                samples[side].append(sample)
        report = build_report(args, orch, python, samples, seeded, load_start, prefix)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(render(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["pass"] else 1


def check(side: str, got: list[str], ids: set[str], prefix: str) -> None:
    """Fail loudly when an answer is not what bash should be offered."""
    if side == "ids" and (len(got) != min(ANSWER_LIMIT, len(ids)) or not set(got) <= ids):
        raise SystemExit(f"ids: {len(got)} answers, expected the newest {ANSWER_LIMIT} ids")
    if side == "id prefix":
        expected = {i for i in ids if i.startswith(prefix)}
        if not got or not set(got) <= expected or len(got) != min(ANSWER_LIMIT, len(expected)):
            raise SystemExit(f"id prefix {prefix!r}: {len(got)} answers, {len(expected)} ids")
    keys = min(ANSWER_LIMIT, task_count(len(ids)))
    if side == "task keys" and (len(got) != keys or not got[0].startswith("task-")):
        raise SystemExit(f"task keys: {len(got)} answers")
    if side == "commands" and "show" not in got:
        raise SystemExit(f"commands: {got}")


def build_report(
    args: argparse.Namespace,
    orch: str,
    python: str,
    samples: dict[str, list[Sample]],
    seeded: float,
    load_start: tuple[float, float, float],
    prefix: str,
) -> dict[str, Any]:
    sides = {side: summary(got) for side, got in samples.items()}
    floor = sides["floor"]
    for side, stats in sides.items():
        if side != "floor":
            stats["above_floor_median_ms"] = round(stats["median_ms"] - floor["median_ms"], 1)
            stats["above_floor_p90_ms"] = round(stats["p90_ms"] - floor["p90_ms"], 1)
            stats["cpu_above_floor_median_ms"] = round(
                stats["cpu_median_ms"] - floor["cpu_median_ms"], 1
            )
    above = sides["ids"]["above_floor_median_ms"]
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
        "orch": orch,
        "python": python,
        "attempts": args.attempts,
        "seeded_seconds": round(seeded, 1),
        "runs": args.runs,
        "prefix": prefix,
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "sides": sides,
        "target_above_floor_ms": TARGET_ABOVE_FLOOR_MS,
        "pass": above <= TARGET_ABOVE_FLOOR_MS,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"orch shell completion benchmark, {report['when']}: {report['machine']}",
        f"store: {report['attempts']} attempts (seeded in {report['seeded_seconds']} s); "
        f"{report['runs']} interleaved runs; load average {report['load_start']} at start, "
        f"{report['load_end']} at the end",
        "",
        f"{'side':<12} | {'median':>7} | {'p90':>7} | {'min':>7} | {'cpu':>6} | {'busy':>5} | "
        f"{'above floor (median / p90)':>27} | {'cpu above':>9}",
        "-" * 102,
    ]
    for side, stats in report["sides"].items():
        busy = stats["others_busy_median_pct"]
        above = (
            f"{stats['above_floor_median_ms']:+.1f} / {stats['above_floor_p90_ms']:+.1f} ms"
            if side != "floor"
            else ""
        )
        cpu_above = f"{stats['cpu_above_floor_median_ms']:+.1f}" if side != "floor" else ""
        lines.append(
            f"{side:<12} | {stats['median_ms']:>7.1f} | {stats['p90_ms']:>7.1f} | "
            f"{stats['min_ms']:>7.1f} | {stats['cpu_median_ms']:>6.1f} | "
            f"{'' if busy is None else f'{busy:.0f}%':>5} | {above:>27} | {cpu_above:>9}"
        )
    above = report["sides"]["ids"]["above_floor_median_ms"]
    lines += [
        "",
        "times in ms; cpu = user+sys time of the command (median), which a busy machine",
        "inflates less than the wall time; busy = share of all CPUs other processes used",
        "meanwhile (median)",
        f"target: ids (Tab after 'orch show ') <= {report['target_above_floor_ms']:g} ms above "
        f"the floor: {above:+.1f} ms {verdict(report['pass'])}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
