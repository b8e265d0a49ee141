#!/usr/bin/env python3
"""Benchmark best-of-N dispatch against N sequential dispatches, in the same run.

On a synthetic repository (10k files by default, built like dispatch_bench's) it times,
interleaved per iteration so that drift hits both sides alike:

* batch: ``orch dispatch <key> --attempts N``  (one process: one store open, checkouts
  made ahead, at most one per core at a time);
* sequential: N ``orch dispatch <key>`` one after another, back to back as a user's loop
  runs them, timed together after one sync;
* the same N dispatches each timed on its own after a sync, summed (how this bench measured
  before 2026-12-07: the sync between them takes each one's writeback out of the time,
  which the batch pays for its own attempts; reported beside, not the target);
* raw: N ``git worktree add -b`` back to back (the git baseline, for scale);
* raw, one per core at a time: the same N ``git worktree add -b`` run as the batch runs its
  checkouts (at most one per core at once; started from Python threads, each waiting on
  its git): what git's checkouts alone cost when spread over the cores. The batch cannot
  be faster than this plus the start of one Python process, so ``batch / sequential`` can
  only be as good as ``raw_parallel / sequential`` allows;
* floor: ``python -c "import click, sqlalchemy.orm"``.

The target (issue 18): batch at most half the sequential time (batch / sequential <= 0.5)
with N = 8 on 10k files. No pool: every worktree is a fresh checkout on both sides (a pool
would hand out members to both alike). Every attempt of every timed run is checked
(ready, on its branch at the base commit, clean) and the worktrees are removed untimed
between runs (dispatch_bench.clean_worktrees). HOME, ORCH_HOME, XDG_* and the git config
point into the temporary directory: nothing touches the real home.

    python bench/bestof_bench.py [--files 10000] [--attempts 8] [--runs N] [--json F]

Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import BenchRun, add_orch_and_json, bench_run, log, publish, report_head, run

# the synthetic repository and the timing are dispatch_bench's
from dispatch_bench import (
    Sample,
    _children_cpu,
    clean_worktrees,
    floor,
    make_repo,
    rotated_runs,
    timed,
)

TARGET_BATCH_OVER_SEQUENTIAL = 0.5  # orch dispatch --attempts 8 / 8 x orch dispatch, 10k files
TASK_KEY = "bench"


def check_made(repo: Path, env: dict[str, str], attempts: list[dict[str, Any]]) -> None:
    """Each attempt ready, its worktree on its branch at the base commit and clean."""
    for attempt in attempts:
        path = Path(attempt["worktree_path"])
        head = run(["git", "rev-parse", "HEAD"], env, cwd=path).stdout.decode().strip()
        branch = run(["git", "symbolic-ref", "HEAD"], env, cwd=path).stdout.decode().strip()
        status = run(["git", "status", "--porcelain"], env, cwd=path).stdout
        if (
            attempt["workspace_status"] != "ready"
            or head != attempt["base_commit"]
            or branch != f"refs/heads/{attempt['branch_name']}"
            or status.strip()
        ):
            raise SystemExit(f"attempt {attempt['id']} is not like a fresh dispatch's")


def in_turn(
    cmds: list[list[str]], env: dict[str, str], cwd: Path | None = None
) -> tuple[Sample, list[str]]:
    """Run ``cmds`` one after another, as a user's loop would, after one sync: their
    wall time together (the writeback of each one's files goes on while the next runs,
    as it does for the batch's own attempts) and each one's output."""
    os.sync()
    cpu0 = _children_cpu()
    start = time.perf_counter()
    outputs = []
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=cwd or env["HOME"], env=env, capture_output=True)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
        outputs.append(proc.stdout.decode(errors="replace"))
    return Sample(time.perf_counter() - start, _children_cpu() - cpu0, ""), outputs


def at_once(cmds: list[list[str]], env: dict[str, str], cwd: Path, slots: int) -> Sample:
    """Run ``cmds`` at most ``slots`` at a time, after one sync: their wall time together."""
    os.sync()
    cpu0 = _children_cpu()
    start = time.perf_counter()

    def one(cmd: list[str]) -> int:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True).returncode

    with concurrent.futures.ThreadPoolExecutor(slots) as pool:
        codes = list(pool.map(one, cmds))
    if any(codes):
        raise SystemExit(f"git worktree add failed ({codes})")
    return Sample(time.perf_counter() - start, _children_cpu() - cpu0, "")


def bench(repo: Path, n: int, runs: int, ctx: BenchRun, empty_trash: bool) -> dict[str, Any]:
    root, orch, python, base = ctx.root, ctx.orch, ctx.python, ctx.env
    env = dict(base, ORCH_HOME=str(root / "home"), ORCH_POOL_REFILL="0")
    trash = root / "trash"
    raw_root = root / "raw"
    raw_root.mkdir()
    counter = [0]

    def clean(env: dict[str, str]) -> None:
        clean_worktrees(repo, env, trash)
        if empty_trash:
            shutil.rmtree(trash)

    dispatch = [orch, "dispatch", TASK_KEY, "--prompt", "bench", "--repo", str(repo), "--json"]

    def batch() -> Sample:
        sample = timed([*dispatch, "--attempts", str(n)], env)
        made = json.loads(sample.stdout)["attempts"]
        if len(made) != n:
            raise SystemExit(f"--attempts {n} made {len(made)} attempts")
        check_made(repo, env, made)
        clean(env)
        return sample

    def sequential() -> Sample:
        sample, outputs = in_turn([dispatch] * n, env)
        check_made(repo, env, [json.loads(out)["attempt"] for out in outputs])
        clean(env)
        return sample

    def sequential_synced() -> Sample:
        samples = [timed(dispatch, env) for _ in range(n)]
        check_made(repo, env, [json.loads(s.stdout)["attempt"] for s in samples])
        clean(env)
        others = [s.others for s in samples if s.others is not None]
        return Sample(
            sum(s.wall for s in samples),
            sum(s.cpu for s in samples),
            "",
            sum(others) / len(others) if others else None,
        )

    def raw_commands() -> list[list[str]]:
        cmds = []
        for _ in range(n):
            counter[0] += 1
            k = counter[0]
            cmds.append(
                ["git", "worktree", "add", "-q", "-b", f"raw-{k}", str(raw_root / f"wt-{k}")]
            )
        return [[*cmd, "HEAD"] for cmd in cmds]

    def raw() -> Sample:
        sample, _ = in_turn(raw_commands(), base, cwd=repo)
        clean(base)
        return sample

    def raw_parallel() -> Sample:
        sample = at_once(raw_commands(), base, repo, os.cpu_count() or 1)
        clean(base)
        return sample

    fns = {
        "batch": batch,
        "sequential": sequential,
        "sequential_synced": sequential_synced,
        "raw": raw,
        "raw_parallel": raw_parallel,
        "floor": floor(python, base),
    }
    result, _, busy_median = rotated_runs(fns, runs)
    med = {name: result[name]["median_ms"] for name in fns}
    result["ratios"] = {
        "batch_over_sequential": round(med["batch"] / med["sequential"], 3),
        "batch_over_sequential_synced": round(med["batch"] / med["sequential_synced"], 3),
        "batch_over_raw": round(med["batch"] / med["raw"], 3),
        "raw_parallel_over_sequential": round(med["raw_parallel"] / med["sequential"], 3),
        "raw_speedup_on_cores": round(med["raw"] / med["raw_parallel"], 3),
        "sequential_over_raw": round(med["sequential"] / med["raw"], 3),
    }
    result["machine_busy_before_median_pct"] = busy_median
    log(
        f"batch {med['batch']:.0f} ms, {n} sequential {med['sequential']:.0f} ms, "
        f"{n} raw git {med['raw']:.0f} ms, floor {med['floor']:.0f} ms; "
        f"batch/sequential {result['ratios']['batch_over_sequential']:.2f}"
    )
    return result


def render(report: dict[str, Any]) -> str:
    r = report["result"]
    ratio = r["ratios"]["batch_over_sequential"]
    return "\n".join(
        [
            f"best-of-N bench {report['started']}  git {report['git']}  cores {report['cores']}",
            f"{report['files']} files, N = {report['attempts']}, {r['batch']['runs']} runs",
            "",
            f"{'orch dispatch --attempts N':<34} {r['batch']['median_ms']:>8.0f} ms",
            f"{'N x orch dispatch':<34} {r['sequential']['median_ms']:>8.0f} ms",
            f"{'  each after a sync (untimed)':<34} {r['sequential_synced']['median_ms']:>8.0f} ms",
            f"{'N x git worktree add -b':<34} {r['raw']['median_ms']:>8.0f} ms",
            f"{'  the same, one per core at once':<34} {r['raw_parallel']['median_ms']:>8.0f} ms"
            f"  ({r['ratios']['raw_speedup_on_cores']:.2f}x; / sequential "
            f"{r['ratios']['raw_parallel_over_sequential']:.2f})",
            f"{'floor':<34} {r['floor']['median_ms']:>8.0f} ms",
            f"{'machine busy before (median %)':<34} {r['machine_busy_before_median_pct'] or 0:>8.0f}",
            "",
            f"batch / sequential {ratio:.2f} (target <= {TARGET_BATCH_OVER_SEQUENTIAL}): "
            f"{'PASS' if ratio <= TARGET_BATCH_OVER_SEQUENTIAL else 'FAIL'}",
            f"(against the sum of {report['attempts']} dispatches each timed after a sync: "
            f"{r['ratios']['batch_over_sequential_synced']:.2f})",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000, help="synthetic file count")
    ap.add_argument("--attempts", type=int, default=8, help="N")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each kind")
    ap.add_argument(
        "--empty-trash",
        action="store_true",
        help="delete the removed worktrees after every run instead of at the end (for a "
        "run in memory, TMPDIR=/dev/shm: keeps its footprint the same from run to run; "
        "on a disk it would slow the next checkouts, see dispatch_bench.clean_worktrees)",
    )
    add_orch_and_json(ap)
    args = ap.parse_args(argv)

    with bench_run("orch-bestof-bench-", args.orch) as ctx:
        report: dict[str, Any] = {**report_head(ctx.env), "attempts": args.attempts}
        log(f"building the synthetic repository ({args.files} files) ...")
        repo = ctx.root / "synthetic"
        report["files"] = make_repo(repo, args.files, ctx.env)["files"]
        log(f"{args.runs} interleaved runs ...")
        report["empty_trash"] = args.empty_trash
        report["result"] = bench(repo, args.attempts, args.runs, ctx, args.empty_trash)
    publish(report, render(report), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
