#!/usr/bin/env python3
"""Benchmark ``orch compare TASK`` of N attempts and ``orch list`` with many attempts in
the store, each against the import floor, in the same run (issue 18's last two targets).

* compare: a synthetic repository (10k files by default, dispatch_bench's generator), one
  ``orch dispatch <key> --attempts N`` (N = 8), then in each attempt's worktree a commit
  changing ``--changed`` files (a few shared by every attempt, the rest its own) and an
  uncommitted edit, as agents leave them. Timed: ``orch compare <key>`` (one row per
  attempt with its changes, and the files more than one attempt changed).
* list: ``--attempts`` attempts (default 1,000) seeded into a second store through orch's
  own store code, each with a recorded change summary as the worker records it. Timed:
  ``orch list`` (the page a table shows by default, the newest 100, with each attempt's
  commits, files and lines from the recorded summary: nothing is computed per listing)
  and, for scale, ``orch list --all`` (every attempt; no target).

Both interleaved with the floor (``python -c "import click, sqlalchemy.orm"``), the
order rotating per run. Targets: compare ≤ 150 ms above the floor; list ≤ 60 ms above
the floor. HOME, ORCH_HOME, XDG_* and the git config point into a temporary directory.

    python bench/compare_bench.py [--files 10000] [--attempts-of-task 8] [--attempts 1000]
                                  [--runs 15] [--json F]

Run it with orch's Python: seeding the list's store imports orch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import find_orch, isolated_env, python_of, run
from completion_bench import seed
from dispatch_bench import FLOOR_CODE, make_repo, rotated_runs, timed

COMPARE_TARGET_MS = 150.0
LIST_TARGET_MS = 60.0


def leave_work(worktree: Path, number: int, changed: int, env: dict[str, str]) -> None:
    """A commit changing ``changed`` tracked files (the first three shared by every
    attempt) and one uncommitted edit, in the attempt's worktree."""
    tracked = run(["git", "ls-files", "-z"], env, cwd=worktree).stdout.decode().split("\0")
    tracked = [p for p in tracked if p]
    shared = tracked[:3]
    own = tracked[3 + number * changed : 3 + (number + 1) * changed][: max(0, changed - 3)]
    for path in (*shared, *own):
        with open(worktree / path, "a", encoding="utf-8") as fh:
            fh.write(f"attempt {number} was here\n")
    run(["git", "commit", "-qam", f"attempt {number}"], env, cwd=worktree)
    with open(worktree / tracked[-1], "a", encoding="utf-8") as fh:
        fh.write("not committed yet\n")


def seed_list_store(home: Path, count: int) -> None:
    """``count`` attempts through orch's store, four per task (completion_bench's seed),
    each with a change summary as the worker records it."""
    from orch.models import ChangeSummary
    from orch.store import open_store

    seed(home, count)
    with open_store(f"sqlite:///{home / 'orch.db'}", home / "locks") as store:
        for i, attempt in enumerate(store.list_attempts()):
            store.record_changes(
                attempt.id,
                ChangeSummary(
                    tip=f"{i:040x}",
                    commits_ahead=1 + i % 5,
                    files_changed=1 + i % 17,
                    lines_added=10 * (i % 7),
                    lines_removed=3 * (i % 5),
                ),
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="synthetic file count")
    parser.add_argument("--attempts-of-task", type=int, default=8, help="N for compare")
    parser.add_argument("--changed", type=int, default=10, help="files each attempt commits")
    parser.add_argument("--attempts", type=int, default=1_000, help="attempts for list")
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each side")
    parser.add_argument("--orch", default=None, help="the orch command (default: beside python)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the report")
    args = parser.parse_args(argv)

    orch = find_orch(args.orch)
    python = python_of(orch)
    root = Path(tempfile.mkdtemp(prefix="orch-compare-bench-"))
    env = isolated_env(root)
    env["ORCH_HOME"] = str(root / "orch-home")
    list_env = dict(env, ORCH_HOME=str(root / "list-home"))
    load_start = os.getloadavg()
    try:
        repo = root / "repo"
        print(f"building the synthetic repository ({args.files} files) ...", file=sys.stderr)
        make_repo(repo, args.files, env)
        out = run([orch, "dispatch", "bench", "--prompt", "bench", "--attempts",
                   str(args.attempts_of_task), "--json"], env, cwd=repo).stdout  # fmt: skip
        records = json.loads(out)
        records = records if isinstance(records, list) else records.get("attempts", records)
        for number, record in enumerate(records):
            leave_work(Path(record["worktree_path"]), number, args.changed, env)
        print(f"seeding {args.attempts} attempts for orch list ...", file=sys.stderr)
        seed_list_store(root / "list-home", args.attempts)

        sides: dict[str, tuple[list[str], dict[str, str], Path | None]] = {
            "floor": ([python, "-c", FLOOR_CODE], env, None),
            "orch compare TASK": ([orch, "compare", "bench"], env, repo),
            "orch list": ([orch, "list"], list_env, None),
            "orch list --all": ([orch, "list", "--all"], list_env, None),
        }
        check = run(sides["orch compare TASK"][0], env, cwd=repo).stdout.decode()
        assert check.count("\n") >= args.attempts_of_task, check
        page = run(sides["orch list"][0], list_env).stdout.decode()
        assert page.count("\n") == min(args.attempts, 100) + 1, "orch list: not a page"
        listed = run(sides["orch list --all"][0], list_env).stdout.decode()
        assert listed.count("\n") == args.attempts + 1, "orch list --all: not every attempt"
        measures = {
            side: (lambda cmd=cmd, e=e, cwd=cwd: timed(cmd, e, cwd))
            for side, (cmd, e, cwd) in sides.items()
        }
        stats, _, busy = rotated_runs(measures, args.runs)
        report = build_report(args, stats, load_start, busy)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(render(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["pass"] else 1


def build_report(
    args: argparse.Namespace,
    stats: dict[str, Any],
    load_start: tuple[float, ...],
    busy: float | None,
) -> dict[str, Any]:
    floor = stats["floor"]["median_ms"]
    compare_above = stats["orch compare TASK"]["median_ms"] - floor
    list_above = stats["orch list"]["median_ms"] - floor
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": args.files,
        "attempts_of_task": args.attempts_of_task,
        "attempts": args.attempts,
        "runs": args.runs,
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "machine_busy_median_pct": busy,
        "stats": stats,
        "compare_above_floor_ms": round(compare_above, 1),
        "list_above_floor_ms": round(list_above, 1),
        "list_all_above_floor_ms": round(stats["orch list --all"]["median_ms"] - floor, 1),
        "compare_pass": compare_above <= COMPARE_TARGET_MS,
        "list_pass": list_above <= LIST_TARGET_MS,
        "pass": compare_above <= COMPARE_TARGET_MS and list_above <= LIST_TARGET_MS,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"compare/list bench {report['when']}: {report['files']} files, compare of "
        f"{report['attempts_of_task']} attempts, list of {report['attempts']} attempts, "
        f"{report['runs']} runs; load {report['load_start']} -> {report['load_end']}",
        "",
        f"{'side':<20} {'median':>8} {'p90':>8} {'min':>8} {'busy':>6}",
    ]
    for side, s in report["stats"].items():
        busy = s["others_busy_median_pct"]
        lines.append(
            f"{side:<20} {s['median_ms']:>8} {s['p90_ms']:>8} {s['min_ms']:>8} "
            f"{'' if busy is None else str(busy) + '%':>6}"
        )
    verdict = {True: "PASS", False: "FAIL"}
    lines += [
        "",
        f"orch compare TASK: {report['compare_above_floor_ms']:+} ms above the floor "
        f"(target <= {COMPARE_TARGET_MS:.0f}) {verdict[report['compare_pass']]}",
        f"orch list: {report['list_above_floor_ms']:+} ms above the floor "
        f"(target <= {LIST_TARGET_MS:.0f}) {verdict[report['list_pass']]}",
        f"orch list --all: {report['list_all_above_floor_ms']:+} ms above the floor (no target)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
