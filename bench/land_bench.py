#!/usr/bin/env python3
"""Benchmark ``orch land --no-check`` against the checkout-based way, in the same run.

For each repository size (synthetic, as ``dispatch_bench.py`` builds it) it prepares, per
iteration and untimed, two branches with the same kind of work (three files changed, one
added, committed in an attempt's worktree) while main moves on by one commit of its own,
and times, interleaved and alternating which goes first:

* the checkout-based way: ``git worktree add --detach <scratch> main``, then in it
  ``git merge --squash <branch>`` and ``git commit``, then ``git update-ref refs/heads/main
  <new> <old>`` (one ``sh -c``; the scratch worktree is moved aside afterwards, untimed);
* ``orch land <attempt> --no-check --keep`` through the installed entry point: the same
  squash built without a worktree, the target moved by compare-and-swap, and the main
  worktree (main is checked out there) brought along. ``--keep``: removing the attempt's
  worktree is cleanup's work, measured by ``cleanup_bench.py``;
* the import floor: ``<orch's python> -c "import click, sqlalchemy.orm"``.

Once, at the largest size, it times ``orch land A1..A8 --dry-run`` (eight attempts, each
checked for conflicts and its diffstat computed) beside the floor.

    python bench/land_bench.py [--sizes 1000,10000,50000] [--runs N] [--json out.json]

Targets: ``orch land`` at most 100 ms above the floor at 50k files, about the same at
every size (no checkout), at least 10x faster than the checkout-based way at 50k; the
dry run of 8 attempts at most 200 ms above the floor. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import compile_orch, find_orch, isolated_env, python_of, run
from dispatch_bench import Sample, clean_worktrees, machine_busy, make_repo, summary, timed

TARGET_ABOVE_FLOOR_MS = 100.0  # orch land --no-check at 50k files, minus the floor
TARGET_SPEEDUP_50K = 10.0  # checkout-based / orch land at 50k files
TARGET_DRY_RUN_8_MS = 200.0  # orch land --dry-run of 8 attempts, minus the floor
FLOOR_CODE = "import click, sqlalchemy.orm"
DEFAULT_SIZES = (1000, 10000, 50000)

CHECKOUT_WAY = (
    'set -e; git worktree add -q --detach "$1" main; cd "$1"; '
    'git merge -q --squash "$2" >/dev/null; git commit -q -m "squash $2"; '
    'git update-ref refs/heads/main "$(git rev-parse HEAD)" "$3"'
)


class Repo:
    """One synthetic repository and the store of the orch measured on it."""

    def __init__(
        self, root: Path, n: int, env: dict[str, str], orch: str, log: Callable[[str], None]
    ) -> None:
        self.path = root / f"repo-{n}"
        self.info = make_repo(self.path, n, env)
        self.env = dict(env, ORCH_HOME=str(root / f"orch-home-{n}"))
        self.orch = orch
        self.trash = root / "trash"
        self.scratch = root / f"scratch-{n}"
        self.scratch.mkdir()
        self.count = 0
        self.files = run(["git", "ls-files"], env, cwd=self.path).stdout.decode().split()
        log(f"[{n} files] built in {self.info['build_seconds']} s")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return run(["git", *args], self.env, cwd=cwd or self.path).stdout.decode().strip()

    def attempt(self) -> tuple[str, str]:
        """An ended attempt with committed work (untimed): its id and branch."""
        self.count += 1
        k = self.count
        out = run(
            [
                self.orch,
                "dispatch",
                "--json",
                "--prompt",
                f"change {k}",
                f"bench-{k}",
                "--repo",
                str(self.path),
            ],
            self.env,
        ).stdout
        attempt = json.loads(out)["attempt"]
        worktree = Path(attempt["worktree_path"])
        for name in self.files[3 * k % len(self.files) :][:3]:
            with (worktree / name).open("a") as fh:
                fh.write(f"changed by attempt {k}\n")
        (worktree / f"added-{k}.txt").write_text(f"added by attempt {k}\n")
        self.git("add", "-A", cwd=worktree)
        self.git("commit", "-q", "-m", f"attempt {k}", cwd=worktree)
        run([self.orch, "cancel", attempt["id"]], self.env)
        return attempt["id"], attempt["branch_name"]

    def main_moves(self) -> str:
        """main gets a commit of its own in the main worktree (untimed); its id."""
        self.count += 1
        (self.path / f"main-{self.count}.txt").write_text("main moves on\n")
        self.git("add", f"main-{self.count}.txt")
        self.git("commit", "-q", "-m", f"main {self.count}")
        return self.git("rev-parse", "main")

    def checkout_way(self) -> Sample:
        _id, branch = self.attempt()
        old = self.main_moves()
        scratch = self.scratch / f"s-{self.count}"
        sample = timed(
            ["sh", "-c", CHECKOUT_WAY, "sh", str(scratch), branch, old], self.env, cwd=self.path
        )
        # the main worktree follows, untimed, as orch land does it timed
        self.git("read-tree", "-m", "-u", old, "main")
        clean_worktrees(self.path, self.env, self.trash)
        return sample

    def orch_land(self) -> Sample:
        attempt_id, _branch = self.attempt()
        self.main_moves()
        sample = timed(
            [self.orch, "land", attempt_id, "--no-check", "--keep"], self.env, cwd=self.path
        )
        if "landed into main" not in sample.stdout:
            raise SystemExit(f"orch land did not land: {sample.stdout}")
        clean_worktrees(self.path, self.env, self.trash)
        return sample


def bench_size(repo: Repo, runs: int, python: str, log: Callable[[str], None]) -> dict[str, Any]:
    measures: dict[str, Callable[[], Sample]] = {
        "checkout": repo.checkout_way,
        "orch": repo.orch_land,
        "floor": lambda: timed([python, "-c", FLOOR_CODE], repo.env),
    }
    for measure in measures.values():  # warm-up, untimed: the store, the page cache
        measure()
    samples: dict[str, list[Sample]] = {name: [] for name in measures}
    busy = []
    for i in range(runs):
        busy.append(machine_busy(0.5))
        for name in ["orch", "floor", "checkout"] if i % 2 == 0 else ["checkout", "floor", "orch"]:
            samples[name].append(measures[name]())
    result: dict[str, Any] = {name: summary(s) for name, s in samples.items()}
    orch, floor, checkout = (result[k]["median_ms"] for k in ("orch", "floor", "checkout"))
    result["repo"] = repo.info
    result["above_floor_ms"] = round(orch - floor, 1)
    result["speedup"] = round(checkout / orch, 2)
    # the work each does: the checkout-based way is git alone; orch's, what it adds above
    # the interpreter and library start-up every orch command pays
    result["speedup_above_floor"] = round(checkout / max(orch - floor, 1.0), 2)
    result["machine_busy_before_each_run_pct"] = busy
    log(
        f"[{repo.info['files']} files] checkout way {checkout:.0f} ms, orch land {orch:.0f} ms, "
        f"floor {floor:.0f} ms: {orch - floor:.0f} ms above the floor, {checkout / orch:.1f}x"
    )
    return result


def bench_dry_run(repo: Repo, runs: int, python: str, log: Callable[[str], None]) -> dict[str, Any]:
    ids = [repo.attempt()[0] for _ in range(8)]
    repo.main_moves()
    command = [repo.orch, "land", *ids, "--dry-run"]
    measures: dict[str, Callable[[], Sample]] = {
        "dry_run_8": lambda: timed(command, repo.env, cwd=repo.path),
        "floor": lambda: timed([python, "-c", FLOOR_CODE], repo.env),
    }
    for measure in measures.values():
        measure()
    samples: dict[str, list[Sample]] = {name: [] for name in measures}
    for i in range(runs):
        for name in list(measures) if i % 2 == 0 else list(reversed(measures)):
            samples[name].append(measures[name]())
    result: dict[str, Any] = {name: summary(s) for name, s in samples.items()}
    above = result["dry_run_8"]["median_ms"] - result["floor"]["median_ms"]
    result["above_floor_ms"] = round(above, 1)
    log(f"[dry run of 8] {result['dry_run_8']['median_ms']:.0f} ms, {above:.0f} ms above the floor")
    return result


def verdicts(report: dict[str, Any]) -> list[str]:
    sizes = report["sizes"]
    largest = sizes[max(sizes, key=int)]
    above = [s["above_floor_ms"] for s in sizes.values()]
    lines = [
        f"orch land at {max(sizes, key=int)} files: {largest['above_floor_ms']:.0f} ms above "
        f"the floor (target <= {TARGET_ABOVE_FLOOR_MS:.0f}): "
        + ("PASS" if largest["above_floor_ms"] <= TARGET_ABOVE_FLOOR_MS else "FAIL"),
        f"speed-up over the checkout-based way: {largest['speedup']:.1f}x (target >= "
        f"{TARGET_SPEEDUP_50K:.0f}x): "
        + ("PASS" if largest["speedup"] >= TARGET_SPEEDUP_50K else "FAIL")
        + f" (floor alone: {largest['checkout']['median_ms'] / largest['floor']['median_ms']:.1f}x"
        f"; the work above the floor: {largest['speedup_above_floor']:.1f}x)",
        "above the floor per size: " + ", ".join(f"{k}: {v:.0f} ms" for k, v in zip(sizes, above)),
    ]
    dry = report["dry_run"]["above_floor_ms"]
    lines.append(
        f"--dry-run of 8 attempts: {dry:.0f} ms above the floor (target <= "
        f"{TARGET_DRY_RUN_8_MS:.0f}): " + ("PASS" if dry <= TARGET_DRY_RUN_8_MS else "FAIL")
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    ap.add_argument("--runs", type=int, default=7, help="timed runs per size (default 7)")
    ap.add_argument("--orch", default=None, help="the orch command (default: beside Python)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    orch = find_orch(args.orch)
    python = python_of(orch)
    root = Path(tempfile.mkdtemp(prefix="orch-land-bench-", dir=args.workdir))
    try:
        env = isolated_env(root)
        compile_orch(python, env, log)
        report: dict[str, Any] = {
            "git_version": run(["git", "--version"], env).stdout.decode().split()[-1],
            "sizes": {},
        }
        repo = None
        for n in [int(s) for s in args.sizes.split(",") if s]:
            repo = Repo(root, n, env, orch, log)
            report["sizes"][str(n)] = bench_size(repo, args.runs, python, log)
        assert repo is not None
        report["dry_run"] = bench_dry_run(repo, args.runs, python, log)
        lines = verdicts(report)
        report["verdicts"] = lines
        print("\n".join(lines))
        print(
            "medians (ms): "
            + json.dumps(
                {
                    n: {k: s[k]["median_ms"] for k in ("checkout", "orch", "floor")}
                    for n, s in report["sizes"].items()
                }
            )
        )
        print(
            f"spread of orch land above the floor: {statistics.pstdev([s['above_floor_ms'] for s in report['sizes'].values()]):.1f} ms"
        )
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2))
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
