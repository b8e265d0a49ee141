"""``orch dispatch`` failing: one ``Error:`` line, the documented exit code, nothing left.

Failures before the intent is recorded leave no branch, worktree, row or payload.
Failures during provisioning (forced here with real obstacles in the repository or the
orch home, never with mocks) roll back the branch and worktree and leave the attempt
``failed`` with the reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orch.errors import GitError
from orch.git import Git
from tests.support.attempts import assert_nothing_left_behind, attempts_of, payload_files, show
from tests.support.cli import ORCH_BIN, RunCli, assert_failed_cleanly
from tests.support.repos import git, head, orch_branches, worktrees

RunOrch = Callable[..., Any]

# -- strict mode and dirt ------------------------------------------------------------------

DIRT_KINDS = ["modified", "deleted", "staged", "staged-new", "staged-and-modified", "untracked"]


def make_dirt(repo: Path, kind: str) -> str:
    """Leave one kind of uncommitted change; return how a refusal names it."""
    tracked = "src/d0/f0.txt"
    if kind == "untracked":
        (repo / "notes.txt").write_text("new\n")
        return "notes.txt (untracked)"
    if kind == "deleted":
        (repo / tracked).unlink()
        return f"{tracked} (deleted)"
    if kind == "staged-new":
        (repo / "new.txt").write_text("new\n")
        git("add", "new.txt", cwd=repo)
        return "new.txt (staged)"
    (repo / tracked).write_text("edited\n")
    if kind == "modified":
        return f"{tracked} (modified)"
    git("add", tracked, cwd=repo)
    if kind == "staged":
        return f"{tracked} (staged)"
    (repo / tracked).write_text("edited again\n")
    return f"{tracked} (staged and modified)"


@pytest.mark.parametrize("kind", DIRT_KINDS)
def test_strict_refuses_each_kind_of_dirt(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, kind: str
) -> None:
    named = make_dirt(repo, kind)
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", "--strict", cwd=repo), 5)
    assert f"(1 uncommitted path: {named})" in line
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_strict_refusal_message(repo: Path, run_cli: RunCli, store_url: str) -> None:
    (repo / "notes.txt").write_text("x\n")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", "--strict", cwd=repo), 5)
    assert line == (
        "Error: refusing to dispatch from a dirty repository (1 uncommitted path: "
        "notes.txt (untracked)); commit or stash them, or name the base explicitly with "
        "--base-ref"
    )


def test_strict_refusal_names_a_few_paths_and_counts_the_rest(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    for i in range(8):
        (repo / f"u{i}.txt").write_text("x\n")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", "--strict", cwd=repo), 5)
    assert "(8 uncommitted paths: " in line
    shown = ", ".join(f"u{i}.txt (untracked)" for i in range(5))
    assert f"{shown} and 3 more)" in line
    assert "u5.txt" not in line and "u7.txt" not in line
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_strict_refusal_through_the_entry_point(
    repo: Path, run_orch: RunOrch, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    (repo / "x.log").write_text("ignored\n")  # ignored: not named
    (repo / "src/d0/f0.txt").write_text("x\n")
    line = assert_failed_cleanly(
        run_orch("dispatch", "--prompt", "p", "t", "--strict", cwd=repo), 5
    )
    assert "(1 uncommitted path: src/d0/f0.txt (modified))" in line
    assert_nothing_left_behind(run_cli, repo, isolated_env)


# -- unusable repositories and base refs ---------------------------------------------------


@pytest.fixture
def no_repo_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plain directory; git must not find a repository above the test's directory."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    return plain


def test_not_a_git_repository(
    no_repo_above: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=no_repo_above), 3)
    assert line == f"Error: not a git repository: {no_repo_above}"
    assert payload_files(isolated_env) == []
    assert attempts_of(run_cli, no_repo_above) == []


def test_repo_option_naming_a_missing_directory(
    tmp_path: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    missing = tmp_path / "missing"
    line = assert_failed_cleanly(
        run_cli("dispatch", "--prompt", "p", "t", "--repo", str(missing), cwd=tmp_path), 3
    )
    assert line == f"Error: not a git repository: {missing} does not exist"
    assert payload_files(isolated_env) == []


def test_a_current_directory_that_was_removed_is_named(
    repo: Path, tmp_path: Path, store_url: str, isolated_env: Path
) -> None:
    """The shell still stands in a directory removed underneath it (a worktree cleaned up
    from another terminal): one line naming that, never a traceback or 'git is missing'."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = f'cd "{gone}" && rmdir "{gone}" && exec "{ORCH_BIN}" dispatch t'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    line = assert_failed_cleanly(result, 3)
    assert line == (
        "Error: the current directory no longer exists (it was removed): "
        "cd into the repository, or name it with --repo"
    )
    assert payload_files(isolated_env) == []


def test_git_in_a_working_directory_that_is_gone_names_the_directory(tmp_path: Path) -> None:
    """A missing working directory raises the FileNotFoundError a missing git does."""
    gone = tmp_path / "worktree"
    with pytest.raises(GitError) as caught:
        Git().run(["status"], cwd=gone)
    assert caught.value.message == f"cannot run git in {gone}: the directory no longer exists"
    (tmp_path / "file").write_text("x")
    with pytest.raises(GitError) as caught:
        Git().output_bytes(["status"], cwd=tmp_path / "file")
    assert caught.value.message == (
        f"cannot run git in {tmp_path / 'file'}: the directory is not a directory"
    )


def test_bare_repository(
    tmp_path: Path, run_cli: RunCli, store_url: str, isolated_env: Path, repo: Path
) -> None:
    bare = tmp_path / "bare.git"
    git("clone", "-q", "--bare", str(repo), str(bare), cwd=tmp_path)
    refs_before = git("for-each-ref", cwd=bare)
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=bare), 3)
    assert line == (
        f"Error: {bare} is a bare repository: orch dispatches from a repository with a main "
        "worktree"
    )
    assert git("for-each-ref", cwd=bare) == refs_before
    assert git("worktree", "list", "--porcelain", cwd=bare) == f"worktree {bare}\nbare\n\n"
    assert payload_files(isolated_env) == []
    assert attempts_of(run_cli, bare) == []


def test_empty_repository(
    tmp_path: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    empty = tmp_path / "empty"
    git("init", "-q", "-b", "main", str(empty), cwd=tmp_path)
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=empty), 3)
    assert line == f"Error: the repository {empty} has no commits yet: commit something first"
    assert git("for-each-ref", cwd=empty) == ""
    assert len(worktrees(empty)) == 1
    assert payload_files(isolated_env) == []
    assert attempts_of(run_cli, empty) == []


@pytest.mark.parametrize(
    ("base_ref", "message"),
    [
        ("no-such-branch", "unknown base ref 'no-such-branch' in {repo}"),
        ("HEAD~5", "unknown base ref 'HEAD~5' in {repo}"),
        ("0" * 40, "unknown base ref '{zero}' in {repo}"),
        ("--all", "unknown base ref '--all' in {repo}"),
        ("HEAD^{tree}", "base ref 'HEAD^{{tree}}' names a tree, not a commit"),
        ("blob", "base ref '{blob}' names a blob, not a commit"),
    ],
)
def test_unusable_base_ref(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, base_ref: str, message: str
) -> None:
    blob = git("rev-parse", "HEAD:src/d0/f0.txt", cwd=repo).strip()
    named = blob if base_ref == "blob" else base_ref
    line = assert_failed_cleanly(
        run_cli("dispatch", "--prompt", "p", "t", "--base-ref", named, cwd=repo), 4
    )
    assert line == "Error: " + message.format(repo=repo, blob=blob, zero="0" * 40)
    assert_nothing_left_behind(run_cli, repo, isolated_env)


# -- task keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_key", "message"),
    [
        ("../../x", "invalid task key '../../x': it must not be or contain a path"),
        ("a/../../x", "invalid task key 'a/../../x': it must not be or contain a path"),
        ("/etc/passwd", "invalid task key '/etc/passwd': it must not be or contain a path"),
        ("-rf", "invalid task key '-rf': it must not start with '-'"),
        ("", "invalid task key: it is empty"),
        ("   ", "invalid task key: it is empty"),
        (" padded", "invalid task key ' padded': leading or trailing whitespace"),
        ("a\nb", "invalid task key 'a\\nb': control or invisible characters"),
        ("x" * 300, "invalid task key: 300 characters, at most 128 are allowed"),
    ],
)
def test_invalid_task_key(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, task_key: str, message: str
) -> None:
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "--", task_key, cwd=repo), 2)
    assert line == f"Error: {message}"
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_task_key_of_128_characters_is_accepted(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    result = run_cli("dispatch", "--prompt", "p", "x" * 128, cwd=repo)
    assert result.exit_code == 0, result.output


def test_prompt_and_prompt_file_together(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    (tmp_path / "p.md").write_text("p\n")
    result = run_cli(
        "dispatch", "t", "--prompt", "p", "--prompt-file", str(tmp_path / "p.md"), cwd=repo
    )
    line = assert_failed_cleanly(result, 2)
    assert line == "Error: give either --prompt or --prompt-file, not both"
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_missing_prompt_file(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.md"
    line = assert_failed_cleanly(
        run_cli("dispatch", "t", "--prompt-file", str(missing), cwd=repo), 2
    )
    assert line.startswith(f"Error: cannot read the prompt file {missing}: ")
    assert_nothing_left_behind(run_cli, repo, isolated_env)


# -- unusable worktree root and store ------------------------------------------------------


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Path:
    """A directory orch cannot create worktrees in, also when the tests run as root."""
    if os.geteuid() == 0:
        (tmp_path / "afile").write_text("a regular file\n")
        return tmp_path / "afile" / "wt"  # cannot be created, not even by root
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


def test_worktree_root_not_writable(
    repo: Path,
    run_cli: RunCli,
    store_url: str,
    isolated_env: Path,
    unwritable_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCH_WORKTREE_ROOT", str(unwritable_dir))
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=repo), 7)
    assert f"worktree root {unwritable_dir}" in line
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_worktree_root_not_writable_through_the_entry_point(
    repo: Path,
    run_orch: RunOrch,
    run_cli: RunCli,
    store_url: str,
    isolated_env: Path,
    unwritable_dir: Path,
) -> None:
    proc = run_orch(
        "dispatch", "--prompt", "p", "t", cwd=repo, env={"ORCH_WORKTREE_ROOT": str(unwritable_dir)}
    )
    assert f"worktree root {unwritable_dir}" in assert_failed_cleanly(proc, 7)
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_store_under_a_regular_file(
    repo: Path, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("a regular file\n")
    monkeypatch.setenv("ORCH_DATABASE_URL", f"sqlite:///{tmp_path / 'afile' / 'x.db'}")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=repo), 6)
    assert line.startswith(f"Error: cannot open the attempt store {tmp_path / 'afile' / 'x.db'}")
    assert_nothing_left_behind(None, repo, tmp_path / "orch-home")


def test_orch_home_under_a_regular_file(
    repo: Path, run_orch: RunOrch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("a regular file\n")
    home = tmp_path / "afile" / "home"
    monkeypatch.setenv("ORCH_HOME", str(home))
    # the worktree root is usable, so it is the store that fails
    monkeypatch.setenv("ORCH_WORKTREE_ROOT", str(tmp_path / "worktrees"))
    line = assert_failed_cleanly(run_orch("dispatch", "--prompt", "p", "t", cwd=repo), 6)
    assert line == (
        f"Error: cannot open the attempt store {home / 'orch.db'}: "
        f"{tmp_path / 'afile'} is not a directory"
    )
    assert_nothing_left_behind(None, repo, home)
    assert list((tmp_path / "worktrees").rglob("*")) == []
    # list and show fail the same way
    assert_failed_cleanly(run_orch("list", cwd=repo), 6)
    assert_failed_cleanly(run_orch("show", "deadbeef", cwd=repo), 6)


@pytest.mark.postgres
def test_postgresql_database_that_does_not_exist(
    repo: Path, run_orch: RunOrch, pg_database_url: str, tmp_path: Path
) -> None:
    url = pg_database_url.rsplit("/", 1)[0] + "/orch_no_such_database"
    proc = run_orch("dispatch", "--prompt", "p", "t", cwd=repo, env={"ORCH_DATABASE_URL": url})
    line = assert_failed_cleanly(proc, 6)
    assert 'database "orch_no_such_database" does not exist' in line
    assert_nothing_left_behind(None, repo, tmp_path / "orch-home")


def test_bad_input_through_the_entry_point(
    repo: Path,
    run_orch: RunOrch,
    run_cli: RunCli,
    store_url: str,
    isolated_env: Path,
    no_repo_above: Path,
) -> None:
    """A representative few through the real entry point: exact line and exit code."""
    cases = [
        (
            ("dispatch", "--prompt", "p", "--", "-rf"),
            repo,
            2,
            "Error: invalid task key '-rf': it must not start with '-'",
        ),
        (
            ("dispatch", "--prompt", "p", "t"),
            no_repo_above,
            3,
            f"Error: not a git repository: {no_repo_above}",
        ),
        (
            ("dispatch", "--prompt", "p", "t", "--base-ref", "nope"),
            repo,
            4,
            f"Error: unknown base ref 'nope' in {repo}",
        ),
    ]
    for args, cwd, code, expected in cases:
        assert assert_failed_cleanly(run_orch(*args, cwd=cwd), code) == expected, args
    assert_nothing_left_behind(run_cli, repo, isolated_env)


# -- failures during provisioning roll back ------------------------------------------------


def assert_rolled_back(
    run_cli: RunCli, repo: Path, orch_home: Path, reason_part: str
) -> dict[str, Any]:
    """No branch, worktree or payload; one attempt, ``failed`` with the reason."""
    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    assert not any(p.suffix == ".json" for p in payload_files(orch_home))
    [attempt] = attempts_of(run_cli, repo)
    assert attempt["state"] == "failed"
    assert attempt["workspace_status"] == "failed"
    assert reason_part in attempt["reason"]
    assert not Path(attempt["worktree_path"]).exists()
    events = show(run_cli, attempt["id"], cwd=repo)["events"]
    assert [e["kind"] for e in events] == [
        "created",
        "ports_leased",
        "ports_released",
        "provisioning_failed",
    ]
    assert git("worktree", "prune", "--dry-run", "--verbose", cwd=repo) == ""
    git("fsck", "--no-progress", cwd=repo)
    return attempt


def test_failing_post_checkout_hook_rolls_back(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    """The worktree is fully checked out when the hook fails: all of it is undone."""
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=repo), 7)
    assert line == "Error: git hook run failed: hook says no"
    assert_rolled_back(run_cli, repo, isolated_env, "hook says no")
    # the failure left nothing that stops the next dispatch
    hook.unlink()
    assert run_cli("dispatch", "--prompt", "p", "t", cwd=repo).exit_code == 0


def test_git_worktree_add_failing_rolls_back(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    """git cannot write its worktree bookkeeping: the branch already claimed is deleted."""
    (repo / ".git" / "worktrees").write_text("not a directory\n")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=repo), 7)
    assert line.startswith("Error: git worktree add failed: ")
    assert_rolled_back(run_cli, repo, isolated_env, "git worktree add failed")


def test_unusable_worktree_lock_rolls_back(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    """orch's own lock directory in the repository is a file: an OSError mid-provisioning."""
    (repo / ".git" / "orch").write_text("not a directory\n")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "t", cwd=repo), 7)
    assert "provisioning attempt" in line and "failed" in line
    assert_rolled_back(run_cli, repo, isolated_env, str(repo / ".git" / "orch"))


def test_payload_that_cannot_be_written_rolls_back(
    repo: Path, run_orch: RunOrch, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    """The inbox is a regular file: the worktree was populated and must be removed again."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "inbox").write_text("not a directory\n")
    line = assert_failed_cleanly(run_orch("dispatch", "--prompt", "p", "t", cwd=repo), 7)
    assert line.startswith(f"Error: cannot write the payload {isolated_env / 'inbox'}")
    attempt = assert_rolled_back(run_cli, repo, isolated_env, "cannot write the payload")
    assert attempt["payload_path"] is None
    assert head(repo) == attempt["base_commit"]
