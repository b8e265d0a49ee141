"""Private by default (DESIGN.md §2, contract 8): what orch writes under its home is its
user's alone (files 0600, directories 0700) whatever the umask, modes an older orch left
open are fixed, and a home another account owns or can write is refused with one line,
exit 11, and nothing written."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch.store import open_store
from tests.support.attempts import AGENT_LEAVES_WORK, work
from tests.support.attempts import dispatch as dispatch_id
from tests.support.cli import RunCli, RunOrch
from tests.support.dashboard import serve_process
from tests.support.processes import wait_for

NOBODY = 65534


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a login: files 0644, directories 0755 unless orch says."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def shared_paths(home: Path) -> list[str]:
    """Everything under ``home`` that the group or others may read, write or enter.

    A worktree's own files keep the repository's modes (orch does not rewrite a checkout):
    it must sit in a 0700 directory instead, which keeps every other account out."""
    found = []
    for top, dirs, files in os.walk(home):
        here = Path(top)
        if ".git" in files or ".git" in dirs:
            if here.parent.stat().st_mode & 0o077:
                found.append(f"{here.parent} (holds a worktree)")
            dirs.clear()
            continue
        for path in (here, *(here / f for f in files)):
            st = path.lstat()
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                found.append(f"{path} {stat.S_IMODE(st.st_mode):04o}")
    return sorted(set(found))


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, owner and mtime: 'nothing written'."""
    seen = {}
    for top, dirs, files in os.walk(root):
        for name in (".", *dirs, *files):
            path = Path(top) / name
            st = path.lstat()
            seen[str(path)] = (st.st_mode, st.st_uid, st.st_mtime_ns)
    return seen


def test_nothing_under_the_home_is_readable_by_others(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    saved = dispatch_id(run_cli, repo, "saved")
    work(run_orch, repo, saved["id"], AGENT_LEAVES_WORK)  # the agent's log
    kept = dispatch_id(run_cli, repo, "kept")  # a live worktree stays under the home

    server, _ = serve_process(tmp_path / "out")
    try:
        wait_for(lambda: (isolated_env / "serve" / "status.json").exists(), "a status snapshot")
    finally:
        assert run_orch("serve", "--stop").returncode == 0
        server.wait()

    cleaned = run_cli("cleanup", "--force", saved["id"], cwd=repo)
    assert cleaned.exit_code == 0, cleaned.output
    archive = next((isolated_env / "archive").iterdir())
    assert {p.suffix for p in archive.iterdir()} >= {".patch", ".gz", ".bundle", ".json"}
    assert (isolated_env / "logs" / f"{saved['id']}.log").stat().st_size > 0

    url = f"sqlite:///{isolated_env / 'orch.db'}"
    with open_store(url, isolated_env / "locks") as store:  # holds -wal and -shm open
        store.get(kept["id"])
        assert (isolated_env / "orch.db-wal").exists()
        assert (isolated_env / "orch.db-shm").exists()
        assert shared_paths(isolated_env) == []


def test_an_older_orchs_open_modes_are_fixed_on_open(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    attempt = dispatch_id(run_cli, repo, "old")
    assert run_orch("work", "--attempt", attempt["id"], "--", "true", cwd=repo).returncode == 0
    for top, dirs, files in os.walk(isolated_env):  # as an orch that knew no better left it
        if ".git" in files:
            dirs.clear()
            continue
        os.chmod(top, 0o755)
        for name in files:
            os.chmod(Path(top) / name, 0o644)
    assert shared_paths(isolated_env) != []

    listed = run_orch("list", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert shared_paths(isolated_env) == []


def _refused(run_orch: RunOrch, repo: Path, root: Path, *args: str) -> str:
    before = snapshot(root)
    proc = run_orch(*args, cwd=repo)
    assert proc.returncode == 11, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert snapshot(root) == before, "a refused home must be left exactly as it was"
    return proc.stderr.strip()


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@needs_root
def test_a_home_owned_by_another_user_is_refused(
    repo: Path, run_orch: RunOrch, isolated_env: Path
) -> None:
    isolated_env.mkdir(mode=0o700)
    os.chown(isolated_env, NOBODY, -1)
    for args in (("dispatch", "x", "--prompt", "p"), ("list",), ("serve", "--port", "0")):
        line = _refused(run_orch, repo, isolated_env.parent, *args)
        assert line == (
            f"Error: the orch home {isolated_env} is owned by uid {NOBODY}, not by you (uid 0): "
            "refused; use an ORCH_HOME of your own"
        )
    assert list(isolated_env.iterdir()) == []


@needs_root
def test_a_store_file_owned_by_another_user_is_refused(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    dispatch_id(run_cli, repo, "swapped")
    os.chown(isolated_env / "orch.db", NOBODY, -1)
    line = _refused(run_orch, repo, isolated_env, "list")
    assert f"{isolated_env / 'orch.db'} is owned by uid {NOBODY}" in line


@needs_root
def test_a_home_inside_a_directory_another_user_owns_is_refused(
    repo: Path, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    """Its owner could rename the home away and put another in its place."""
    os.chown(tmp_path, NOBODY, -1)
    try:
        line = _refused(run_orch, repo, tmp_path, "list")
    finally:
        os.chown(tmp_path, 0, -1)
    assert f"is unsafe: {tmp_path} is owned by uid {NOBODY}" in line


@pytest.mark.parametrize("where", ["home", "parent"])
def test_a_home_others_can_write_is_refused(
    where: str, repo: Path, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    isolated_env.mkdir(mode=0o700)
    opened = isolated_env if where == "home" else tmp_path
    os.chmod(opened, 0o777)  # without the sticky bit: others could swap the home itself
    try:
        line = _refused(run_orch, repo, tmp_path, "dispatch", "x", "--prompt", "p")
    finally:
        os.chmod(opened, 0o700)
    assert f"{opened} is writable by other users (mode 0777): refused" in line
    assert list(isolated_env.iterdir()) == []


def test_a_home_in_a_sticky_shared_directory_is_used(
    repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Like /tmp: others may write there but cannot rename or remove what is ours."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    monkeypatch.setenv("ORCH_HOME", str(shared / "orch"))
    dispatch_id(run_cli, repo, "sticky")
    assert stat.S_IMODE((shared / "orch").stat().st_mode) == 0o700


def test_a_missing_home_is_created_private(
    run_orch: RunOrch, repo: Path, isolated_env: Path, tmp_path: Path
) -> None:
    deep = tmp_path / "a" / "b" / "orch"
    proc = run_orch("dispatch", "deep", "--prompt", "p", cwd=repo, env={"ORCH_HOME": str(deep)})
    assert proc.returncode == 0, proc.stderr
    for path in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert shared_paths(deep) == []
