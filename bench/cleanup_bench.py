#!/usr/bin/env python3
"""Benchmark ``orch cleanup`` against the raw git baseline, in the same run.

On one synthetic repository (nested directories of small text files, one commit, built
with ``git fast-import``) it times, one after the other:

* the raw git baseline: a loop of ``git worktree remove --force <path>`` and
  ``git branch -D <branch>`` over N worktrees made with ``git worktree add -b``;
* ``orch cleanup --all-terminal`` (one orch process, through the installed entry point)
  over N ended attempts made with ``orch dispatch`` (a few at a time) and ``orch cancel``.

Each side is set up (untimed) right before it is timed, so both start from the same state:
N fresh worktrees of the repository, the disk walked once (for the freed bytes: the
``orch cleanup --dry-run --json`` totals on the orch side, the same walk on the git side)
and the file system synced. After each timed run the bench checks that the job was really
done: ``git worktree list`` shows only the main worktree, no branch the side created is
left and the worktree directories are gone; it fails loudly otherwise.

With ``--breakdown`` (needs ``orch`` importable: run it with orch's Python) it then cleans
more sets of N attempts in-process with ``orch.attempts.cleanup.cleanup``, once per pool size in
``--workers``, timing every git subprocess and store call, and prints where the time goes
per attempt.

HOME, ORCH_HOME, XDG_* and GIT_CONFIG_GLOBAL point into a temporary directory and the git
identity is pinned: nothing touches the real home.

    python bench/cleanup_bench.py [--attempts 200] [--files 10000] [--json out.json]
           [--snapshot HEAD] [--breakdown [--workers 1,2,4,8]]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime as dt
import io
import json
import os
import platform
import shlex
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the isolated environment is every bench's; the synthetic repository is dispatch_bench's,
# so both benchmarks measure the same kind of repository
from _common import isolated_env as _isolated_env
from _common import run
from dispatch_bench import machine_busy, make_repo

TARGET_RATIO = 1.2  # orch cleanup wall time / git loop wall time (issue 4, point 4)
LOAD_WARNING = 3.0  # 1-minute load average above which the numbers are noisy

Log = Callable[[str], None]


# -- environment ---------------------------------------------------------------------------


def isolated_env(root: Path) -> dict[str, str]:
    env = _isolated_env(root)
    env["ORCH_HOME"] = str(root / "orch-home")
    return env


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def find_orch(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    beside = Path(sys.executable).parent / "orch"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("orch")
    if not found:
        raise SystemExit("orch not found: pass --orch or run with orch's Python")
    return [found]


def snapshot_orch(ref: str, dest: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """Export orch (and its migrations) at ``ref`` of this checkout; return its command.

    For a checkout that others edit while the bench runs: the measured code stays fixed.
    It runs on this Python (which must have orch's dependencies) through ``PYTHONPATH``.
    """
    checkout = Path(__file__).resolve().parent.parent
    commit = run(["git", "-C", str(checkout), "rev-parse", "--verify", f"{ref}^{{commit}}"], env)
    sha = commit.stdout.decode().strip()
    tar = run(["git", "-C", str(checkout), "archive", sha, "orch", "migrations"], env).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(dest, filter="data")
    # the wheel ships migrations/ as orch.migrations
    (dest / "migrations").rename(dest / "orch" / "migrations")
    env["PYTHONPATH"] = str(dest)
    sys.path.insert(0, str(dest))  # for --breakdown, which imports orch here
    return [sys.executable, "-m", "orch"], f"{ref} = {sha[:12]}"


# -- synthetic repository ------------------------------------------------------------------


def head_commit(repo: Path, env: dict[str, str]) -> str:
    return run(["git", "rev-parse", "HEAD"], env, cwd=repo).stdout.decode().strip()


def disk_usage(path: Path) -> int:
    """Bytes allocated under ``path``, the same walk as ``orch cleanup --dry-run``."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += getattr(st, "st_blocks", 0) * 512 or st.st_size
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return total


# -- checks --------------------------------------------------------------------------------


def linked_worktrees(repo: Path, env: dict[str, str]) -> list[str]:
    out = run(["git", "worktree", "list", "--porcelain"], env, cwd=repo).stdout.decode()
    paths = [ln[len("worktree ") :] for ln in out.splitlines() if ln.startswith("worktree ")]
    return [p for p in paths if Path(p).resolve() != repo.resolve()]


def branches(repo: Path, env: dict[str, str], prefix: str) -> list[str]:
    out = run(
        ["git", "for-each-ref", "--format=%(refname)", f"refs/heads/{prefix}/"], env, cwd=repo
    ).stdout.decode()
    return out.split()


def verify_clean(
    side: str, repo: Path, env: dict[str, str], prefix: str, paths: list[Path]
) -> None:
    """Fail loudly unless every worktree, branch and directory of ``side`` is gone."""
    problems = []
    left = linked_worktrees(repo, env)
    if left:
        problems.append(f"{len(left)} linked worktrees still registered, e.g. {left[0]}")
    refs = branches(repo, env, prefix)
    if refs:
        problems.append(f"{len(refs)} refs/heads/{prefix}/* left, e.g. {refs[0]}")
    there = [p for p in paths if p.exists()]
    if there:
        problems.append(f"{len(there)} worktree directories still on disk, e.g. {there[0]}")
    if problems:
        raise SystemExit(f"{side} did not clean up: " + "; ".join(problems))


# -- the git baseline ----------------------------------------------------------------------


def setup_git(
    repo: Path, root: Path, n: int, env: dict[str, str], log: Log
) -> list[tuple[Path, str]]:
    sha = head_commit(repo, env)
    wt_root = root / "git-worktrees"
    wt_root.mkdir()
    items = []
    t0 = time.perf_counter()
    for i in range(n):
        path, branch = wt_root / f"wt-{i:04d}", f"bench/git-{i:04d}"
        run(["git", "worktree", "add", "-q", "-b", branch, str(path), sha], env, cwd=repo)
        items.append((path, branch))
    log(f"git: {n} worktrees added in {time.perf_counter() - t0:.1f} s (untimed)")
    return items


def bench_git(repo: Path, root: Path, n: int, env: dict[str, str], log: Log) -> dict[str, Any]:
    items = setup_git(repo, root, n, env, log)
    freed = sum(disk_usage(p) for p, _ in items)
    os.sync()
    busy = machine_busy()
    load = loadavg()
    t0 = time.perf_counter()
    for path, branch in items:
        run(["git", "worktree", "remove", "--force", str(path)], env, cwd=repo)
        run(["git", "branch", "-q", "-D", branch], env, cwd=repo)
    wall = time.perf_counter() - t0
    verify_clean("the git loop", repo, env, "bench", [p for p, _ in items])
    return {
        "seconds": round(wall, 3),
        "per_attempt_ms": round(wall * 1000 / n, 1),
        "freed_bytes": freed,
        "load_before": load,
        "cpu_busy_before": busy,
        "load_after": loadavg(),
    }


# -- orch ----------------------------------------------------------------------------------


def setup_orch(
    repo: Path, n: int, orch: list[str], env: dict[str, str], parallel: int, log: Log, tag: str = ""
) -> list[str]:
    """Dispatch ``n`` attempts (``parallel`` processes at a time), then cancel them all."""
    t0 = time.perf_counter()

    def dispatch(i: int) -> str:
        key = f"bench{tag}-{i:04d}"
        out = run([*orch, "dispatch", key, "--repo", str(repo), "--prompt", "bench"], env)
        return out.stdout.decode().strip().splitlines()[-1]

    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        ids = list(pool.map(dispatch, range(n)))
    for start in range(0, n, 100):
        run([*orch, "cancel", "--reason", "bench", *ids[start : start + 100]], env)
    log(
        f"orch: {n} attempts dispatched and cancelled in {time.perf_counter() - t0:.1f} s "
        f"(untimed, {parallel} at a time)"
    )
    return ids


def dry_run(orch: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = run([*orch, "cleanup", "--all-terminal", "--dry-run", "--json"], env).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def bench_orch(
    repo: Path, n: int, orch: list[str], env: dict[str, str], parallel: int, log: Log
) -> dict[str, Any]:
    setup_orch(repo, n, orch, env, parallel, log)
    plan = dry_run(orch, env)
    paths = [Path(i["worktree_path"]) for i in plan["items"]]
    if plan["totals"]["remove"] != n or len(branches(repo, env, "orch")) != n:
        raise SystemExit(f"orch cleanup --dry-run does not plan to remove {n}: {plan['totals']}")
    os.sync()
    busy = machine_busy()
    load = loadavg()
    t0 = time.perf_counter()
    out = run([*orch, "cleanup", "--all-terminal", "--json"], env).stdout
    wall = time.perf_counter() - t0
    result = json.loads(out)
    if result["totals"]["remove"] != n or result["totals"]["skip"]:
        raise SystemExit(f"orch cleanup did not remove all {n} attempts: {result['totals']}")
    verify_clean("orch cleanup", repo, env, "orch", paths)
    return {
        "seconds": round(wall, 3),
        "per_attempt_ms": round(wall * 1000 / n, 1),
        "freed_bytes": plan["totals"]["bytes"],
        "load_before": load,
        "cpu_busy_before": busy,
        "load_after": loadavg(),
    }


# -- breakdown (in-process) ----------------------------------------------------------------


def _git_label(args: list[str]) -> str:
    words = list(args)
    while words and words[0].startswith("-"):
        flag = words.pop(0)
        if flag in ("--git-dir", "-C", "--work-tree") and words:
            words.pop(0)
    if not words:
        return "git ?"
    if words[0] == "worktree" and len(words) > 1:
        return f"git worktree {words[1]}"
    return f"git {words[0]}"


def breakdown(
    repo: Path, n: int, orch: list[str], env: dict[str, str], parallel: int, workers: int, log: Log
) -> dict[str, Any]:
    """Clean ``n`` fresh attempts in-process with a pool of ``workers``; time every part."""
    try:
        from orch.attempts.cleanup import CleanupRequest, cleanup
        from orch.config import resolve
        from orch.git import Git
        from orch.store import open_store
    except ImportError as exc:
        raise SystemExit(
            f"--breakdown needs orch importable (run with orch's Python): {exc}"
        ) from exc

    setup_orch(repo, n, orch, env, parallel, log, tag=f"-w{workers}")
    os.sync()
    times: dict[str, list[float]] = collections.defaultdict(list)
    lock = threading.Lock()

    def record(label: str, seconds: float) -> None:
        with lock:
            times[label].append(seconds)

    class TimedGit(Git):
        def run(self, args: Any, cwd: Any = None, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return super().run(args, cwd, **kw)
            finally:
                record(_git_label(list(args)), time.perf_counter() - t0)

    settings = resolve(env, {})
    store = open_store(
        settings.database_url, settings.locks_dir, synchronous=settings.sqlite_synchronous
    )
    for name in dir(store):
        method = getattr(store, name)
        if name.startswith("_") or not callable(method) or name in ("clock", "close"):
            continue

        def wrap(fn: Any = method, label: str = f"store {name}") -> Any:
            def timed_call(*a: Any, **kw: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    record(label, time.perf_counter() - t0)

            return timed_call

        setattr(store, name, wrap())
    busy = machine_busy()
    load = loadavg()
    t0 = time.perf_counter()
    items = cleanup(
        store,
        CleanupRequest(all_terminal=True),
        settings,
        TimedGit(env=env),
        "bench",
        workers=workers,
    )
    wall = time.perf_counter() - t0
    store.close()
    removed = sum(1 for i in items if i.action == "remove")
    if removed != n:
        raise SystemExit(f"in-process cleanup removed {removed} of {n}")
    verify_clean(
        "in-process orch cleanup",
        repo,
        env,
        "orch",
        [Path(i.attempt.worktree_path or "/nonexistent") for i in items],
    )
    parts = {
        label: {
            "calls": len(v),
            "per_attempt_ms": round(sum(v) * 1000 / n, 2),
            "per_call_ms": round(sum(v) * 1000 / len(v), 2),
        }
        for label, v in sorted(times.items(), key=lambda kv: -sum(kv[1]))
    }
    accounted = sum(sum(v) for v in times.values())
    return {
        "workers": workers,
        "seconds": round(wall, 3),
        "per_attempt_ms": round(wall * 1000 / n, 1),
        # thread time not spent in git or the store: Python, locks, the file system
        "other_per_attempt_ms": round((wall * workers - accounted) * 1000 / n, 1)
        if workers == 1
        else None,
        "parts": parts,
        "load_before": load,
        "cpu_busy_before": busy,
    }


# -- report --------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    git, orch = report["git"], report["orch"]
    lines = [
        f"orch cleanup bench: {report['attempts']} attempts, {report['repo']['files']} files, "
        f"{report['cpus']} cpus, git {report['git_version']}, {report['date']}",
        f"orch: {report['orch_command']}"
        + (f" (snapshot of {report['snapshot']})" if report["snapshot"] else ""),
        f"load average (1 min) at start {report['load_start']}",
        f"{'':<34} {'wall s':>8} {'ms/attempt':>11} {'freed':>9} {'load before':>12}"
        f" {'cpu busy before':>16}",
    ]
    for label, row in (
        ("git worktree remove + branch -D", git),
        ("orch cleanup --all-terminal", orch),
    ):
        lines.append(
            f"{label:<34} {row['seconds']:>8.2f} {row['per_attempt_ms']:>11.1f} "
            f"{row['freed_bytes'] / 2**30:>7.2f} G {row['load_before']!s:>12}"
            f" {row['cpu_busy_before']!s:>15}%"
        )
    ratio = report["ratio"]
    lines.append(
        f"ratio orch/git {ratio:.2f}  target <= {TARGET_RATIO}: "
        f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
    )
    if report["busy"]:
        lines.append(
            f"warning: load average above {LOAD_WARNING} during the run: numbers are noisy"
        )
    for b in report.get("breakdown", []):
        lines.append(
            f"in-process orch.attempts.cleanup.cleanup, workers={b['workers']}: {b['seconds']:.2f} s, "
            f"{b['per_attempt_ms']:.1f} ms/attempt (load before {b['load_before']}, "
            f"cpu {b['cpu_busy_before']}% busy)"
        )
        for label, p in b["parts"].items():
            lines.append(
                f"    {label:<36} {p['per_attempt_ms']:>8.2f} ms/attempt "
                f"({p['calls']} calls, {p['per_call_ms']:.2f} ms each)"
            )
        if b["other_per_attempt_ms"] is not None:
            lines.append(
                f"    {'other (Python, fs, locks)':<36} "
                f"{b['other_per_attempt_ms']:>8.2f} ms/attempt"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attempts", type=int, default=200)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument(
        "--parallel",
        type=int,
        default=3,
        help="orch dispatch processes at a time during the setup (default 3)",
    )
    ap.add_argument(
        "--order",
        choices=("git,orch", "orch,git"),
        default="git,orch",
        help="which side runs first (default git,orch)",
    )
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="also clean sets in-process and time every git and store call",
    )
    ap.add_argument("--workers", default="1,4", help="pool sizes for --breakdown (default 1,4)")
    ap.add_argument("--orch", default=None, help="the orch command (default: beside Python)")
    ap.add_argument(
        "--snapshot",
        metavar="REF",
        default=None,
        help="measure orch as committed at REF of this checkout (e.g. HEAD), not the "
        "installed one: for a checkout that others edit meanwhile",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="where the temp dir goes")
    ap.add_argument("--json", dest="json_out", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="orch-cleanup-bench-", dir=args.workdir))
    env = isolated_env(root)
    snapshot = None
    if args.snapshot:
        orch, snapshot = snapshot_orch(args.snapshot, root / "orch-snapshot", env)
    else:
        orch = find_orch(args.orch)
    try:
        report: dict[str, Any] = {
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "attempts": args.attempts,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "git_version": run(["git", "--version"], env).stdout.decode().split()[-1],
            "load_start": loadavg(),
            "orch_command": " ".join(orch),
            "snapshot": snapshot,
        }
        log(f"load average {report['load_start']}; building a {args.files}-file repository")
        repo = root / "repo"
        report["repo"] = make_repo(repo, args.files, env)
        log(f"repository built in {report['repo']['build_seconds']} s")
        for side in args.order.split(","):
            if side == "git":
                report["git"] = bench_git(repo, root, args.attempts, env, log)
            else:
                report["orch"] = bench_orch(repo, args.attempts, orch, env, args.parallel, log)
            log(f"{side}: {report[side]['seconds']:.2f} s")
        report["ratio"] = round(report["orch"]["seconds"] / report["git"]["seconds"], 3)
        report["pass"] = report["ratio"] <= TARGET_RATIO
        if args.breakdown:
            report["breakdown"] = [
                breakdown(repo, args.attempts, orch, env, args.parallel, int(w), log)
                for w in args.workers.split(",")
            ]
        loads = [report["load_start"]] + [
            report[s][k] for s in ("git", "orch") for k in ("load_before", "load_after")
        ]
        report["busy"] = any(x is not None and x > LOAD_WARNING for x in loads)
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(render(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
