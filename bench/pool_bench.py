#!/usr/bin/env python3
"""Benchmark dispatch from a warm worktree pool against cold dispatch and raw git.

On synthetic repositories (10k and 50k files by default, built like dispatch_bench's) and
on a real repository cloned from this machine's disk, it times, interleaved, in one run:

* warm: ``orch dispatch`` with one ready pool member (refilled, untimed, before each run);
* cold: ``orch dispatch`` with no pool (another ORCH_HOME on the same repository);
* raw:  ``git worktree add -b <branch> <path> HEAD``;
* floor: ``python -c "import click, sqlalchemy.orm"``, what any Python CLI on this stack
  pays before doing anything.

and reports the medians side by side with the ratios the targets are stated in: raw/warm
(at least 5x on 50k files), warm minus the floor (at most 100 ms on 50k files), and for
cold dispatch the dispatch bench's targets (cold - raw - floor <= 80 ms; cold/raw <= 1.25
on 50k files). How busy the machine was is sampled (/proc/stat) before each iteration and
during each timed command.

Every handed-out worktree is checked after its run: registered on the attempt's branch,
HEAD at the base commit, ``git status`` clean; the bench fails loudly otherwise.

    python bench/pool_bench.py [--sizes 10000,50000] [--runs N] [--real PATH] [--json F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import BenchRun, add_orch_and_json, bench_run, log, publish, report_head, run

# the synthetic repository and the timing are dispatch_bench's
from dispatch_bench import Sample, clean_worktrees, floor, make_repo, rotated_runs, timed

TARGET_WARM_SPEEDUP = 5.0  # raw git worktree add / warm dispatch, 50k files
TARGET_WARM_ABOVE_FLOOR_MS = 100.0  # warm dispatch - floor, 50k files
TARGET_COLD_OVERHEAD_MS = 80.0  # cold - raw - floor (the dispatch issue's target)
TARGET_COLD_RATIO_50K = 1.25  # cold / raw on 50k files
DEFAULT_REAL = Path.home() / ".pyenv"  # a clone of github.com/pyenv/pyenv on this machine


def check_handed_out(repo: Path, env: dict[str, str], attempt_json: str) -> None:
    attempt = json.loads(attempt_json)["attempt"]
    path = attempt["worktree_path"]
    listing = run(["git", "worktree", "list", "--porcelain"], env, cwd=repo).stdout.decode()
    block = next(b for b in listing.split("\n\n") if b.startswith(f"worktree {path}\n"))
    expected = f"worktree {path}\nHEAD {attempt['base_commit']}\nbranch refs/heads/{attempt['branch_name']}"
    status = run(["git", "status", "--porcelain"], env, cwd=Path(path)).stdout
    if block.strip() != expected or status.strip():
        raise SystemExit(f"handed-out worktree is not like a fresh one: {block!r} {status!r}")


def clear_attempts(repo: Path, env: dict[str, str], trash: Path) -> None:
    """Unregister every linked worktree but the pool's ready members (a claimed member is
    the attempt's: it has no ready marker ``m-<id>`` next to it), delete every branch but
    main (directories go to ``trash``: see dispatch_bench.clean_worktrees)."""

    def ready_member(wt: Path) -> bool:
        marker = wt.with_name("m-" + wt.name.removeprefix("w-"))
        return "/.orch-pool/" in str(wt) and wt.name.startswith("w-") and marker.exists()

    clean_worktrees(repo, env, trash, keep=ready_member)


def bench_repo(label: str, repo: Path, runs: int, ctx: BenchRun) -> dict[str, Any]:
    root, orch, python, base = ctx.root, ctx.orch, ctx.python, ctx.env
    warm_env = dict(base, ORCH_HOME=str(root / f"home-warm-{label}"), ORCH_POOL_REFILL="0")
    cold_env = dict(base, ORCH_HOME=str(root / f"home-cold-{label}"), ORCH_POOL_REFILL="0")
    trash = root / "trash"
    raw_root = root / f"raw-{label}"
    raw_root.mkdir()
    counter = [0]

    def warm() -> Sample:
        run([orch, "pool", "fill", "--size", "1", "--repo", str(repo), "--quiet"], warm_env)
        sample = timed(
            [orch, "dispatch", "--prompt", "p", "bench", "--repo", str(repo), "--json"], warm_env
        )
        check_handed_out(repo, warm_env, sample.stdout)
        if (
            "workspace_from_pool"
            not in run(
                [orch, "show", json.loads(sample.stdout)["attempt"]["id"]], warm_env
            ).stdout.decode()
        ):
            raise SystemExit("a warm dispatch did not take its worktree from the pool")
        clear_attempts(repo, warm_env, trash)
        return sample

    def cold() -> Sample:
        sample = timed(
            [orch, "dispatch", "--prompt", "p", "bench", "--repo", str(repo), "--json"], cold_env
        )
        check_handed_out(repo, cold_env, sample.stdout)
        clear_attempts(repo, cold_env, trash)
        return sample

    def raw() -> Sample:
        counter[0] += 1
        k = counter[0]
        cmd = [
            "git",
            "worktree",
            "add",
            "-q",
            "-b",
            f"bench/raw-{k}",
            str(raw_root / f"wt-{k}"),
            "HEAD",
        ]
        sample = timed(cmd, base, cwd=repo)
        clear_attempts(repo, base, trash)
        return sample

    fns = {"warm": warm, "cold": cold, "raw": raw, "floor": floor(python, base)}
    result, busy, busy_median = rotated_runs(fns, runs)
    med = {name: result[name]["median_ms"] for name in fns}
    result["ratios"] = {
        "raw_over_warm": round(med["raw"] / med["warm"], 2),
        "warm_above_floor_ms": round(med["warm"] - med["floor"], 1),
        "cold_over_raw": round(med["cold"] / med["raw"], 3),
        "cold_overhead_ms": round(med["cold"] - med["raw"] - med["floor"], 1),
    }
    result["machine_busy_before_median_pct"] = busy_median
    result["machine_busy_before_each_run_pct"] = busy
    log(
        f"[{label}] warm {med['warm']:.0f} ms, cold {med['cold']:.0f} ms, raw {med['raw']:.0f} ms, "
        f"floor {med['floor']:.0f} ms; raw/warm {result['ratios']['raw_over_warm']:.1f}x, "
        f"warm-floor {result['ratios']['warm_above_floor_ms']:.0f} ms"
    )
    return result


def targets(n_files: int, r: dict[str, Any]) -> dict[str, Any]:
    ratios = r["ratios"]
    out = {
        "cold_overhead": ratios["cold_overhead_ms"] <= TARGET_COLD_OVERHEAD_MS,
    }
    if n_files >= 50000:
        out["warm_speedup"] = ratios["raw_over_warm"] >= TARGET_WARM_SPEEDUP
        out["warm_above_floor"] = ratios["warm_above_floor_ms"] <= TARGET_WARM_ABOVE_FLOOR_MS
        out["cold_ratio"] = ratios["cold_over_raw"] <= TARGET_COLD_RATIO_50K
    return out


def render(report: dict[str, Any]) -> str:
    lines = [
        f"pool bench {report['started']}  git {report['git']}  cores {report['cores']}",
        "",
        f"{'repository':<22} {'files':>6} {'warm':>8} {'cold':>8} {'raw git':>8} {'floor':>7}"
        f" {'raw/warm':>9} {'warm-floor':>11} {'cold/raw':>9} {'cold ovh':>9} {'busy%':>6}",
    ]
    for label, r in report["results"].items():
        ratios = r["ratios"]
        lines.append(
            f"{label:<22} {r['files']:>6} {r['warm']['median_ms']:>6.0f}ms {r['cold']['median_ms']:>6.0f}ms"
            f" {r['raw']['median_ms']:>6.0f}ms {r['floor']['median_ms']:>5.0f}ms"
            f" {ratios['raw_over_warm']:>8.1f}x {ratios['warm_above_floor_ms']:>9.0f}ms"
            f" {ratios['cold_over_raw']:>8.2f}x {ratios['cold_overhead_ms']:>7.0f}ms"
            f" {r['machine_busy_before_median_pct'] or 0:>6.0f}"
        )
    lines.append("")
    for label, r in report["results"].items():
        for name, ok in r["targets"].items():
            lines.append(f"{label:<22} {name:<18} {'PASS' if ok else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,50000", help="synthetic file counts")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each kind per repository")
    ap.add_argument(
        "--real", default=str(DEFAULT_REAL), help="a git repository on disk to clone ('' skips)"
    )
    add_orch_and_json(ap)
    args = ap.parse_args(argv)

    with bench_run("orch-pool-bench-", args.orch) as ctx:
        base, root = ctx.env, ctx.root
        base["ORCH_HOME"] = str(root / "home-unused")
        report: dict[str, Any] = {
            **report_head(base),
            "loadavg_before": Path("/proc/loadavg").read_text().split()[:3]
            if Path("/proc/loadavg").exists()
            else None,
            "results": {},
        }
        repos: list[tuple[str, Path]] = []
        for n in (int(s) for s in args.sizes.split(",") if s):
            log(f"[{n}] building the synthetic repository ...")
            path = root / f"synthetic-{n}"
            make_repo(path, n, base)
            repos.append((f"synthetic-{n // 1000}k", path))
        if args.real:
            src = Path(args.real).expanduser()
            dest = root / "real"
            run(["git", "clone", "-q", "--no-hardlinks", str(src), str(dest)], base)
            run(["git", "checkout", "-q", "-B", "main"], base, cwd=dest)
            url = run(["git", "-C", str(src), "config", "--get", "remote.origin.url"], base)
            repos.append((f"real ({Path(url.stdout.decode().strip()).stem or src.name})", dest))
        for label, path in repos:
            files = len(run(["git", "ls-files", "-z"], base, cwd=path).stdout.split(b"\0")) - 1
            log(f"[{label}] {files} files, {args.runs} interleaved runs ...")
            result = bench_repo(label.split()[0], path, args.runs, ctx)
            result["files"] = files
            result["targets"] = targets(files, result)
            report["results"][label] = result
        report["loadavg_after"] = (
            Path("/proc/loadavg").read_text().split()[:3]
            if Path("/proc/loadavg").exists()
            else None
        )
    publish(report, render(report), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
