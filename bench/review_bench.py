#!/usr/bin/env python3
"""Benchmark ``orch diff --stat`` against ``git diff --stat`` of the same range, in the
same run (issue 18, performance).

For each repository size (synthetic: nested directories, small text files, one commit,
built with ``git fast-import``) it dispatches one attempt (untimed), then leaves in its
worktree what an agent leaves: a commit changing ``--changed`` files, uncommitted edits
to as many more, and two untracked files. It then times, interleaved per iteration (the
order alternating) so that drift hits every side alike, each as a subprocess by wall
clock:

* ``orch diff <id> --stat``                 against ``git diff --stat <base>`` in the
                                              worktree (git's own diff of the same
                                              range: commits and uncommitted edits);
* ``orch diff <id> --committed --stat``     against ``git diff --stat <base> <tip>``;
* ``<orch's python> -c "import click, sqlalchemy.orm"``   (the import floor);
* for scale, not a target: git's own way to orch's answer, untracked files included
  (a copy of the index, ``ls-files --others``, ``add --intent-to-add`` into the copy,
  ``diff --stat``; what orch itself runs when its quicker way cannot answer exactly),
  checked to print the same bytes as ``orch diff --stat``, which lists the untracked
  files beside git's diff of the tracked ones and prints git's stat itself.

Reported per size: the medians, the ratio orch/git and

    overhead = median(orch diff --stat) - median(git diff --stat) - median(floor)

against the target (at most 60 ms). HOME, ORCH_HOME, XDG_* and GIT_CONFIG_GLOBAL point
into the temporary directory and the git identity is pinned: nothing touches the real
home. The measured orch is byte-compiled first, as an installed one is.

    python bench/review_bench.py [--sizes 1000,10000,50000] [--runs N] [--changed N]
                                 [--json out.json]

Standard library only (it finds the Python that ``orch`` runs on from the entry point's
shebang, for the floor).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import compile_orch, find_orch, isolated_env, python_of, run

TARGET_OVERHEAD_MS = 60.0  # orch diff --stat - git diff --stat - floor (issue 18)
# git's way to orch diff's answer: a copy of the worktree's index, the untracked files
# marked intent-to-add in it, then the diff of the base against the worktree
SAME_ANSWER = (
    "tmp=$(mktemp -d) && trap 'rm -rf \"$tmp\"' EXIT && "
    'cp "$(git rev-parse --git-path index)" "$tmp/index" && export GIT_INDEX_FILE="$tmp/index" && '
    "git --no-optional-locks ls-files -z --others --exclude-standard | "
    "git --literal-pathspecs add --intent-to-add --pathspec-from-file=- --pathspec-file-nul && "
    'git --no-optional-locks diff -M --stat "$1" --'
)
FLOOR_CODE = "import click, sqlalchemy.orm"
DEFAULT_SIZES = (1000, 10000, 50000)
_WORDS = ("alpha", "beta", "client", "server", "retry", "cache", "store", "index", "queue")


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, bytes]:
    start = time.perf_counter()
    out = run(cmd, env, cwd).stdout
    return time.perf_counter() - start, out


def make_repo(path: Path, n: int, env: dict[str, str], seed: int = 1) -> list[str]:
    """A repository with ``n`` small text files in one commit (``git fast-import``),
    checked out and clean; returns the file paths."""
    rng = random.Random(seed * 1_000_003 + n)
    path.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main", str(path)], env)
    paths = [
        f"{top}/{rng.choice(_WORDS)}_{i % 97}/{rng.choice(_WORDS)}_{i}.py"
        for i, top in ((i, ("src", "lib", "tests", "docs")[i % 4]) for i in range(n))
    ]
    chunks = [
        b"commit refs/heads/main\n",
        b"committer orch bench <bench@example.invalid> 1700000000 +0000\n",
        b"data 10\nsynthetic\n",
    ]
    for p in paths:
        lines = rng.randint(10, 80)
        body = b"".join(
            f"{rng.choice(_WORDS)} = {rng.randint(0, 10**6)}\n".encode() for _ in range(lines)
        )
        chunks += [b"M 100644 inline %s\n" % p.encode(), b"data %d\n" % len(body), body, b"\n"]
    chunks.append(b"done\n")
    proc = subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=path,
        env=env,
        input=b"".join(chunks),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"git fast-import failed: {proc.stderr.decode(errors='replace')}")
    run(["git", "reset", "--hard", "-q"], env, cwd=path)
    time.sleep(1.1)  # no racily clean index entries: the first status would rehash them
    run(["git", "update-index", "-q", "--refresh"], env, cwd=path)
    return paths


def leave_work(worktree: Path, paths: list[str], changed: int, env: dict[str, str]) -> None:
    """A commit changing ``changed`` files, as many uncommitted edits, two untracked files."""
    for p in paths[:changed]:
        with open(worktree / p, "a") as fh:
            fh.write("committed = 1\n")
    run(["git", "commit", "-q", "-a", "-m", "agent commit"], env, cwd=worktree)
    for p in paths[changed : 2 * changed]:
        with open(worktree / p, "a") as fh:
            fh.write("uncommitted = 1\n")
    (worktree / "new_module.py").write_text("untracked = 1\n" * 20)
    (worktree / "notes.md").write_text("# notes\n")


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def bench_size(
    n: int, runs: int, changed: int, root: Path, orch: str, python: str, log: Any
) -> dict[str, Any]:
    env = isolated_env(root / f"env-{n}")
    env["ORCH_HOME"] = str(root / f"orch-home-{n}")
    repo = root / f"repo-{n}"
    log(f"{n} files: building the repository")
    paths = make_repo(repo, n, env)
    attempt = run(
        [orch, "dispatch", "--prompt", "p", "bench-review", "--repo", str(repo), "--json"], env
    )
    record = json.loads(attempt.stdout)["attempt"]
    worktree = Path(record["worktree_path"])
    base = record["base_commit"]
    leave_work(worktree, paths, changed, env)
    tip = run(["git", "rev-parse", "HEAD"], env, cwd=worktree).stdout.decode().strip()
    sides: dict[str, tuple[list[str], Path | None]] = {
        "orch diff --stat": ([orch, "diff", record["id"], "--stat"], repo),
        "git diff --stat": (["git", "--no-optional-locks", "diff", "--stat", base], worktree),
        "orch diff --committed --stat": (
            [orch, "diff", record["id"], "--committed", "--stat"],
            repo,
        ),
        "git diff --stat base tip": (["git", "diff", "--stat", base, tip], repo),
        # what git needs to give orch's answer (untracked files too) without touching the
        # worktree's index: the commands orch runs, from a shell (not a target: a scale)
        "git, the same answer": (["sh", "-c", SAME_ANSWER, "sh", base], worktree),
        "floor": ([python, "-c", FLOOR_CODE], None),
    }
    # the same answer from both sides (orch also lists the untracked files)
    orch_out = run(sides["orch diff --committed --stat"][0], env, repo).stdout
    git_out = run(sides["git diff --stat base tip"][0], env, repo).stdout
    if orch_out != git_out:
        raise SystemExit(f"orch and git disagree:\n{orch_out.decode()}\n{git_out.decode()}")
    ours = run(sides["orch diff --stat"][0], env, repo).stdout
    same = run(sides["git, the same answer"][0], env, worktree).stdout
    if ours != same:
        raise SystemExit(f"orch and git's same answer disagree:\n{ours.decode()}\n{same.decode()}")
    for cmd, cwd in sides.values():  # warm caches, untimed
        run(cmd, env, cwd)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            cmd, cwd = sides[name]
            elapsed, _ = timed(cmd, env, cwd)
            samples[name].append(elapsed)
    medians = {name: median_ms(s) for name, s in samples.items()}
    floor = medians["floor"]
    result: dict[str, Any] = {"files": n, "changed": 2 * changed + 2, "runs": runs}
    result["median_ms"] = medians
    for orch_side, git_side in (
        ("orch diff --stat", "git diff --stat"),
        ("orch diff --committed --stat", "git diff --stat base tip"),
    ):
        overhead = round(medians[orch_side] - medians[git_side] - floor, 1)
        result[orch_side] = {
            "ratio_to_git": round(medians[orch_side] / medians[git_side], 2),
            "overhead_ms": overhead,
            "target_ms": TARGET_OVERHEAD_MS,
            "pass": overhead <= TARGET_OVERHEAD_MS,
        }
    same = round(medians["orch diff --stat"] - medians["git, the same answer"] - floor, 1)
    result["orch diff --stat vs the same answer"] = {"overhead_ms": same}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    ap.add_argument("--runs", type=int, default=15, help="timed runs per side (default 15)")
    ap.add_argument(
        "--changed", type=int, default=20, help="files committed and as many left uncommitted"
    )
    ap.add_argument("--orch", default=None, help="the orch command (default: beside python)")
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args(argv)
    orch = find_orch(args.orch)
    python = python_of(orch)
    root = Path(tempfile.mkdtemp(prefix="orch-review-bench-"))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        compile_orch(python, isolated_env(root / "compile"))
        results = [
            bench_size(int(n), args.runs, args.changed, root, orch, python, log)
            for n in args.sizes.split(",")
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for r in results:
        m = r["median_ms"]
        print(f"{r['files']} files, {r['changed']} changed, {r['runs']} runs (medians, ms):")
        print(f"  floor {m['floor']}")
        for orch_side, git_side in (
            ("orch diff --stat", "git diff --stat"),
            ("orch diff --committed --stat", "git diff --stat base tip"),
        ):
            verdict = r[orch_side]
            print(
                f"  {orch_side} {m[orch_side]}  vs  {git_side} {m[git_side]}: "
                f"ratio {verdict['ratio_to_git']}, overhead {verdict['overhead_ms']} ms "
                f"(target <= {TARGET_OVERHEAD_MS:g}) {'PASS' if verdict['pass'] else 'FAIL'}"
            )
        same = r["orch diff --stat vs the same answer"]["overhead_ms"]
        print(
            f"  orch diff --stat {m['orch diff --stat']}  vs  git, the same answer "
            f"{m['git, the same answer']}: overhead {same} ms (no target: a scale)"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["orch diff --stat"]["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
