"""Workspace set-up (issue 6.2-6.4): ``.worktreeinclude``, shared state and the set-up hook.

Real repositories and real dispatches through the CLI; what a new worktree holds is read
from the file system (inodes, link counts, symlink targets) and from git itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.attempts import attempts_of, dispatch, payload_files, show
from tests.support.cli import RunCli, assert_failed_cleanly
from tests.support.repos import commit_all, git, orch_branches, worktrees

FICLONE = 0x40049409


def _new_repo(tmp_path: Path, name: str = "repo") -> Path:
    repo = tmp_path / name
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    return repo


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _status(worktree: Path) -> str:
    return git("status", "--porcelain", "--untracked-files=all", cwd=worktree)


def _events(run_cli: RunCli, attempt: dict[str, Any], kind: str, cwd: Path) -> list[dict[str, Any]]:
    return [e["detail"] for e in show(run_cli, attempt["id"], cwd)["events"] if e["kind"] == kind]


def _set_up_event(run_cli: RunCli, attempt: dict[str, Any], cwd: Path) -> dict[str, Any]:
    events = _events(run_cli, attempt, "workspace_set_up", cwd)
    assert len(events) == 1, events
    return events[0]


def _reflinks_work(directory: Path) -> bool:
    """Whether this file system shares extents (btrfs, xfs): then reflink is a real clone."""
    if not sys.platform.startswith("linux"):
        return False
    src, dst = directory / "reflink-probe-src", directory / "reflink-probe-dst"
    src.write_text("probe")
    try:
        with src.open("rb") as fs, dst.open("wb") as fd:
            fcntl.ioctl(fd.fileno(), FICLONE, fs.fileno())
        return True
    except OSError as exc:
        assert exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY), exc
        return False
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


# -- .worktreeinclude ----------------------------------------------------------------------


@pytest.fixture
def include_repo(tmp_path: Path) -> Path:
    """Ignored, tracked and untracked files, some named in ``.worktreeinclude``."""
    repo = _new_repo(tmp_path)
    _write(repo / ".gitignore", ".env\n*.log\nnode_modules/\nconfig/*.local\n")
    _write(
        repo / ".worktreeinclude",
        "# what git does not carry\n.env\nconfig/*.local\nnode_modules/\ntracked.txt\nnotes.txt\n",
    )
    _write(repo / "config" / "app.toml", "name = 'app'\n")
    _write(repo / "tracked.txt", "committed\n")
    _write(repo / "services" / "api" / "main.py", "print('api')\n")
    git("add", "-A", cwd=repo)
    # tracked although ignored: git carries it, the working copy must never replace it
    git(
        "add",
        "-f",
        _write(repo / "config" / "forced.local", "committed\n").name,
        cwd=repo / "config",
    )
    commit_all(repo, "initial")

    _write(repo / ".env", "SECRET=1\n")
    _write(repo / "services" / "api" / ".env", "API_SECRET=2\n")  # .env matches at any depth
    _write(repo / "config" / "db.local", "db = 'local'\n")
    _write(repo / "node_modules" / "pkg" / "index.js", "module.exports = 1\n")
    (repo / "node_modules" / ".bin").mkdir()
    (repo / "node_modules" / ".bin" / "tool").symlink_to("../pkg/index.js")
    _write(repo / "debug.log", "ignored but not named\n")
    _write(repo / "notes.txt", "untracked, not ignored\n")
    _write(repo / "tracked.txt", "modified in the main worktree\n")
    _write(repo / "config" / "forced.local", "modified in the main worktree\n")
    return repo


def test_only_ignored_files_named_in_worktreeinclude_are_brought(
    include_repo: Path, run_cli: RunCli
) -> None:
    repo = include_repo
    attempt = dispatch(run_cli, repo, "include")
    wt = Path(attempt["worktree_path"])

    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "services" / "api" / ".env").read_text() == "API_SECRET=2\n"
    assert (wt / "config" / "db.local").read_text() == "db = 'local'\n"
    # files are copied by default: editing one in the attempt leaves the main worktree alone
    assert (wt / ".env").stat().st_ino != (repo / ".env").stat().st_ino
    assert not (wt / ".env").is_symlink()

    # a whole ignored directory is hard-linked file by file: no byte is duplicated
    main_js, wt_js = (
        repo / "node_modules" / "pkg" / "index.js",
        wt / "node_modules" / "pkg" / "index.js",
    )
    assert wt_js.read_text() == "module.exports = 1\n"
    assert not (wt / "node_modules").is_symlink()
    assert wt_js.stat().st_ino == main_js.stat().st_ino
    assert main_js.stat().st_nlink == 2
    assert os.readlink(wt / "node_modules" / ".bin" / "tool") == "../pkg/index.js"

    assert not (wt / "debug.log").exists()  # ignored, but not named
    assert not (wt / "notes.txt").exists()  # named, but the operator's untracked work
    # tracked files come from git (the committed base), never from the working tree
    assert (wt / "tracked.txt").read_text() == "committed\n"
    assert (wt / "config" / "forced.local").read_text() == "committed\n"

    # everything brought is ignored in the attempt too: nothing for an agent to commit
    assert _status(wt) == ""
    event = _set_up_event(run_cli, attempt, repo)
    assert sorted(event["included"]) == [
        ".env (copy)",
        "config/db.local (copy)",
        "node_modules (hardlink)",
        "services/api/.env (copy)",
    ]
    assert event["shared"] == [] and event["shared_skipped_existing"] == []


def test_each_attempt_gets_its_own_links(include_repo: Path, run_cli: RunCli) -> None:
    first = Path(dispatch(run_cli, include_repo, "one")["worktree_path"])
    second = Path(dispatch(run_cli, include_repo, "two")["worktree_path"])
    main_js = include_repo / "node_modules" / "pkg" / "index.js"
    assert main_js.stat().st_nlink == 3
    for wt in (first, second):
        assert (wt / "node_modules" / "pkg" / "index.js").stat().st_ino == main_js.stat().st_ino
        assert (wt / ".env").read_text() == "SECRET=1\n"


def test_per_pattern_modes_from_orch_toml(tmp_path: Path, run_cli: RunCli) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / ".gitignore", ".env\nnode_modules/\n.venv/\nvendor/\n*.bin\nbuild/\n")
    _write(repo / ".worktreeinclude", ".env\nnode_modules/\n.venv/\nvendor/\n*.bin\nbuild/\n")
    _write(
        repo / "orch.toml",
        "[workspace.include]\n"
        '".env" = "symlink"\n'
        '"node_modules/" = "copy"\n'
        '".venv/" = "symlink"\n'
        '"vendor/" = "reflink"\n'
        '"*.bin" = "reflink"\n'
        '"build/" = "hardlink"\n',
    )
    commit_all(repo, "initial")
    _write(repo / ".env", "SECRET=1\n")
    _write(repo / "node_modules" / "pkg" / "index.js", "module.exports = 1\n")
    _write(repo / ".venv" / "bin" / "python", "#!/bin/sh\n")
    _write(repo / "vendor" / "lib" / "x.c", "int x;\n")
    _write(repo / "model.bin", "weights\n")
    _write(repo / "build" / "out.o", "object\n")

    attempt = dispatch(run_cli, repo, "modes")
    wt = Path(attempt["worktree_path"])

    def same_inode(rel: str) -> bool:
        return (wt / rel).stat().st_ino == (repo / rel).stat().st_ino

    # symlink: a link into the main worktree (file and directory)
    for rel in (".env", ".venv"):
        assert (wt / rel).is_symlink(), rel
        assert (wt / rel).resolve() == (repo / rel).resolve()
    assert (wt / ".venv" / "bin" / "python").read_text() == "#!/bin/sh\n"
    # copy: its own bytes
    assert (wt / "node_modules" / "pkg" / "index.js").read_text() == "module.exports = 1\n"
    assert not same_inode("node_modules/pkg/index.js")
    assert (repo / "node_modules" / "pkg" / "index.js").stat().st_nlink == 1
    # hardlink, named explicitly
    assert same_inode("build/out.o")
    # reflink: a clone where the file system can, else a hard link; never a byte copy
    reflinks = _reflinks_work(tmp_path)
    for rel in ("vendor/lib/x.c", "model.bin"):
        assert (wt / rel).read_text() == (repo / rel).read_text()
        assert not (wt / rel).is_symlink()
        assert same_inode(rel) is not reflinks, rel

    # a symlinked directory is no directory to git: orch keeps it out of git all the same
    assert _status(wt) == ""
    assert sorted(_set_up_event(run_cli, attempt, repo)["included"]) == [
        ".env (symlink)",
        ".venv (symlink)",
        "build (hardlink)",
        "model.bin (reflink)",
        "node_modules (copy)",
        "vendor (reflink)",
    ]
    # and the main worktree still ignores them all
    assert _status(repo) == ""


def test_an_existing_destination_is_never_overwritten(tmp_path: Path, run_cli: RunCli) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / ".env", "COMMITTED=1\n")
    old_base = commit_all(repo, "the old days: .env was tracked")
    git("rm", "-q", "--cached", ".env", cwd=repo)
    _write(repo / ".gitignore", ".env\n*.local\n")
    _write(repo / ".worktreeinclude", ".env\n*.local\n")
    commit_all(repo, "untrack .env")
    _write(repo / ".env", "LOCAL=1\n")
    _write(repo / "db.local", "local\n")

    # the older base carries .env: the checkout's file stays, the working copy is not forced in
    attempt = dispatch(run_cli, repo, "old-base", "--base-ref", old_base)
    wt = Path(attempt["worktree_path"])
    assert (wt / ".env").read_text() == "COMMITTED=1\n"
    assert (wt / "db.local").read_text() == "local\n"
    assert _set_up_event(run_cli, attempt, repo)["included"] == ["db.local (copy)"]
    assert (repo / ".env").read_text() == "LOCAL=1\n"


def test_an_ignored_directory_with_tracked_content_is_merged_file_by_file(
    tmp_path: Path, run_cli: RunCli
) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / ".gitignore", "build/\n")
    _write(repo / ".worktreeinclude", "build/\n")
    git("add", "-A", cwd=repo)
    git("add", "-f", str(_write(repo / "build" / "keep.txt", "committed\n")), cwd=repo)
    commit_all(repo, "initial")
    _write(repo / "build" / "keep.txt", "modified in the main worktree\n")
    _write(repo / "build" / "out.bin", "built\n")

    wt = Path(dispatch(run_cli, repo, "merge")["worktree_path"])
    assert (wt / "build" / "keep.txt").read_text() == "committed\n"
    assert (wt / "build" / "out.bin").read_text() == "built\n"
    assert _status(wt) == ""


def test_no_worktreeinclude_brings_nothing(tmp_path: Path, run_cli: RunCli) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / ".gitignore", ".env\nnode_modules/\n")
    commit_all(repo, "initial")
    _write(repo / ".env", "SECRET=1\n")
    _write(repo / "node_modules" / "pkg" / "index.js", "x\n")

    attempt = dispatch(run_cli, repo, "bare")
    wt = Path(attempt["worktree_path"])
    assert not (wt / ".env").exists()
    assert not (wt / "node_modules").exists()
    assert sorted(p.name for p in wt.iterdir()) == [".git", ".gitignore", ".orch"]
    assert _events(run_cli, attempt, "workspace_set_up", repo) == []


# -- shared state --------------------------------------------------------------------------


def test_shared_directories_are_one_state_for_every_attempt(
    tmp_path: Path, run_cli: RunCli
) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / "README.md", "hello\n")
    _write(repo / "notes" / "index.md", "tracked notes\n")  # a tracked parent directory
    _write(repo / "orch.toml", '[workspace]\nshared = [".scratch", "notes/tasks/"]\n')
    commit_all(repo, "initial")
    assert not (repo / ".scratch").exists()

    first = dispatch(run_cli, repo, "one")
    second = dispatch(run_cli, repo, "two")
    wt1, wt2 = Path(first["worktree_path"]), Path(second["worktree_path"])

    for rel in (".scratch", "notes/tasks"):
        assert (repo / rel).is_dir() and not (repo / rel).is_symlink()  # created in main
        for wt in (wt1, wt2):
            assert (wt / rel).is_symlink(), (wt, rel)
            assert (wt / rel).resolve() == (repo / rel).resolve()

    _write(wt1 / ".scratch" / "state.json", '{"step": 1}\n')
    assert (wt2 / ".scratch" / "state.json").read_text() == '{"step": 1}\n'
    assert (repo / ".scratch" / "state.json").read_text() == '{"step": 1}\n'
    _write(wt2 / "notes" / "tasks" / "todo.md", "- write tests\n")
    assert (wt1 / "notes" / "tasks" / "todo.md").read_text() == "- write tests\n"
    assert (repo / "notes" / "tasks" / "todo.md").read_text() == "- write tests\n"

    # neither the links nor the shared state are anything git would commit, anywhere
    for wt in (wt1, wt2, repo):
        assert _status(wt) == "", wt
    # a new file in the tracked part of notes/ is still seen by git
    _write(wt1 / "notes" / "new.md", "new\n")
    assert _status(wt1) == "?? notes/new.md\n"
    # the shared state does not make the repository dirty for a strict dispatch
    dispatch(run_cli, repo, "strict", "--strict")

    event = _set_up_event(run_cli, first, repo)
    assert event["shared"] == [".scratch", "notes/tasks"]
    assert event["shared_skipped_existing"] == []


def test_a_shared_path_that_is_tracked_content_is_not_clobbered(
    tmp_path: Path, run_cli: RunCli
) -> None:
    repo = _new_repo(tmp_path)
    _write(repo / "docs" / "guide.md", "committed guide\n")
    _write(repo / "orch.toml", '[workspace]\nshared = ["docs", ".scratch"]\n')
    commit_all(repo, "initial")
    _write(repo / "docs" / "guide.md", "main worktree edit\n")

    attempt = dispatch(run_cli, repo, "tracked")
    wt = Path(attempt["worktree_path"])
    assert not (wt / "docs").is_symlink()
    assert (wt / "docs" / "guide.md").read_text() == "committed guide\n"
    assert (repo / "docs" / "guide.md").read_text() == "main worktree edit\n"
    assert (wt / ".scratch").is_symlink()
    event = _set_up_event(run_cli, attempt, repo)
    assert event["shared"] == [".scratch"]
    assert event["shared_skipped_existing"] == ["docs"]

    # the skipped path is not hidden from git: new work in it stays visible, in both
    _write(wt / "docs" / "new.md", "new page\n")
    assert _status(wt) == "?? docs/new.md\n"
    _write(repo / "docs" / "other.md", "another page\n")
    assert "?? docs/other.md" in _status(repo)


def test_a_shared_directory_made_before_any_dispatch_is_no_dirt_for_strict(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """The README's ``shared = [".scratch"]``: a ``.scratch/`` the user made in the main
    worktree (before orch ever linked it) is kept out of the dirt check through
    ``info/exclude``, as ``.orch/`` is; dirt under a shared path that holds tracked
    content still counts."""
    repo = _new_repo(tmp_path)
    _write(repo / "README.md", "hello\n")
    _write(repo / "docs" / "guide.md", "tracked\n")
    _write(repo / "orch.toml", '[workspace]\nshared = [".scratch", "notes/tasks", "docs"]\n')
    commit_all(repo, "initial")
    _write(repo / ".scratch" / "state.json", "{}\n")
    _write(repo / "notes" / "tasks" / "todo.md", "- one\n")  # notes/ is untracked as a whole
    assert _status(repo) == "?? .scratch/state.json\n?? notes/tasks/todo.md\n"

    attempt = dispatch(run_cli, repo, "strict", "--strict")
    wt = Path(attempt["worktree_path"])
    assert (wt / ".scratch" / "state.json").read_text() == "{}\n"
    assert _status(repo) == "" and _status(wt) == ""
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert "/.scratch" in exclude and "/notes/tasks" in exclude and "/docs" not in exclude

    # new work under the tracked shared path is dirt: refused, and stays visible to git
    _write(repo / "docs" / "new.md", "new page\n")
    refused = run_cli("dispatch", "--prompt", "p", "dirty", "--strict", cwd=repo)
    line = assert_failed_cleanly(refused, 5)
    assert "docs/new.md (untracked)" in line
    assert _status(repo) == "?? docs/new.md\n"


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_a_shared_path_through_a_tracked_symlink_out_of_the_repository_is_refused(
    tmp_path: Path, run_cli: RunCli, isolated_env: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = _new_repo(tmp_path)
    _write(repo / "README.md", "hello\n")
    (repo / "ext").symlink_to(outside if link == "absolute" else Path("..") / "outside")
    _write(repo / "orch.toml", '[workspace]\nshared = [".scratch", "ext/cache/deep"]\n')
    commit_all(repo, "a tracked symlink out of the repository")
    assert git("ls-files", "-s", "ext", cwd=repo).startswith("120000 ")

    result = run_cli("dispatch", "--prompt", "p", "escape", cwd=repo)
    line = assert_failed_cleanly(result, 11)
    assert line == (
        "Error: [workspace] shared path 'ext/cache/deep' leads outside the repository through "
        f"a symbolic link ({repo / 'ext/cache/deep'} is {outside.resolve() / 'cache/deep'}): "
        "refused, nothing was created"
    )
    assert list(outside.iterdir()) == []  # nothing made outside
    assert not (repo / ".scratch").exists()  # nor anything else: refused before any entry
    # refused before the intent, like any other refusal: no row, branch, worktree, payload
    assert attempts_of(run_cli, repo) == []
    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    assert payload_files(isolated_env) == []


def test_a_shared_path_that_only_the_base_commit_links_out_is_refused_at_set_up(
    tmp_path: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    """The main worktree no longer has the link, the base commit does: set-up refuses it
    in the new worktree before it makes anything; the dispatch is rolled back."""
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = _new_repo(tmp_path)
    _write(repo / "orch.toml", '[workspace]\nshared = ["ext/cache"]\n')
    (repo / "ext").symlink_to(outside)
    base = commit_all(repo, "a tracked symlink out of the repository")
    git("rm", "-q", "ext", cwd=repo)
    commit_all(repo, "the link is gone on main")

    result = run_cli("dispatch", "--prompt", "p", "old-base", "--base-ref", base, cwd=repo)
    line = assert_failed_cleanly(result, 11)
    assert "shared path 'ext/cache' leads outside the repository through a symbolic link" in line
    assert list(outside.iterdir()) == []
    assert not (repo / "ext").exists()
    [failed] = attempts_of(run_cli, repo)
    assert failed["state"] == "failed" and failed["workspace_status"] == "failed"
    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    assert payload_files(isolated_env) == []


# -- the set-up hook -----------------------------------------------------------------------


def _hook_repo(tmp_path: Path, setup: str, extra: str = "") -> Path:
    repo = _new_repo(tmp_path)
    _write(repo / ".gitignore", ".env\nnode_modules/\n")
    _write(repo / ".worktreeinclude", ".env\nnode_modules/\n")
    _write(
        repo / "orch.toml",
        f"[workspace]\nsetup = '''{setup}'''\nshared = [\".scratch\"]\n{extra}",
    )
    commit_all(repo, "initial")
    _write(repo / ".env", "SECRET=1\n")
    _write(repo / "node_modules" / "pkg" / "index.js", "x\n")
    _write(repo / ".scratch" / "keep.md", "shared state\n")
    return repo


def test_setup_hook_runs_in_the_worktree_with_ports_and_logs(
    tmp_path: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    hook = (
        'echo "pwd=$(pwd -P)"; echo "worktree=$ORCH_WORKTREE"; '
        'echo "web=$ORCH_PORT_WEB api=$ORCH_PORT_API db=$ORCH_PORT_DB count=$ORCH_PORT_COUNT"; '
        'echo "env=$(cat .env)"; echo "shared=$(cat .scratch/keep.md)"'
    )
    repo = _hook_repo(tmp_path, hook)
    attempt = dispatch(run_cli, repo, "hook")
    wt = Path(attempt["worktree_path"])
    ports = json.loads(Path(attempt["payload_path"]).read_text())["ports"]

    log = (isolated_env / "logs" / f"{attempt['id']}.log").read_text()
    lines = log.splitlines()
    assert f"pwd={wt.resolve()}" in lines
    assert f"worktree={wt}" in lines
    assert f"web={ports['web']} api={ports['api']} db={ports['db']} count=100" in lines, log
    # the hook runs after the included files and shared links are in place
    assert "env=SECRET=1" in lines and "shared=shared state" in lines
    assert attempt["workspace_status"] == "ready"


def test_failing_setup_hook_fails_dispatch_and_leaves_nothing_behind(
    tmp_path: Path, run_cli: RunCli, run_orch: Any, isolated_env: Path
) -> None:
    repo = _hook_repo(tmp_path, "echo preparing; echo 'boom: missing dependency' >&2; exit 3")
    main_js = repo / "node_modules" / "pkg" / "index.js"

    proc = run_orch("dispatch", "--prompt", "p", "doomed", cwd=repo)
    assert proc.returncode == 7, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    assert "exited with 3" in errors[0]
    assert "preparing | boom: missing dependency" in errors[0]

    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    assert payload_files(isolated_env) == []
    (row,) = attempts_of(run_cli, repo)
    assert row["state"] == "failed" and row["workspace_status"] == "failed"
    assert "boom: missing dependency" in row["reason"]
    assert not Path(row["worktree_path"]).exists()
    # the port lease is released
    ports = run_cli("ports", row["id"])
    assert ports.exit_code == 8
    assert ports.stderr == f"Error: attempt {row['id']} holds no port bundle\n"
    kinds = [e["kind"] for e in show(run_cli, row["id"], repo)["events"]]
    assert "ports_leased" in kinds and "ports_released" in kinds
    # rolling back never reaches through a link or a hard link into the main worktree
    assert (repo / ".scratch" / "keep.md").read_text() == "shared state\n"
    assert main_js.read_text() == "x\n" and main_js.stat().st_nlink == 1
    assert (repo / ".env").read_text() == "SECRET=1\n"
    # the hook's output is kept for the operator
    log = (isolated_env / "logs" / f"{row['id']}.log").read_text()
    assert "boom: missing dependency" in log


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_setup_hook_over_its_timeout_is_killed_with_its_children(
    tmp_path: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    repo = _hook_repo(
        tmp_path,
        f"sleep 300 & echo $! > {pid_file}; echo waiting; wait",
        extra="setup_timeout = 1\n",
    )
    result = run_cli("dispatch", "--prompt", "p", "slow", cwd=repo)
    assert result.exit_code == 7, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: set-up hook ")
    assert "timed out after 1s" in line and "waiting" in line

    # the whole process group went, not just the shell
    child = int(pid_file.read_text())
    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
        psutil.Process(child).wait(timeout=30)
    if not _gone(child):
        os.kill(child, signal.SIGKILL)  # the sleep this test started; do not leave it
        pytest.fail(f"the hook's child {child} survived the timeout")

    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    (row,) = attempts_of(run_cli, repo)
    assert row["state"] == "failed" and "timed out" in row["reason"]
    assert run_cli("ports", row["id"]).exit_code == 8
    assert "set-up hook timed out" in (isolated_env / "logs" / f"{row['id']}.log").read_text()


def test_keep_failed_keeps_the_worktree_of_a_failed_hook_for_inspection(
    tmp_path: Path, run_cli: Any
) -> None:
    repo = tmp_path / "keep-repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "orch.toml").write_text(
        '[workspace]\nsetup = "echo broken >&2; exit 4"\nkeep_failed = true\n'
    )
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "init", cwd=repo)
    result = run_cli("dispatch", "--prompt", "p", "keep", cwd=repo)
    assert result.exit_code == 7
    assert "the worktree is kept for inspection" in result.stderr
    attempt = json.loads(run_cli("list", "--json").stdout)["attempts"][0]
    assert attempt["state"] == "failed" and attempt["workspace_status"] == "ready"
    assert Path(attempt["worktree_path"]).is_dir()
    assert "broken" in attempt["reason"]
    # an ordinary ended attempt from here on: doctor is content, cleanup removes it
    assert run_cli("doctor").exit_code == 0
    assert run_cli("cleanup", attempt["id"]).exit_code == 0
    assert not Path(attempt["worktree_path"]).exists()
