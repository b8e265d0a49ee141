#!/usr/bin/env python3
"""Benchmark the time workspace set-up adds to ``orch dispatch``, per ``.worktreeinclude`` mode.

One synthetic repository (a few hundred tracked files in one commit) with an ignored
``node_modules/`` tree of ``--mb`` MB (default 200) made of many small files (~10 KB each,
packages with nested ``lib/``, ``dist/`` and ``node_modules/`` directories, as npm leaves
them), listed in ``.gitignore`` and named in ``.worktreeinclude``. Interleaved per
iteration in a shuffled order (seeded; no side always follows the same one, so the
writeback and deferred frees a heavy side leaves behind land on every side alike), it times:

* ``orch dispatch`` with no ``.worktreeinclude`` (the same repository: the baseline that
  the set-up cost is measured above);
* ``orch dispatch`` with ``.worktreeinclude`` naming ``node_modules/`` and ``orch.toml``
  choosing each mode in turn (``[workspace.include] "node_modules/" = copy | hardlink |
  reflink | symlink``);
* ``cp -a node_modules <tmp>/x`` (the raw baseline) and, for reference, ``cp -al``.

Set-up cost of a mode = median(dispatch with that mode) - median(dispatch without
``.worktreeinclude``); the ratio compares it with median(``cp -a``). Every command is a
subprocess timed by wall clock after an ``os.sync()``; worktrees, branches and copies are
removed (untimed) after each one. After every dispatch the bench checks that the mode
really happened (same inodes for hard links, a symbolic link for symlink, new inodes for
copy, shared extents or the documented hard-link fallback for reflink) and that the
source tree is intact, and fails loudly otherwise. Once per side it measures the extra
disk: the allocated blocks of the new ``node_modules`` that are not shared with the source
(hard-linked inodes and extents FIEMAP reports as shared count as shared; directories and
links count in full), plus, in the JSON and the log only, the drop in the file system's free
space over the command as a rough cross-check (the whole worktree, the whole file system:
other processes write too).

HOME, ORCH_HOME, XDG_* and GIT_CONFIG_GLOBAL point into a temporary directory and the git
identity is pinned: nothing touches the real home.

    python bench/setup_bench.py [--mb 200] [--runs 5] [--json out.json] [--orch-ref REF]
           [--keep]

With ``--orch-ref`` (e.g. HEAD) it measures orch as committed at REF, extracted into the
temporary directory and first on PYTHONPATH, so edits of the working tree during the run
(others at work in the same checkout) neither change nor break it.

Standard library only; ``orch`` is the entry point next to this Python, else on PATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import fcntl
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# shared with the other benches (this directory is on sys.path when run)
from _common import isolated_env as _isolated_env
from _common import orch_source, python_of, run

MODES = ("copy", "hardlink", "reflink", "symlink")
SIDES = ("none", *MODES, "cp -a", "cp -al")
TRACKED_FILES = 300
MEAN_FILE_KB = 10
LOAD_WARNING = 2.0  # 1-minute load average (2 cores) above which the numbers are noisy

Log = Callable[[str], None]


class BenchError(SystemExit):
    pass


# -- environment ---------------------------------------------------------------------------


def isolated_env(root: Path) -> dict[str, str]:
    """The benches' environment; worktrees go under ORCH_HOME, on the repository's disk."""
    env = _isolated_env(root)
    env["ORCH_HOME"] = str(root / "orch-home")
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """Run ``cmd`` after a sync; return its wall time (seconds) and its output."""
    os.sync()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or env["HOME"], env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"timed command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return elapsed, proc.stdout.decode(errors="replace")


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def find_orch() -> str:
    beside = Path(sys.executable).parent / "orch"
    found = str(beside) if beside.is_file() else shutil.which("orch")
    if not found:
        raise BenchError("no orch entry point next to this Python or on PATH")
    return found


# -- the synthetic repository --------------------------------------------------------------

_WORDS = [
    *("alpha", "beta", "gamma", "delta", "client", "server", "request", "response", "retry"),
    *("timeout", "cache", "store", "index", "value", "result", "error", "handler", "config"),
    *("option", "parse", "render", "token", "buffer", "stream", "worker", "queue", "lease"),
    *("attempt", "branch", "commit", "merge", "patch", "diff", "status", "event", "record"),
]


def make_repo(path: Path, env: dict[str, str], rng: random.Random) -> int:
    """A repository of TRACKED_FILES small text files in one commit; returns the count."""
    path.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main", str(path)], env)
    for i in range(TRACKED_FILES - 2):
        rel = Path("src", rng.choice(_WORDS), f"{rng.choice(_WORDS)}_{i}.js")
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f"export const {rng.choice(_WORDS)}_{j} = {' + '.join(rng.choices(_WORDS, k=4))!r};"
            for j in range(rng.randint(5, 60))
        ]
        (path / rel).write_text("\n".join(lines) + "\n")
    (path / ".gitignore").write_text("node_modules/\n")
    (path / "package.json").write_text('{"name": "bench", "version": "1.0.0"}\n')
    run(["git", "add", "-A"], env, cwd=path)
    run(["git", "commit", "-q", "-m", "synthetic repository"], env, cwd=path)
    # the bench's own switches stay out of git status: dispatch sees a clean repository
    with (path / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("/.worktreeinclude\n/orch.toml\n")
    time.sleep(1.1)  # let the checkout's mtimes age past the index's (no racy entries)
    run(["git", "update-index", "-q", "--refresh"], env, cwd=path)
    status = run(["git", "status", "--porcelain"], env, cwd=path).stdout
    if status.strip():
        raise BenchError(f"synthetic repository is not clean: {status[:200]!r}")
    return len(run(["git", "ls-files", "-z"], env, cwd=path).stdout.split(b"\0")) - 1


def make_node_modules(root: Path, megabytes: float, rng: random.Random) -> dict[str, Any]:
    """An npm-like tree: packages of ~35 files of ~10 KB (lognormal), some nested."""
    target = int(megabytes * 1_000_000)
    pool = rng.randbytes(1 << 20)  # file bodies are slices: incompressible, never zero pages
    total = files = dirs = 0
    pkg = 0

    def write(path: Path, size: int) -> None:
        nonlocal total, files
        start = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
        path.write_bytes(pool[start : start + size])
        total += size
        files += 1

    def package(base: Path) -> None:
        nonlocal dirs
        for sub in ("", "lib", "lib/internal", "dist", "types"):
            (base / sub).mkdir(parents=True, exist_ok=True)
            dirs += 1
        write(base / "package.json", rng.randint(400, 2500))
        write(base / "README.md", rng.randint(1000, 12000))
        write(base / "LICENSE", 1080)
        for k in range(rng.randint(20, 45)):
            if total >= target:
                return
            sub = rng.choice(("lib", "lib", "lib/internal", "dist", "types"))
            size = max(60, min(400_000, int(rng.lognormvariate(8.6, 1.0))))
            write(base / sub / f"{rng.choice(_WORDS)}_{k}.js", size)

    while total < target:
        pkg += 1
        scoped = rng.random() < 0.15
        name = f"@{rng.choice(_WORDS)}/{rng.choice(_WORDS)}-{pkg}" if scoped else f"pkg-{pkg}"
        base = root / name
        package(base)
        if rng.random() < 0.2 and total < target:  # a nested dependency of its own version
            pkg += 1
            package(base / "node_modules" / f"pkg-{pkg}")
    return {"files": files, "dirs": dirs, "packages": pkg, "bytes": total}


# -- inspecting trees ----------------------------------------------------------------------

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
_FM_HEAD = struct.Struct("=QQIIII")  # struct fiemap
_FM_EXTENT = struct.Struct("=QQQQQIIII")  # struct fiemap_extent
_FM_BATCH = 64


def shared_bytes(path: str) -> int | None:
    """Bytes of ``path`` in extents the file system reports as shared (None: cannot tell)."""
    if not sys.platform.startswith("linux"):
        return None
    shared = 0
    start = 0
    with open(path, "rb") as fh:
        while True:
            buf = bytearray(
                _FM_HEAD.pack(start, (1 << 64) - 1, FIEMAP_FLAG_SYNC, 0, _FM_BATCH, 0)
                + bytes(_FM_EXTENT.size * _FM_BATCH)
            )
            try:
                fcntl.ioctl(fh.fileno(), FS_IOC_FIEMAP, buf)
            except OSError as exc:
                if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
                    return None
                raise
            mapped = _FM_HEAD.unpack_from(buf)[3]
            if mapped == 0:
                return shared
            for k in range(mapped):
                logical, _, length, _, _, flags, *_ = _FM_EXTENT.unpack_from(
                    buf, _FM_HEAD.size + k * _FM_EXTENT.size
                )
                if flags & FIEMAP_EXTENT_SHARED:
                    shared += length
                if flags & FIEMAP_EXTENT_LAST:
                    return shared
            start = logical + length


def tree_index(root: Path) -> dict[str, os.stat_result]:
    """Relative path -> lstat of every entry under ``root`` (links not followed)."""
    out: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = os.lstat(full)
    return out


def _inode(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def verify_and_measure(
    side: str, source: Path, source_index: dict[str, os.stat_result], dest: Path, measure: bool
) -> dict[str, Any]:
    """Check that ``dest`` holds ``source`` the way ``side`` says; fail loudly otherwise.
    With ``measure``, also count the bytes allocated under ``dest`` not shared with it."""
    result: dict[str, Any] = {}
    top = dest.lstat()
    if side == "symlink":
        if not dest.is_symlink() or dest.resolve() != source.resolve():
            raise BenchError(f"symlink mode: {dest} is not a symbolic link to {source}")
        result["verified"] = "symlink"
        result["extra_bytes"] = top.st_blocks * 512
        result["extra_breakdown"] = {"link": top.st_blocks * 512}
        return result
    if dest.is_symlink() or not dest.is_dir():
        raise BenchError(f"{side}: {dest} is not a directory")
    index = tree_index(dest)
    if set(index) != set(source_index):
        missing = sorted(set(source_index) - set(index))[:5]
        extra = sorted(set(index) - set(source_index))[:5]
        raise BenchError(f"{side}: tree differs from the source (missing {missing}, extra {extra})")
    source_inodes = {_inode(st) for st in source_index.values() if not _is_dir(st)}
    linked = copied = reflinked = 0
    files_extra = dirs_extra = links_extra = 0
    for rel, st in index.items():
        src_st = source_index[rel]
        if _is_dir(st):
            dirs_extra += st.st_blocks * 512
            continue
        if os.path.islink(dest / rel):
            links_extra += st.st_blocks * 512
            continue
        if st.st_size != src_st.st_size:
            raise BenchError(f"{side}: {rel} has {st.st_size} bytes, the source {src_st.st_size}")
        same = _inode(st) == _inode(src_st)
        if same:
            linked += 1
            continue
        if _inode(st) in source_inodes:
            raise BenchError(f"{side}: {rel} is a hard link to another source file")
        need_extents = side == "reflink" or measure
        shared = shared_bytes(str(dest / rel)) if need_extents and st.st_size else 0
        if side == "reflink" and st.st_size and not shared:
            raise BenchError(
                f"reflink mode: {rel} is neither a hard link nor shares extents with the "
                "source (a plain copy)"
            )
        if shared:
            reflinked += 1
        else:
            copied += 1
        files_extra += max(0, st.st_blocks * 512 - (shared or 0))
    files = linked + copied + reflinked
    expect = {
        "copy": (copied + reflinked == files, "new inodes"),
        "cp -a": (copied + reflinked == files, "new inodes"),
        "hardlink": (linked == files, "the source's inodes (hard links)"),
        "cp -al": (linked == files, "the source's inodes (hard links)"),
        "reflink": (linked + reflinked == files, "shared extents or hard links"),
    }
    ok, what = expect[side]
    if not ok:
        raise BenchError(
            f"{side}: expected {what} for all {files} files; got {linked} hard-linked, "
            f"{reflinked} reflinked, {copied} copied"
        )
    if side in ("copy", "cp -a"):
        _compare_sample(side, source, dest, source_index)
    result["files"] = {"hardlinked": linked, "reflinked": reflinked, "copied": copied}
    if side == "reflink":
        result["verified"] = (
            "reflink"
            if reflinked == files
            else "hardlink (fallback)"
            if linked == files
            else f"mixed ({reflinked} reflinked, {linked} hard-linked)"
        )
    else:
        result["verified"] = (
            f"{copied} copied" + (f", {reflinked} reflinked" if reflinked else "")
            if side in ("copy", "cp -a")
            else f"{linked} hard links"
        )
    if measure:
        result["extra_bytes"] = files_extra + dirs_extra + links_extra
        result["extra_breakdown"] = {
            "files": files_extra,
            "directories": dirs_extra,
            "links": links_extra,
        }
    return result


def _is_dir(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o040000


def _compare_sample(
    side: str, source: Path, dest: Path, source_index: dict[str, os.stat_result]
) -> None:
    files = sorted(rel for rel, st in source_index.items() if (st.st_mode & 0o170000) == 0o100000)
    for rel in random.Random(7).sample(files, min(40, len(files))):
        if (source / rel).read_bytes() != (dest / rel).read_bytes():
            raise BenchError(f"{side}: {rel} differs from the source")


def free_bytes(path: Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


# -- the measurement -----------------------------------------------------------------------


class Bench:
    def __init__(self, root: Path, orch: str, env: dict[str, str], log: Log) -> None:
        self.root = root
        self.orch = orch
        self.env = env
        self.log = log
        self.repo = root / "repo"
        self.source = self.repo / "node_modules"
        self.copies = root / "copies"
        self.copies.mkdir()
        self.source_index: dict[str, os.stat_result] = {}
        self.counter = 0

    def configure(self, side: str) -> None:
        include = self.repo / ".worktreeinclude"
        toml = self.repo / "orch.toml"
        if side == "none":
            include.unlink(missing_ok=True)
            toml.unlink(missing_ok=True)
            return
        include.write_text("node_modules/\n")
        toml.write_text(f'[workspace.include]\n"node_modules/" = "{side}"\n')

    def one(self, side: str, measure: bool = False) -> dict[str, Any]:
        """Run ``side`` once (timed), check it and clean up after it (untimed)."""
        self.counter += 1
        before = free_bytes(self.root) if measure else 0
        if side.startswith("cp"):
            dest = self.copies / f"x-{self.counter}"
            flags = "-a" if side == "cp -a" else "-al"
            seconds, _ = timed(["cp", flags, str(self.source), str(dest)], self.env)
            worktree = None
        else:
            self.configure(side)
            key = f"setup-bench-{side}"
            seconds, out = timed(
                [self.orch, "dispatch", "--prompt", "p", key, "--repo", str(self.repo), "--json"],
                self.env,
            )
            worktree = Path(json.loads(out)["attempt"]["worktree_path"])
            dest = worktree / "node_modules"
        sample: dict[str, Any] = {"seconds": seconds}
        if measure:
            sample["df_delta_bytes"] = before - free_bytes(self.root)
        if side == "none":
            if dest.exists() or dest.is_symlink():
                raise BenchError(f"no .worktreeinclude, yet {dest} exists")
            sample["verified"] = "no node_modules"
            sample["extra_bytes"] = 0
        else:
            sample.update(verify_and_measure(side, self.source, self.source_index, dest, measure))
        self.remove(worktree, dest)
        return sample

    def remove(self, worktree: Path | None, dest: Path) -> None:
        if dest.is_symlink():
            dest.unlink()  # never walk into the source through the link
        if worktree is None:
            shutil.rmtree(dest, ignore_errors=True)
            return
        shutil.rmtree(worktree, ignore_errors=True)
        run(["git", "worktree", "prune"], self.env, cwd=self.repo)
        refs = (
            run(
                ["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/"],
                self.env,
                cwd=self.repo,
            )
            .stdout.decode()
            .split()
        )
        doomed = [r for r in refs if r != "main"]
        if doomed:
            run(["git", "branch", "-q", "-D", *doomed], self.env, cwd=self.repo)

    def check_source(self) -> None:
        now = tree_index(self.source)
        if set(now) != set(self.source_index) or any(
            _inode(now[r]) != _inode(self.source_index[r]) or now[r].st_size != st.st_size
            for r, st in self.source_index.items()
        ):
            raise BenchError("the source node_modules changed during the bench")


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "samples_ms": [round(s * 1000, 1) for s in seconds],  # in run order
    }


def bench(args: argparse.Namespace, root: Path, log: Log) -> dict[str, Any]:
    orch = find_orch()
    env = isolated_env(root)
    source_note = ""
    if args.orch_ref:
        sha = snapshot_orch(args.orch_ref, root / "orch-src", env)
        env["PYTHONPATH"] = str(root / "orch-src")
        source_note = f" = {args.orch_ref} {sha[:12]}"
    rng = random.Random(20240601)
    b = Bench(root, orch, env, log)
    log(f"building the repository and a {args.mb:g} MB node_modules in {root} ...")
    started = time.perf_counter()
    tracked = make_repo(b.repo, env, rng)
    tree = make_node_modules(b.source, args.mb, rng)
    os.sync()
    b.source_index = tree_index(b.source)
    allocated = sum(st.st_blocks * 512 for st in b.source_index.values())
    log(
        f"  {tracked} tracked files; node_modules: {tree['files']} files in {tree['dirs']} "
        f"directories, {tree['bytes'] / 1e6:.0f} MB ({allocated / 1e6:.0f} MB allocated), "
        f"built in {time.perf_counter() - started:.1f} s"
    )

    log("one untimed run of each side: warm-up, verification, extra disk ...")
    checks: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        checks[side] = b.one(side, measure=True)
        c = checks[side]
        log(
            f"  {side:<8} {c['seconds'] * 1000:7.0f} ms  {c['verified']}, extra "
            f"{c['extra_bytes'] / 1e6:.1f} MB (df {c['df_delta_bytes'] / 1e6:+.1f} MB)"
        )

    samples: dict[str, list[float]] = {s: [] for s in SIDES}
    shuffler = random.Random(4242)
    loads: list[float] = []
    log(f"{args.runs} interleaved runs of {len(SIDES)} sides ...")
    for i in range(args.runs):
        load = loadavg()
        loads.append(load[0] if load else float("nan"))
        order = list(SIDES)
        shuffler.shuffle(order)
        for side in order:
            samples[side].append(b.one(side)["seconds"])
        log(
            f"  run {i + 1}: load {loads[-1]:.2f}; "
            + ", ".join(f"{s} {samples[s][-1] * 1000:.0f}" for s in SIDES)
            + " ms"
        )
    b.check_source()

    results = {side: summary(s) for side, s in samples.items()}
    base = results["none"]["median_ms"]
    base_min = results["none"]["min_ms"]
    cp = results["cp -a"]["median_ms"]
    table = []
    for side in (*MODES, "cp -a", "cp -al"):
        med = results[side]["median_ms"]
        setup = med - base if side in MODES else med
        table.append(
            {
                "side": side,
                "setup_ms": round(setup, 1),
                # the fastest runs, less disturbed by other load: a second estimate
                "setup_min_ms": round(
                    results[side]["min_ms"] - (base_min if side in MODES else 0), 1
                ),
                "dispatch_median_ms": med if side in MODES else None,
                "ratio_to_cp_a": round(setup / cp, 3) if cp else None,
                "extra_disk_bytes": checks[side]["extra_bytes"],
                "extra_disk_breakdown": checks[side].get("extra_breakdown"),
                "df_delta_bytes": checks[side]["df_delta_bytes"],
                "verified": checks[side]["verified"],
            }
        )
    return {
        "machine": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "git": run(["git", "--version"], env).stdout.decode().strip(),
            "orch": run([orch, "--version"], env).stdout.decode().strip(),
            "orch_source": orch_source(python_of(orch), env) + source_note,
            "file_system": _fs_type(root),
            "tmp": str(root),
        },
        "repo": {"tracked_files": tracked, "node_modules": tree, "allocated_bytes": allocated},
        "runs": args.runs,
        "load_1min_before_each_run": loads,
        "dispatch_none": results["none"],
        "sides": results,
        "warmup": checks,
        "table": table,
    }


def snapshot_orch(ref: str, dest: Path, env: dict[str, str]) -> str:
    """Extract the ``orch`` package as committed at ``ref`` into ``dest``; return the commit.
    First on PYTHONPATH, it shadows the editable install: edits made to the working tree
    while the bench runs cannot change (or break) what it measures."""
    checkout = Path(__file__).resolve().parent.parent
    sha = run(["git", "-C", str(checkout), "rev-parse", "--verify", f"{ref}^{{commit}}"], env)
    sha_text = sha.stdout.decode().strip()
    dest.mkdir(parents=True)
    tar = run(["git", "-C", str(checkout), "archive", "--format=tar", sha_text, "orch"], env)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True)
    return sha_text


def _fs_type(path: Path) -> str:
    """The mounted file system holding ``path`` (Linux /proc/mounts; '?' elsewhere)."""
    try:
        mounts = [ln.split() for ln in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    best = ("", "?")
    target = str(path.resolve())
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best[1]


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    nm = report["repo"]["node_modules"]
    none = report["dispatch_none"]
    lines = [
        f"orch workspace set-up benchmark, {m['date']}: {m['nproc']} cores, {m['platform']}",
        f"Python {m['python']}, {m['git']}, {m['orch']}, orch from {m['orch_source']}",
        f"file system {m['file_system']} ({m['tmp']}); load average {m['loadavg_start']} at "
        f"start, {m['loadavg_end']} at the end",
        f"node_modules: {nm['files']} files in {nm['dirs']} directories, "
        f"{nm['bytes'] / 1e6:.0f} MB ({report['repo']['allocated_bytes'] / 1e6:.0f} MB "
        f"allocated); {report['repo']['tracked_files']} tracked files",
        "",
        f"{report['runs']} interleaved runs; set-up = median(orch dispatch with the mode) - "
        "median(orch dispatch without .worktreeinclude); min = the same with the fastest runs",
        f"orch dispatch without .worktreeinclude: median {none['median_ms']:.0f} ms "
        f"(min {none['min_ms']:.0f}, max {none['max_ms']:.0f}); cp rows: the copy alone",
        "extra disk = allocated blocks of the new node_modules not shared with the source "
        "(hard-linked inodes and shared extents excluded; directories count)",
        f"{'mode':<9} | {'set-up ms':>9} | {'min ms':>7} | {'dispatch ms':>11} | "
        f"{'/ cp -a':>7} | {'extra MB':>8} | verified",
    ]
    lines.append("-" * len(lines[-1]))
    for row in report["table"]:
        dispatch = row["dispatch_median_ms"]
        lines.append(
            f"{row['side']:<9} | {row['setup_ms']:>9.0f} | {row['setup_min_ms']:>7.0f} | "
            f"{f'{dispatch:.0f}' if dispatch is not None else '-':>11} | "
            f"{row['ratio_to_cp_a']:>6.2f}x | {row['extra_disk_bytes'] / 1e6:>8.1f} | "
            f"{row['verified']}"
        )
    lines.append("")
    loads = ", ".join(f"{x:.2f}" for x in report["load_1min_before_each_run"])
    lines.append(f"1-minute load average before each run: {loads}")
    worst = max(report["load_1min_before_each_run"] or [0.0])
    if worst > LOAD_WARNING:
        lines.append(f"warning: load average above {LOAD_WARNING:g}: the machine was busy")
    for row in report["table"]:
        if row["side"] == "reflink" and "fallback" in row["verified"]:
            lines.append(
                f"note: no reflinks on {m['file_system']}: reflink mode fell back to hard links"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200.0, help="size of node_modules (MB)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side")
    parser.add_argument("--json", dest="json_out", default=None, help="write the report here")
    parser.add_argument(
        "--orch-ref",
        default=None,
        help="measure orch as committed at this ref (default: the installed working tree)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.runs < 1 or args.mb <= 0:
        parser.error("--runs and --mb must be positive")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="orch-setup-bench-"))
    start_load = loadavg()
    try:
        report = bench(args, root, log)
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report["machine"]["loadavg_start"] = " ".join(f"{x:.2f}" for x in start_load) or "?"
    report["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in loadavg()) or "?"
    print(render(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
