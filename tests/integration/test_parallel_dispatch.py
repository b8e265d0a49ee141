"""Many ``orch dispatch`` processes on one repository at the same moment (issue 2, point 5).

DESIGN.md §2.7: parallel use is normal. Each process is the installed ``orch`` entry point.
They are started first and held at a barrier (each one announces itself with a file and
waits for a "go" file), then released together, so that they really overlap: store creation
and migration, attempt numbering, branch creation and worktree registration all race.
Afterwards git itself and the store are asked what is there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ORCH_BIN
from tests.support.repos import git, worktrees_by_path

# Announce readiness, wait for the go file, then become `orch` itself (same pid, same exit).
WAIT_THEN_EXEC = """
import os, sys, time
go, ready, *argv = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
os.execv(argv[0], argv)
"""
GUARD_SECONDS = 600  # a hang guard only; nothing here asserts how long anything took


def dispatch_at_once(
    repo: Path, task_keys: list[str], barrier_dir: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Start one ``orch dispatch --json`` per task key, release them together, collect."""
    barrier_dir.mkdir()
    go = barrier_dir / "go"
    procs = []
    for i, key in enumerate(task_keys):
        argv = [ORCH_BIN, "dispatch", key, "--json", "--prompt", f"attempt {i}"]
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WAIT_THEN_EXEC,
                    str(go),
                    str(barrier_dir / f"ready-{i}"),
                    *argv,
                ],
                cwd=repo,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ),
            )
        )
    try:
        deadline = time.monotonic() + GUARD_SECONDS
        while len(list(barrier_dir.glob("ready-*"))) < len(procs):
            early = [p.args for p in procs if p.poll() is not None]
            assert not early, f"exited before the barrier: {early}"
            assert time.monotonic() < deadline, "the processes never reached the barrier"
            time.sleep(0.01)
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=GUARD_SECONDS)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def check_all_dispatched(
    repo: Path, results: list[subprocess.CompletedProcess[str]], orch_home: Path
) -> list[dict[str, Any]]:
    """Everything DESIGN.md §2.7 promises, asked of git, the store and the inbox."""
    for result in results:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        lock_lines = [
            ln
            for ln in result.stderr.splitlines()
            if "lock" in ln.lower() or "database is locked" in ln.lower()
        ]
        assert lock_lines == [], result.stderr
    attempts = [json.loads(r.stdout)["attempt"] for r in results]
    n = len(attempts)
    base_commit = git("rev-parse", "HEAD", cwd=repo).strip()

    assert len({a["id"] for a in attempts}) == n
    assert len({a["branch_name"] for a in attempts}) == n
    assert len({Path(a["worktree_path"]).resolve() for a in attempts}) == n
    for attempt in attempts:
        assert attempt["base_commit"] == base_commit
        assert attempt["workspace_status"] == "ready"
        assert attempt["state"] == "queued"

    listed = worktrees_by_path(repo)
    assert set(listed) == {repo.resolve()} | {Path(a["worktree_path"]).resolve() for a in attempts}
    tracked = git("ls-files", cwd=repo).splitlines()
    for attempt in attempts:
        path = Path(attempt["worktree_path"])
        entry = listed[path.resolve()]
        assert entry["branch"] == f"refs/heads/{attempt['branch_name']}"
        assert entry["HEAD"] == base_commit
        assert "prunable" not in entry and "locked" not in entry
        assert git("rev-parse", "HEAD", cwd=path).strip() == base_commit
        assert git("symbolic-ref", "HEAD", cwd=path).strip() == entry["branch"]
        assert git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
        assert git("ls-files", cwd=path).splitlines() == tracked
        assert all((path / name).is_file() for name in tracked)
        assert git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=repo).strip() == (
            base_commit
        )

    fsck = subprocess.run(
        ["git", "fsck", "--no-progress"], cwd=repo, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "error" not in (fsck.stdout + fsck.stderr).lower(), fsck.stdout + fsck.stderr
    # `git worktree prune` finds nothing to prune: every registration is complete
    prune = git("worktree", "prune", "--dry-run", "--verbose", cwd=repo)
    assert prune == "", prune

    # the store agrees: one ready row per process, and one payload each
    listed_json = subprocess.run(
        [ORCH_BIN, "list", "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    rows = {
        a["id"]: a
        for a in json.loads(listed_json)["attempts"]
        if a["repository"] == str(repo.resolve())
    }
    assert set(rows) == {a["id"] for a in attempts}
    assert {r["workspace_status"] for r in rows.values()} == {"ready"}
    payloads = sorted(p.stem for p in (orch_home / "inbox").glob("*.json"))
    assert set(payloads) >= {a["id"] for a in attempts}
    return attempts


BACKENDS = [
    pytest.param("sqlite", 16, id="sqlite-16"),
    pytest.param("postgresql", 8, id="postgresql-8", marks=pytest.mark.postgres),
]


@pytest.mark.slow
@pytest.mark.parametrize(("store_url", "processes"), BACKENDS, indirect=["store_url"])
def test_parallel_dispatches_of_different_tasks_all_succeed(
    store_url: str, processes: int, repo: Path, tmp_path: Path, isolated_env: Path
) -> None:
    keys = [f"task-{i}" for i in range(processes)]
    results = dispatch_at_once(repo, keys, tmp_path / "barrier")
    attempts = check_all_dispatched(repo, results, isolated_env)
    assert sorted(a["task_key"] for a in attempts) == sorted(keys)
    assert {a["attempt_number"] for a in attempts} == {1}


@pytest.mark.slow
@pytest.mark.parametrize(("store_url", "processes"), BACKENDS, indirect=["store_url"])
def test_parallel_dispatches_of_one_task_are_numbered_once_each(
    store_url: str, processes: int, repo: Path, tmp_path: Path, isolated_env: Path
) -> None:
    results = dispatch_at_once(repo, ["add-retries"] * processes, tmp_path / "barrier")
    attempts = check_all_dispatched(repo, results, isolated_env)
    numbers = Counter(a["attempt_number"] for a in attempts)
    assert sorted(numbers) == list(range(1, processes + 1))
    assert set(numbers.values()) == {1}
