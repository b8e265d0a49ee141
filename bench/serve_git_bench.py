#!/usr/bin/env python3
"""Measure dulwich against the git CLI for the reads ``orch serve`` makes per request
(issue 18, point 7): should the long-lived dashboard process read git in-process?

For each repository size (default 1k, 10k and 50k files; the generator of
``dispatch_bench.py``: nested directories, small text files, one commit written with
``git fast-import``) it makes ``--attempts`` branches ``orch/bench-N``, each one commit on
the base changing ``--changed`` files (a line appended) and adding one, and leaves as many
uncommitted edits in the checkout (a live worktree). Then, in this one process, as
``orch serve`` would after start-up, it times each read both ways, interleaved per
iteration (the order alternating) so that drift hits both sides alike:

| read | git CLI (the command orch.git runs) | dulwich (one ``Repo`` kept open) |
|---|---|---|
| refs | ``for-each-ref`` of every attempt's branch | ``repo.refs[...]`` for each |
| one ref | ``rev-parse --verify refs/heads/B`` | ``repo.refs[...]`` |
| ahead | ``rev-list --count base..tip`` | a walker from tip excluding base, counted |
| paths | ``diff --name-only base tip`` | ``tree_changes`` (names only) |
| commits | ``log -z --format=... base..tip`` | the same walker, with author and subject |
| numstat | ``diff --no-renames --numstat base tip`` | ``tree_changes`` + a line diff per file |
| changed files | ``diff -M --raw --numstat base tip`` | the same with a ``RenameDetector`` |
| worktree | ``diff -M --raw --numstat HEAD`` in the checkout | ``get_unstaged_changes`` + line diffs |

and, as subprocesses, the import of dulwich's modules against ``python -c pass`` (what
a one-shot command would pay). Every dulwich answer is checked against git's first.

Reported: per read the medians (ms) and the ratio git/dulwich, and two composites per
request: the comparison view of a task with every attempt (refs, then per attempt its
paths, and ahead and numstat too when its branch moved since its summary was recorded)
and the diff view of one attempt (one ref, commits, changed files; or, for a live
worktree, commits and the worktree's changes). HOME, XDG_* and GIT_CONFIG_GLOBAL point into a temporary directory and
the git identity is pinned: nothing touches the real home.

    python bench/serve_git_bench.py [--sizes 1000,10000,50000] [--runs N]
                                    [--attempts 8] [--changed 20] [--json out.json]

Needs dulwich importable by the Python that runs it (``pip install dulwich`` in a venv);
otherwise standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import isolated_env, run
from dispatch_bench import make_repo

DEFAULT_SIZES = (1000, 10000, 50000)
LOG_FORMAT = "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%s"  # orch.git.diff.commits_between
IMPORTS = "import dulwich.repo, dulwich.diff_tree, dulwich.walk, dulwich.index"


# -- the repository --------------------------------------------------------------------------


def add_attempts(
    repo: Path, env: dict[str, str], attempts: int, changed: int, rng: random.Random
) -> tuple[str, list[str]]:
    """``attempts`` branches off HEAD, one commit each (``changed`` files with a line
    appended, one new file), written in one ``git fast-import``; then as many uncommitted
    edits in the checkout. Returns the base commit and the branch names."""
    base = run(["git", "rev-parse", "HEAD"], env, cwd=repo).stdout.decode().strip()
    paths = [p for p in run(["git", "ls-files", "-z"], env, cwd=repo).stdout.split(b"\0") if p]
    branches = [f"orch/bench-{i}" for i in range(attempts)]
    stream: list[bytes] = []
    for i, branch in enumerate(branches):
        message = f"attempt {i}\n".encode()
        stream += [
            b"commit refs/heads/%s\n" % branch.encode(),
            b"committer orch bench <bench@example.invalid> %d +0000\n" % (1700000100 + i),
            b"data %d\n" % len(message),
            message,
            b"from %s\n" % base.encode(),
        ]
        for p in rng.sample(paths, min(changed, len(paths))):
            body = (repo / os.fsdecode(p)).read_bytes() + f"attempt_{i} = {i}\n".encode()
            stream += [b"M 100644 inline %s\n" % p, b"data %d\n" % len(body), body, b"\n"]
        new = f"new = {i}\n".encode() * 10
        stream += [b"M 100644 inline added_%d.py\n" % i, b"data %d\n" % len(new), new, b"\n"]
    stream.append(b"done\n")
    run(["git", "fast-import", "--quiet"], env, cwd=repo, input=b"".join(stream))
    for p in rng.sample(paths, min(changed, len(paths))):
        with open(repo / os.fsdecode(p), "ab") as fh:
            fh.write(b"uncommitted = 1\n")
    return base, branches


# -- the two sides ----------------------------------------------------------------------------


class GitCli:
    """The reads as orch.git runs them: one git process each, output decoded as orch does."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.git_dir = str(repo / ".git")
        self.env = {**env, "GIT_PAGER": "cat"}

    def _run(self, args: list[str], cwd: Path | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.repo,
            capture_output=True,
            text=True,
            errors="surrogateescape",
            env=self.env,
        )
        if proc.returncode != 0:
            raise SystemExit(f"git {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout

    def refs(self, branches: list[str]) -> dict[str, str]:
        out = self._run(
            [
                "--no-optional-locks",
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                *(f"refs/heads/{b}" for b in branches),
            ]
        )
        return {
            ref.removeprefix("refs/heads/"): sha for sha, ref in map(str.split, out.splitlines())
        }

    def ref(self, branch: str) -> str:
        args = ["--git-dir", self.git_dir, "rev-parse", "--verify", "--quiet"]
        return self._run([*args, f"refs/heads/{branch}"]).strip()

    def ahead(self, base: str, tip: str) -> int:
        out = self._run(["--no-optional-locks", "rev-list", "--count", f"{base}..{tip}"])
        return int(out.strip())

    def commits(self, base: str, tip: str) -> list[tuple[str, str]]:
        out = self._run(
            ["--git-dir", self.git_dir, "log", "-z", LOG_FORMAT, f"{base}..{tip}", "--"]
        )
        fields = [r.strip("\n").split("\x1f") for r in out.split("\0") if r.strip("\n")]
        return [(f[0], f[4]) for f in fields]

    def numstat(self, base: str, tip: str) -> tuple[int, int, int]:
        out = self._run(
            ["--no-optional-locks", "diff", "--no-renames", "--numstat", "-z", "--no-color"]
            + [base, tip, "--"]
        )
        return _totals(out.split("\0"))

    def paths(self, base: str, tip: str) -> list[str]:
        out = self._run(
            ["--no-optional-locks", "diff", "--no-renames", "--name-only", "-z", base, tip, "--"]
        )
        return sorted(p for p in out.split("\0") if p)

    def changed_files(self, base: str, tip: str | None) -> tuple[int, int, int]:
        tip_args = [tip] if tip else []
        where = ["--git-dir", self.git_dir] if tip else []
        out = self._run(
            ["--no-optional-locks", *where, "diff", "-M", "--raw", "--numstat", "-z"]
            + ["--color=never", base, *tip_args, "--"]
        )
        return _totals([f for f in out.split("\0") if f and not f.startswith(":")])


def _totals(entries: list[str]) -> tuple[int, int, int]:
    files = adds = dels = 0
    for entry in entries:
        parts = entry.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        files += 1
        if parts[0] != "-":
            adds += int(parts[0])
            dels += int(parts[1])
    return files, adds, dels


class Dulwich:
    """The same reads in-process through one ``dulwich.repo.Repo`` kept open, as a
    long-lived ``orch serve`` would hold it."""

    def __init__(self, repo: Path) -> None:
        from dulwich.repo import Repo

        self.repo = Repo(str(repo))
        self.store = self.repo.object_store

    def refs(self, branches: list[str]) -> dict[str, str]:
        found = {}
        for b in branches:
            try:
                found[b] = self.repo.refs[f"refs/heads/{b}".encode()].decode()
            except KeyError:
                continue
        return found

    def ref(self, branch: str) -> str:
        return str(self.repo.refs[f"refs/heads/{branch}".encode()].decode())

    def _walk(self, base: str, tip: str) -> Any:
        return self.repo.get_walker(include=[tip.encode()], exclude=[base.encode()])

    def ahead(self, base: str, tip: str) -> int:
        return sum(1 for _ in self._walk(base, tip))

    def commits(self, base: str, tip: str) -> list[tuple[str, str]]:
        out = []
        for entry in self._walk(base, tip):
            c = entry.commit
            _author = c.author.decode("utf-8", "replace")
            subject = c.message.split(b"\n", 1)[0].decode("utf-8", "replace")
            out.append((c.id.decode(), subject))
        return out

    def _tree(self, commit: str) -> bytes:
        return bytes(self.store[commit.encode()].tree)

    def paths(self, base: str, tip: str) -> list[str]:
        from dulwich.diff_tree import tree_changes

        changes = tree_changes(self.store, self._tree(base), self._tree(tip))
        return sorted(os.fsdecode((c.new or c.old).path) for c in changes)

    def numstat(self, base: str, tip: str, renames: bool = False) -> tuple[int, int, int]:
        from dulwich.diff_tree import RenameDetector, tree_changes

        detector = RenameDetector(self.store) if renames else None
        files = adds = dels = 0
        for change in tree_changes(
            self.store, self._tree(base), self._tree(tip), rename_detector=detector
        ):
            old = self.store[change.old.sha].as_raw_string() if change.old else b""
            new = self.store[change.new.sha].as_raw_string() if change.new else b""
            files += 1
            counted = _line_counts(old, new)
            if counted is not None:
                adds += counted[0]
                dels += counted[1]
        return files, adds, dels

    def changed_files(self, base: str, tip: str | None) -> tuple[int, int, int]:
        if tip is not None:
            return self.numstat(base, tip, renames=True)
        # a live worktree: the files whose content differs from the index (HEAD is the
        # base here), each counted against its indexed blob
        from dulwich.index import get_unstaged_changes

        index = self.repo.open_index()
        root = Path(self.repo.path)
        files = adds = dels = 0
        for path in get_unstaged_changes(index, self.repo.path):
            old = self.store[index[path].sha].as_raw_string()
            new = (root / os.fsdecode(path)).read_bytes()
            files += 1
            counted = _line_counts(old, new)
            if counted is not None:
                adds += counted[0]
                dels += counted[1]
        return files, adds, dels


def _line_counts(old: bytes, new: bytes) -> tuple[int, int] | None:
    """Lines added and removed, as a line diff counts them; None for a binary file."""
    if b"\0" in old[:8000] or b"\0" in new[:8000]:
        return None
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    adds = dels = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            dels += i2 - i1
        if tag in ("replace", "insert"):
            adds += j2 - j1
    return adds, dels


# -- measuring ---------------------------------------------------------------------------------


def reads(
    side: Any, base: str, branches: list[str], tips: dict[str, str]
) -> dict[str, Callable[[], Any]]:
    first = branches[0]
    tip = tips[first]
    return {
        "refs": lambda: side.refs(branches),
        "one ref": lambda: side.ref(first),
        "ahead": lambda: side.ahead(base, tip),
        "commits": lambda: side.commits(base, tip),
        "paths": lambda: side.paths(base, tip),
        "numstat": lambda: side.numstat(base, tip),
        "changed files": lambda: side.changed_files(base, tip),
        "worktree": lambda: side.changed_files("HEAD" if isinstance(side, GitCli) else base, None),
    }


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def import_cost(runs: int, env: dict[str, str]) -> dict[str, float]:
    """``python -c IMPORTS`` against ``python -c pass``, as subprocesses, interleaved."""
    samples: dict[str, list[float]] = {"pass": [], "dulwich": []}
    for i in range(runs):
        order = [("pass", "pass"), ("dulwich", IMPORTS)]
        for name, code in order if i % 2 == 0 else reversed(order):
            samples[name].append(timed(lambda c=code: run([sys.executable, "-c", c], env)))
    medians = {name: median_ms(s) for name, s in samples.items()}
    return {**medians, "import_ms": round(medians["dulwich"] - medians["pass"], 2)}


def bench_size(
    n: int, runs: int, attempts: int, changed: int, root: Path, log: Any
) -> dict[str, Any]:
    env = isolated_env(root / f"env-{n}")
    repo = root / f"repo-{n}"
    log(f"{n} files: building the repository")
    facts = make_repo(repo, n, env)
    base, branches = add_attempts(repo, env, attempts, changed, random.Random(n))
    cli, dul = GitCli(repo, env), Dulwich(repo)
    tips = cli.refs(branches)
    sides = {"git": reads(cli, base, branches, tips), "dulwich": reads(dul, base, branches, tips)}
    log(f"{n} files: checking that both sides agree")
    for name in sides["git"]:
        want, got = sides["git"][name](), sides["dulwich"][name]()
        if want != got:
            raise SystemExit(f"{n} files, {name}: git says {want!r}, dulwich says {got!r}")
    log(f"{n} files: {runs} runs")
    samples: dict[str, dict[str, list[float]]] = {s: {r: [] for r in sides[s]} for s in sides}
    for i in range(runs):
        for name in sides["git"]:
            order = ("git", "dulwich") if i % 2 == 0 else ("dulwich", "git")
            for side in order:
                samples[side][name].append(timed(sides[side][name]))
    medians = {s: {r: median_ms(v) for r, v in samples[s].items()} for s in samples}

    def composite(side: str) -> dict[str, float]:
        m = medians[side]
        return {
            # every branch moved since its summary was recorded: counted again, then paths
            "compare view (all moved)": round(
                m["refs"] + attempts * (m["ahead"] + m["numstat"] + m["paths"]), 2
            ),
            # the usual case: summaries recorded, only the paths asked for
            "compare view (recorded)": round(m["refs"] + attempts * m["paths"], 2),
            "diff view (committed)": round(m["one ref"] + m["commits"] + m["changed files"], 2),
            "diff view (worktree)": round(m["commits"] + m["worktree"], 2),
        }

    return {
        "files": facts["files"],
        "attempts": attempts,
        "changed": changed,
        "runs": runs,
        "median_ms": medians,
        "per_request_ms": {"git": composite("git"), "dulwich": composite("dulwich")},
    }


def render(results: list[dict[str, Any]], imports: dict[str, float]) -> str:
    out = [
        f"dulwich import (in a fresh python): {imports['import_ms']} ms "
        f"(python -c pass {imports['pass']} ms, with the imports {imports['dulwich']} ms)",
    ]
    for r in results:
        out.append(
            f"\n{r['files']} files, {r['attempts']} attempts of {r['changed'] + 1} files each, "
            f"{r['runs']} runs (medians, ms; ratio = git / dulwich, > 1: dulwich faster)"
        )
        out.append(f"  {'read':24} {'git':>9} {'dulwich':>9} {'ratio':>7}")
        rows = [
            (k, r["median_ms"]["git"][k], r["median_ms"]["dulwich"][k])
            for k in r["median_ms"]["git"]
        ]
        rows += [
            (f"= {k}", r["per_request_ms"]["git"][k], r["per_request_ms"]["dulwich"][k])
            for k in r["per_request_ms"]["git"]
        ]
        for name, g, d in rows:
            ratio = f"{g / d:.2f}" if d else "-"
            out.append(f"  {name:24} {g:9.2f} {d:9.2f} {ratio:>7}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    ap.add_argument("--runs", type=int, default=21, help="timed runs per read and side")
    ap.add_argument("--attempts", type=int, default=8, help="attempt branches (default 8)")
    ap.add_argument("--changed", type=int, default=20, help="files each attempt changes")
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args(argv)
    try:
        import dulwich
    except ImportError:
        raise SystemExit(
            "dulwich is not importable here: pip install dulwich (in a venv)"
        ) from None
    root = Path(tempfile.mkdtemp(prefix="orch-serve-git-bench-"))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        imports = import_cost(args.runs, isolated_env(root / "imports"))
        results = [
            bench_size(int(n), args.runs, args.attempts, args.changed, root, log)
            for n in args.sizes.split(",")
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = {
        "dulwich": getattr(dulwich, "__version__", "?"),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
        "imports": imports,
        "sizes": results,
    }
    print(
        f"{report['git']}, dulwich {report['dulwich']}, python {report['python']}, "
        f"load average {' '.join(f'{x:.1f}' for x in report['loadavg'])}"
    )
    print(render(results, imports))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
