#!/usr/bin/env python3
"""Benchmark ``orch dispatch`` against the raw git baseline, in the same run.

For each repository size (synthetic: nested directories, small text files, one commit,
built with ``git fast-import``) it times, interleaved per iteration so that drift
(page cache, writeback, CPU frequency) hits both sides alike:

* ``git worktree add -b <branch> <path> HEAD``            (the raw git baseline)
* ``orch dispatch <key> --repo <repo>``                   (through the installed entry point,
                                                           warm store: one untimed dispatch first)
* ``<orch's python> -c "import click, sqlalchemy.orm"``   (the import floor)

and once per run ``orch --help``, ``orch list`` and ``orch show <id>`` beside the floor.

Every command is a subprocess timed by wall clock. After each timed command its worktree
is unregistered (its files moved aside until the run ends, see ``clean_worktrees``) and its
branch deleted, untimed, and the file system is synced before each one, so every run
starts from the same state. The measured orch is byte-compiled first, as an installed one
is. HOME, ORCH_HOME, XDG_* and GIT_CONFIG_GLOBAL point into the temporary directory and
the git identity is pinned: nothing touches the real home.

    python bench/dispatch_bench.py [--sizes 1000,10000,50000] [--runs N] [--json out.json]

Standard library only; any Python >= 3.10 can run it (it finds the Python that ``orch``
runs on from the entry point's shebang, for the floor).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from _common import compile_orch, find_orch, isolated_env, orch_source, python_of, run

# targets (issue 2, point 8)
TARGET_OVERHEAD_MS = 80.0  # median(orch dispatch) - median(git worktree add) - median(floor)
TARGET_RATIO_50K = 1.25  # orch dispatch / git worktree add on the 50k-file repository
TARGET_HELP_MS = 100.0  # orch --help, absolute
TARGET_READ_ABOVE_FLOOR_MS = 60.0  # orch list / orch show, minus the floor

FLOOR_CODE = "import click, sqlalchemy.orm"
DEFAULT_SIZES = (1000, 10000, 50000)
TASK_KEY = "bench-task"


# -- environment ---------------------------------------------------------------------------


class Sample(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds of the command and the children it waited for
    stdout: str
    others: float | None = None  # share of all CPUs that other processes used meanwhile


def _machine_cpu() -> float | None:
    """CPU seconds all processes have used since boot (Linux /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Sample:
    """Run ``cmd`` after a sync; return its wall time, CPU time and output."""
    os.sync()
    cpu0 = _children_cpu()
    machine0 = _machine_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or env["HOME"], env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    machine1 = _machine_cpu()
    cpu = _children_cpu() - cpu0
    others = None
    if machine0 is not None and machine1 is not None and elapsed > 0:
        # jiffies are 10 ms: for short commands this is coarse, but a busy neighbour shows
        others = max(0.0, machine1 - machine0 - cpu) / (elapsed * (os.cpu_count() or 1))
    if proc.returncode != 0:
        raise SystemExit(
            f"timed command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return Sample(elapsed, cpu, proc.stdout.decode(errors="replace"), others)


def machine_busy(interval: float = 1.0) -> float | None:
    """Percent of all CPUs busy over ``interval`` (Linux /proc/stat; None elsewhere)."""

    def read() -> list[int] | None:
        try:
            with open("/proc/stat") as fh:
                return [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None

    a = read()
    time.sleep(interval)
    b = read()
    if a is None or b is None:
        return None
    delta = [y - x for x, y in zip(a, b, strict=False)]
    total = sum(delta)
    idle = delta[3] + (delta[4] if len(delta) > 4 else 0)  # idle + iowait
    return round(100.0 * (total - idle) / total, 1) if total else None


QUIET_BUSY_PCT = 20.0


def wait_quiet(
    max_wait: float,
    log: Callable[[str], None],
    interval: float = 1.0,
    threshold: float = QUIET_BUSY_PCT,
) -> float | None:
    """How busy the machine is (others: we are idle meanwhile); with ``max_wait`` > 0,
    wait up to that long for it to drop below ``threshold`` percent."""
    busy = machine_busy(interval)
    deadline = time.monotonic() + max_wait
    warned = False
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        if not warned:
            log(f"  machine {busy:.0f}% busy, waiting up to {max_wait:g}s for it to calm down")
            warned = True
        time.sleep(2)
        busy = machine_busy(interval)
    return busy


# -- synthetic repositories ----------------------------------------------------------------

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "client",
    "server",
    "request",
    "response",
    "retry",
    "timeout",
    "cache",
    "store",
    "index",
    "value",
    "result",
    "error",
    "handler",
    "config",
    "option",
    "parse",
    "render",
    "token",
    "buffer",
    "stream",
    "worker",
    "queue",
    "lease",
    "attempt",
    "branch",
    "commit",
    "merge",
    "patch",
    "diff",
    "status",
    "event",
    "record",
    "table",
    "session",
    "query",
    "filter",
    "limit",
    "offset",
    "cursor",
    "batch",
    "chunk",
    "frame",
    "socket",
    "signal",
    "thread",
    "lock",
]
_EXTS = (".py", ".py", ".py", ".ts", ".md", ".json", ".txt", ".yaml", ".c", ".h")
_TOP = ("src", "lib", "tests", "docs", "tools", "web", "pkg", "internal")


def _line_pool(rng: random.Random, count: int = 4000) -> list[bytes]:
    pool = []
    for _ in range(count):
        indent = "    " * rng.randint(0, 3)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 10)))
        kind = rng.random()
        if kind < 0.2:
            text = (
                f"{indent}def {words.split()[0]}_{rng.randint(0, 999)}(self, {words.split()[-1]}):"
            )
        elif kind < 0.35:
            text = f"{indent}# {words}"
        elif kind < 0.45:
            text = ""
        else:
            text = f"{indent}{words.split()[0]} = {words!r}"
        pool.append(text.encode() + b"\n")
    return pool


def synthetic_paths(n: int, rng: random.Random) -> list[str]:
    """``n`` file paths in nested directories: about 20 files per directory, 8 subdirs each."""
    per_dir = 20
    dirs_needed = max(1, (n + per_dir - 1) // per_dir)
    dirs: list[str] = []
    frontier = [top for top in _TOP]
    # breadth-first: every directory holds files and, while more are needed, subdirectories
    while len(dirs) < dirs_needed:
        next_frontier = []
        for d in frontier:
            dirs.append(d)
            if len(dirs) >= dirs_needed:
                break
            for j in range(8):
                next_frontier.append(f"{d}/{rng.choice(_WORDS)}_{j}")
        frontier = next_frontier
    paths = []
    for i in range(n):
        d = dirs[i % len(dirs)]
        paths.append(f"{d}/{rng.choice(_WORDS)}_{i}{rng.choice(_EXTS)}")
    return paths


def make_repo(path: Path, n: int, env: dict[str, str], seed: int = 1) -> dict[str, Any]:
    """A repository with ``n`` small text files in one commit, checked out and clean."""
    started = time.perf_counter()
    rng = random.Random(seed * 1_000_003 + n)
    pool = _line_pool(rng)
    path.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main", str(path)], env)
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet"],
        cwd=path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    message = f"synthetic repository: {n} files\n".encode()
    out = [
        b"commit refs/heads/main\n",
        b"committer orch bench <bench@example.invalid> 1700000000 +0000\n",
        b"data %d\n" % len(message),
        message,
    ]
    total_bytes = 0
    readme = b"# synthetic repository for orch benchmarks\n"
    out += [b"M 100644 inline README.md\n", b"data %d\n" % len(readme), readme, b"\n"]
    for p in synthetic_paths(n - 1, rng):
        # sizes: mostly 0.3-3 KB, a few larger (lognormal, median ~1 KB)
        lines = max(3, min(400, int(rng.lognormvariate(3.4, 0.8))))
        body = b"".join([f"# {p}\n".encode(), *rng.choices(pool, k=lines)])
        total_bytes += len(body)
        out += [b"M 100644 inline %s\n" % p.encode(), b"data %d\n" % len(body), body, b"\n"]
        if len(out) > 4000:
            proc.stdin.write(b"".join(out))
            out = []
    out.append(b"done\n")
    proc.stdin.write(b"".join(out))
    proc.stdin.close()
    err = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise SystemExit(f"git fast-import failed: {err.decode(errors='replace')}")
    run(["git", "reset", "--hard", "-q"], env, cwd=path)
    # let the checkout's timestamps age past the index's, so no entry is racily clean and
    # the first status does not rehash everything; then refresh the index once
    time.sleep(1.1)
    run(["git", "update-index", "-q", "--refresh"], env, cwd=path)
    status = run(["git", "status", "--porcelain"], env, cwd=path).stdout
    if status.strip():
        raise SystemExit(f"synthetic repository is not clean: {status[:200]!r}")
    count = len(run(["git", "ls-files", "-z"], env, cwd=path).stdout.split(b"\0")) - 1
    return {
        "files": count,
        "content_bytes": total_bytes,
        "build_seconds": round(time.perf_counter() - started, 2),
    }


def clean_worktrees(
    repo: Path, env: dict[str, str], trash: Path, keep: Callable[[Path], bool] = lambda wt: False
) -> None:
    """Unregister every linked worktree (but those ``keep`` says to keep) and delete every
    branch but main (untimed).

    The worktrees' files are moved into ``trash`` (a rename), not deleted: on ext4 without
    a journal, creating files shortly after deleting many is far slower (the inode allocator
    skips inodes freed in the last 60-300 s, ``recently_deleted()``), which would slow the
    next timed checkout by up to 20x. The trash goes when the run ends."""
    out = run(["git", "worktree", "list", "--porcelain"], env, cwd=repo).stdout.decode()
    trash.mkdir(exist_ok=True)
    for block in out.strip().split("\n\n")[1:]:
        line = block.splitlines()[0]
        wt = Path(line[len("worktree ") :])
        if keep(wt):
            continue
        if wt.exists():
            wt.rename(trash / f"{len(os.listdir(trash)):05d}")
    run(["git", "worktree", "prune"], env, cwd=repo)
    refs = (
        run(["git", "for-each-ref", "--format=%(refname)", "refs/heads/"], env, cwd=repo)
        .stdout.decode()
        .split()
    )
    doomed = [r for r in refs if r != "refs/heads/main"]
    if doomed:
        run(
            ["git", "update-ref", "--stdin"],
            env,
            cwd=repo,
            input="".join(f"delete {r}\n" for r in doomed).encode(),
        )


# -- statistics ----------------------------------------------------------------------------


def summary(samples: list[Sample]) -> dict[str, Any]:
    ms = sorted(s.wall * 1000 for s in samples)
    cpu = [s.cpu * 1000 for s in samples]
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(p90, 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "others_busy_median_pct": _median_pct([s.others for s in samples]),
        "runs": len(ms),
        "samples_ms": [round(s.wall * 1000, 1) for s in samples],  # in run order
        "cpu_samples_ms": [round(x, 1) for x in cpu],
    }


def _median_pct(shares: list[float | None]) -> float | None:
    known = [v for v in shares if v is not None]
    return round(100 * statistics.median(known), 1) if known else None


def _disturbed(batch: list[Sample], threshold: float) -> bool:
    return any(s.others is not None and s.others * 100 > threshold for s in batch)


def _busy_summary(values: list[float | None]) -> float | None:
    """Median busy percentage of the machine before each iteration (None: not measured)."""
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- measurements --------------------------------------------------------------------------


def interleaved_runs(
    runs: int,
    names: list[str],
    order: Callable[[int], list[str]],
    measure: Callable[[str], Sample],
    wait: float,
    log: Callable[[str], None],
) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    """Measure every name, in the order ``order(i)`` gives iteration ``i``, ``runs`` times.

    Returns the samples of each name and the conditions they were taken in (the machine's
    busy share before each iteration, how many iterations were run again)."""
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    busy_before: list[float | None] = []
    discarded = 0
    for i in range(runs):
        deadline = time.monotonic() + wait
        while True:
            busy = wait_quiet(max(0.0, deadline - time.monotonic()), log, 0.5)
            batch = {name: measure(name) for name in order(i)}
            # --wait-quiet: an iteration during which others used the CPUs is run again
            if wait <= 0 or time.monotonic() >= deadline:
                break
            if not _disturbed(list(batch.values()), QUIET_BUSY_PCT):
                break
            discarded += 1
        busy_before.append(busy)
        for name, sample in batch.items():
            samples[name].append(sample)
    return samples, {
        "machine_busy_before_pct": _busy_summary(busy_before),
        "machine_busy_before_each_run_pct": busy_before,
        "disturbed_runs_repeated": discarded,
    }


def floor(python: str, env: dict[str, str]) -> Callable[[], Sample]:
    """The floor: what any Python CLI on this stack pays before doing anything."""
    return lambda: timed([python, "-c", FLOOR_CODE], env)


def rotated_runs(
    measures: dict[str, Callable[[], Sample]], runs: int
) -> tuple[dict[str, Any], list[float | None], float | None]:
    """Run every measure once, untimed (the store, the page cache), then ``runs`` rounds of
    all of them, rotating which goes first. Returns the summary of each measure's samples
    (``summary``), the machine's busy share read before each round, and the (upper) median
    of the shares that were read."""
    for measure in measures.values():
        measure()
    samples: dict[str, list[Sample]] = {name: [] for name in measures}
    busy: list[float | None] = []
    names = list(measures)
    for i in range(runs):
        busy.append(machine_busy(0.5))
        for name in names[i % len(names) :] + names[: i % len(names)]:
            samples[name].append(measures[name]())
    known = [b for b in busy if b is not None]
    result = {name: summary(s) for name, s in samples.items()}
    return result, busy, sorted(known)[len(known) // 2] if known else None


def bench_size(
    n: int,
    runs: int,
    root: Path,
    orch: str,
    python: str,
    base_env: dict[str, str],
    log: Callable[[str], None],
    wait: float = 0.0,
) -> dict[str, Any]:
    repo = root / f"repo-{n}"
    log(f"[{n} files] building the repository ...")
    info = make_repo(repo, n, base_env)
    log(
        f"[{n} files] {info['files']} files, {info['content_bytes'] / 1e6:.1f} MB of content, "
        f"built in {info['build_seconds']} s"
    )
    env = dict(base_env, ORCH_HOME=str(root / f"orch-home-{n}"))
    git_wt_root = root / f"git-worktrees-{n}"
    git_wt_root.mkdir()
    trash = root / "trash"

    counter = [0]

    def git_add() -> Sample:
        counter[0] += 1
        k = counter[0]
        sample = timed(
            [
                "git",
                "worktree",
                "add",
                "-b",
                f"bench/git-{k}",
                str(git_wt_root / f"wt-{k}"),
                "HEAD",
            ],
            env,
            cwd=repo,
        )
        clean_worktrees(repo, env, trash)
        return sample

    last_id = [""]

    def orch_dispatch() -> Sample:
        sample = timed([orch, "dispatch", "--prompt", "p", TASK_KEY, "--repo", str(repo)], env)
        last_id[0] = sample.stdout.strip().splitlines()[-1]
        clean_worktrees(repo, env, trash)
        return sample

    def floor() -> Sample:
        return timed([python, "-c", FLOOR_CODE], env)

    # warm-up, untimed: creates the store (migrations), warms page cache and git
    orch_dispatch()
    git_add()
    floor()

    measures = {"git": git_add, "orch": orch_dispatch, "floor": floor}
    log(f"[{n} files] {runs} interleaved runs ...")
    samples, conditions = interleaved_runs(
        runs,
        list(measures),
        # alternate which of orch and git goes first; the floor sits between them
        lambda i: ["orch", "floor", "git"] if i % 2 == 0 else ["git", "floor", "orch"],
        lambda name: measures[name](),
        wait,
        log,
    )
    result = {name: summary(s) for name, s in samples.items()}
    git_med = result["git"]["median_ms"]
    orch_med = result["orch"]["median_ms"]
    floor_med = result["floor"]["median_ms"]
    result["repo"] = info
    result.update(conditions)
    result["cpu_overhead_ms"] = round(
        result["orch"]["cpu_median_ms"]
        - result["git"]["cpu_median_ms"]
        - result["floor"]["cpu_median_ms"],
        1,
    )
    result["ratio"] = round(orch_med / git_med, 3)
    result["ratio_p90"] = round(result["orch"]["p90_ms"] / result["git"]["p90_ms"], 3)
    result["overhead_ms"] = round(orch_med - git_med - floor_med, 1)
    result["orch_home"] = env["ORCH_HOME"]
    result["last_attempt_id"] = last_id[0]
    targets = {
        "overhead": {
            "value_ms": result["overhead_ms"],
            "target_ms": TARGET_OVERHEAD_MS,
            "pass": result["overhead_ms"] <= TARGET_OVERHEAD_MS,
        }
    }
    if n >= 50000:
        targets["ratio"] = {
            "value": result["ratio"],
            "target": TARGET_RATIO_50K,
            "pass": result["ratio"] <= TARGET_RATIO_50K,
        }
    result["targets"] = targets
    log(
        f"[{n} files] git {git_med:.0f} ms, orch {orch_med:.0f} ms, floor {floor_med:.0f} ms, "
        f"ratio {result['ratio']:.2f}x, overhead {result['overhead_ms']:.0f} ms"
    )
    return result


def bench_cli(
    runs: int,
    orch: str,
    python: str,
    env: dict[str, str],
    attempt_id: str,
    log: Callable[[str], None],
    wait: float = 0.0,
) -> dict[str, Any]:
    commands = {
        "help": [orch, "--help"],
        "list": [orch, "list"],
        "show": [orch, "show", attempt_id],
        "floor": [python, "-c", FLOOR_CODE],
        "python": [python, "-c", "pass"],
    }
    for cmd in commands.values():  # warm-up, untimed
        timed(cmd, env)
    log(f"[cli] {runs} interleaved runs of --help, list, show, floor ...")
    names = list(commands)
    samples, conditions = interleaved_runs(
        runs,
        names,
        lambda i: names[i % len(names) :] + names[: i % len(names)],
        lambda name: timed(commands[name], env),
        wait,
        log,
    )
    result: dict[str, Any] = {name: summary(s) for name, s in samples.items()}
    result.update(conditions)
    floor_med = result["floor"]["median_ms"]
    for name in ("list", "show"):
        result[name]["above_floor_ms"] = round(result[name]["median_ms"] - floor_med, 1)
    listed = json.loads(run([orch, "list", "--json"], env).stdout)
    result["store_attempts"] = len(listed["attempts"])
    result["targets"] = {
        "help": {
            "value_ms": result["help"]["median_ms"],
            "target_ms": TARGET_HELP_MS,
            "pass": result["help"]["median_ms"] <= TARGET_HELP_MS,
        },
        "list": {
            "value_ms": result["list"]["above_floor_ms"],
            "target_ms": TARGET_READ_ABOVE_FLOOR_MS,
            "pass": result["list"]["above_floor_ms"] <= TARGET_READ_ABOVE_FLOOR_MS,
        },
        "show": {
            "value_ms": result["show"]["above_floor_ms"],
            "target_ms": TARGET_READ_ABOVE_FLOOR_MS,
            "pass": result["show"]["above_floor_ms"] <= TARGET_READ_ABOVE_FLOOR_MS,
        },
    }
    return result


# -- report --------------------------------------------------------------------------------


def machine_info(orch: str, python: str, env: dict[str, str]) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(
                cmd, env=env, cwd=env["HOME"], capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            return "?"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "python": out([python, "-c", "import sys; print(sys.version.split()[0])"]),
        "git": out(["git", "--version"]).removeprefix("git version "),
        "orch": out([orch, "--version"]),
        "sqlalchemy": out([python, "-c", "import sqlalchemy; print(sqlalchemy.__version__)"]),
        "orch_path": orch,
        "orch_source": orch_source(python, env),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def render(report: dict[str, Any]) -> str:
    lines = []
    m = report["machine"]
    lines.append(
        f"orch dispatch benchmark, {m['date']}: {m['nproc']} cores ({m['cpu']}), "
        f"Python {m['python']}, git {m['git']}, {m['orch']}"
    )
    lines.append(
        f"orch from {m['orch_source']}; load average {m['loadavg_start']} at start, "
        f"{m.get('loadavg_end', '?')} at the end"
    )
    lines.append("")
    lines.append("times in ms, median (p90) over the runs; overhead = orch - git - floor")
    header = (
        f"{'files':>7} {'runs':>4} | {'git worktree add':>17} | {'orch dispatch':>17} | "
        f"{'floor':>13} | {'orch/git':>8} | {'overhead':>8} | targets"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for n, r in report["sizes"].items():

        def cell(key: str, width: int) -> str:
            return f"{r[key]['median_ms']:.0f} ({r[key]['p90_ms']:.0f})".rjust(width)

        verdicts = [
            f"overhead<={TARGET_OVERHEAD_MS:.0f}ms {verdict(r['targets']['overhead']['pass'])}"
        ]
        if "ratio" in r["targets"]:
            verdicts.append(f"ratio<={TARGET_RATIO_50K}x {verdict(r['targets']['ratio']['pass'])}")
        lines.append(
            f"{int(n):>7} {r['git']['runs']:>4} | {cell('git', 17)} | {cell('orch', 17)} | "
            f"{cell('floor', 13)} | {r['ratio']:>7.2f}x | {r['overhead_ms']:>6.0f}ms | "
            + ", ".join(verdicts)
        )
    lines.append("")
    lines.append(
        "for judging noise: fastest run (min) and CPU time (user+sys of the command and the"
    )
    lines.append(
        "children it waited for), ms; busy = share of all CPUs other processes used during"
    )
    lines.append("the timed commands (median); repeated = runs redone because of it (--wait-quiet)")
    lines.append(
        f"{'files':>7} | {'min git':>7} | {'orch':>7} | {'floor':>7} | {'over':>5} | "
        f"{'cpu git':>7} | {'orch':>7} | {'floor':>7} | {'over':>5} | {'busy':>4} | repeated"
    )
    for n, r in report["sizes"].items():
        mins = [r[k]["min_ms"] for k in ("git", "orch", "floor")]
        cpus = [r[k]["cpu_median_ms"] for k in ("git", "orch", "floor")]
        busy = statistics.median(
            [r[k]["others_busy_median_pct"] or 0.0 for k in ("git", "orch", "floor")]
        )
        lines.append(
            f"{int(n):>7} | {mins[0]:>7.0f} | {mins[1]:>7.0f} | {mins[2]:>7.0f} | "
            f"{mins[1] - mins[0] - mins[2]:>5.0f} | {cpus[0]:>7.0f} | {cpus[1]:>7.0f} | "
            f"{cpus[2]:>7.0f} | {r['cpu_overhead_ms']:>5.0f} | {busy:>3.0f}% | "
            f"{r.get('disturbed_runs_repeated', 0)}"
        )
    c = report.get("cli")
    if c:
        lines.append("")
        lines.append(
            f"one-shot commands ({c['help']['runs']} runs, store with "
            f"{c['store_attempts']} attempts, {c.get('disturbed_runs_repeated', 0)} disturbed runs"
            f" repeated); floor = python -c '{FLOOR_CODE}'"
        )
        lines.append(
            f"{'command':<16} | {'median':>7} | {'p90':>7} | {'min':>7} | {'busy':>4} | "
            f"{'above floor':>11} | target"
        )
        lines.append("-" * 70)
        floor_med = c["floor"]["median_ms"]
        t = c["targets"]
        rows = [
            (
                "orch --help",
                c["help"],
                f"{t['help']['value_ms']:.0f} <= {TARGET_HELP_MS:.0f} ms "
                f"absolute {verdict(t['help']['pass'])}",
            ),
            (
                "orch list",
                c["list"],
                f"<= {TARGET_READ_ABOVE_FLOOR_MS:.0f} ms above floor {verdict(t['list']['pass'])}",
            ),
            (
                "orch show <id>",
                c["show"],
                f"<= {TARGET_READ_ABOVE_FLOOR_MS:.0f} ms above floor {verdict(t['show']['pass'])}",
            ),
            ("floor", c["floor"], ""),
            ("python -c pass", c["python"], "(reference)"),
        ]
        for name, s, note in rows:
            above = f"{s['median_ms'] - floor_med:+.0f}" if name != "floor" else ""
            busy = s.get("others_busy_median_pct")
            busy_text = "?" if busy is None else f"{busy:.0f}%"
            lines.append(
                f"{name:<16} | {s['median_ms']:>7.1f} | {s['p90_ms']:>7.1f} | "
                f"{s['min_ms']:>7.1f} | {busy_text:>4} | {above:>11} | {note}"
            )
    lines.append("")
    failed = [name for name, ok in report["verdicts"].items() if not ok]
    lines.append("all targets PASS" if not failed else f"FAIL: {', '.join(failed)}")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def snapshot_orch(ref: str, dest: Path, env: dict[str, str]) -> str:
    """Extract orch as committed at ``ref`` into ``dest`` (laid out as installed: the
    top-level ``migrations/`` becomes ``orch/migrations``); return the commit."""
    checkout = Path(__file__).resolve().parent.parent
    sha = (
        run(["git", "-C", str(checkout), "rev-parse", "--verify", f"{ref}^{{commit}}"], env)
        .stdout.decode()
        .strip()
    )
    dest.mkdir(parents=True)
    tar = run(
        ["git", "-C", str(checkout), "archive", "--format=tar", sha, "orch", "migrations"], env
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    if not (dest / "orch" / "migrations").exists():
        (dest / "migrations").rename(dest / "orch" / "migrations")
    return sha


def remove_in_background(root: Path, log: Callable[[str], None]) -> None:
    """Delete the temporary directory (about a million files after a default run) in a
    detached ``rm -rf``, so that the results are not held up by it."""
    try:
        proc = subprocess.Popen(
            ["rm", "-rf", "--", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        log(f"removing {root} ...")
        shutil.rmtree(root, ignore_errors=True)
        return
    log(
        f"removing {root} in the background (pid {proc.pid}); on ext4 without a journal, "
        "creating files stays slow for a few minutes after a mass deletion: wait before "
        "measuring again"
    )


def default_runs(n: int) -> int:
    return 7 if n >= 50000 else 15


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated file counts (default: %(default)s)",
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs per size (default: 15, and 7 at 50k files or more)",
    )
    ap.add_argument(
        "--cli-runs",
        type=int,
        default=15,
        help="timed runs of --help/list/show (default: %(default)s)",
    )
    ap.add_argument(
        "--json",
        dest="json_out",
        type=Path,
        default=None,
        help="also write the full results (all samples) to this file",
    )
    ap.add_argument(
        "--orch", default=None, help="the orch command (default: next to this Python, else on PATH)"
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to create the temporary directory (default: the system temp "
        "dir; use a directory on the disk you want to measure)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each iteration, wait up to this long for other processes to "
        "use less than 20%% of the CPUs (Linux /proc/stat), and record how busy "
        "the machine was; use it on a shared machine",
    )
    ap.add_argument(
        "--orch-ref",
        default=None,
        metavar="REF",
        help="measure orch as committed at REF (e.g. HEAD) in the checkout this "
        "script belongs to: extracted into the temporary directory and first on "
        "PYTHONPATH, so edits of the working tree during the run neither change "
        "nor break what is measured",
    )
    ap.add_argument(
        "--label",
        default=None,
        help="describe what is measured (for example the commit of a non-editable "
        "install); printed and stored in the JSON",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    sizes = [int(s.replace("_", "").replace("k", "000")) for s in args.sizes.split(",") if s]
    orch = find_orch(args.orch)
    python = python_of(orch)
    if shutil.which("git") is None:
        raise SystemExit("git is not on PATH")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # a plain `kill` still removes the temporary directory (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="orch-bench-", dir=args.workdir))
    started = time.perf_counter()
    try:
        env = isolated_env(root)
        if args.orch_ref:
            sha = snapshot_orch(args.orch_ref, root / "orch-src", env)
            env["PYTHONPATH"] = str(root / "orch-src")
            args.label = " ".join(x for x in (f"{args.orch_ref} = {sha[:12]}", args.label) if x)
        compile_orch(python, env, log)
        report: dict[str, Any] = {"machine": machine_info(orch, python, env), "sizes": {}}
        if args.label:
            report["machine"]["orch_source"] += f" [{args.label}]"
        report["targets"] = {
            "overhead_ms": TARGET_OVERHEAD_MS,
            "ratio_50k": TARGET_RATIO_50K,
            "help_ms": TARGET_HELP_MS,
            "read_above_floor_ms": TARGET_READ_ABOVE_FLOOR_MS,
        }
        log(f"working in {root}; orch = {orch}; floor python = {python}")
        for n in sizes:
            runs = args.runs or default_runs(n)
            report["sizes"][str(n)] = bench_size(
                n, runs, root, orch, python, env, log, args.wait_quiet
            )
        first = report["sizes"][str(sizes[0])]
        cli_env = dict(env, ORCH_HOME=first["orch_home"])
        report["cli"] = bench_cli(
            args.cli_runs, orch, python, cli_env, first["last_attempt_id"], log, args.wait_quiet
        )
        verdicts: dict[str, bool] = {}
        for n, r in report["sizes"].items():
            for name, t in r["targets"].items():
                verdicts[f"{name}@{n}"] = t["pass"]
        for name, t in report["cli"]["targets"].items():
            verdicts[name] = t["pass"]
        report["verdicts"] = verdicts
        report["elapsed_seconds"] = round(time.perf_counter() - started, 1)
        report["machine"]["loadavg_end"] = _loadavg()
        text = render(report)
        print(text)
        log(f"total {report['elapsed_seconds']} s")
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2) + "\n")
            log(f"wrote {args.json_out}")
        return 0 if all(verdicts.values()) else 1
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            remove_in_background(root, log)


if __name__ == "__main__":
    sys.exit(main())
