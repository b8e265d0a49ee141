"""``orch restore ATTEMPT [PATH]`` (issue 17.13): the archive's restore recipe, done and
checked by orch, from any directory, never overwriting anything.

Real repositories, real dispatches, real ``orch cleanup --force`` archives and git itself
to read what came back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.attempts import dispatch, show
from tests.support.cli import RunCli, assert_failed_cleanly
from tests.support.repos import git, orch_branches, worktrees


def _archived(run_cli: RunCli, repo: Path, task: str = "keep") -> dict[str, Any]:
    """An attempt with a commit, a changed tracked file and untracked files, archived."""
    attempt = dispatch(run_cli, repo, task)
    wt = Path(attempt["worktree_path"])
    (wt / "new.txt").write_text("committed in the attempt\n")
    git("add", "new.txt", cwd=wt)
    git("commit", "-q", "-m", "attempt work", cwd=wt)
    tracked = sorted(p for p in git("ls-files", cwd=wt).split() if p != "new.txt")[0]
    (wt / tracked).write_text("changed, not committed\n")
    (wt / "notes with space.md").write_text("untracked\n")
    (wt / "sub" / "deeper").mkdir(parents=True)
    (wt / "sub" / "deeper" / "data.bin").write_bytes(b"\x00\x01binary")
    attempt["_tip"] = git("rev-parse", "HEAD", cwd=wt).strip()
    attempt["_tracked"] = tracked
    cleaned = run_cli("cleanup", attempt["id"], "--force", cwd=repo)
    assert cleaned.exit_code == 0, cleaned.output
    assert not wt.exists() and attempt["branch_name"] not in orch_branches(repo)
    archived = show(run_cli, attempt["id"], repo)["attempt"]
    assert archived["workspace_status"] == "archived" and archived["archive_path"]
    return attempt


def test_restore_brings_back_commits_changes_and_untracked_files(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    attempt = _archived(run_cli, repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # from a directory outside the repository, with a relative PATH
    result = run_cli("restore", attempt["id"][:5], "restored", cwd=elsewhere)
    assert result.exit_code == 0, result.output
    target = elsewhere / "restored"
    assert result.stdout == (
        f"restored commits, uncommitted changes, 2 untracked file(s) of attempt "
        f"{attempt['id']} into {target} (on branch {attempt['branch_name']})\n"
    )
    assert git("rev-parse", "HEAD", cwd=target).strip() == attempt["_tip"]
    assert git("branch", "--show-current", cwd=target).strip() == attempt["branch_name"]
    assert git("rev-parse", attempt["branch_name"], cwd=repo).strip() == attempt["_tip"]
    assert (target / "new.txt").read_text() == "committed in the attempt\n"
    assert (target / attempt["_tracked"]).read_text() == "changed, not committed\n"
    assert (target / "notes with space.md").read_text() == "untracked\n"
    assert (target / "sub" / "deeper" / "data.bin").read_bytes() == b"\x00\x01binary"
    status = git("status", "--porcelain", "--untracked-files=all", cwd=target).splitlines()
    assert sorted(status) == sorted(
        [f" M {attempt['_tracked']}", '?? "notes with space.md"', "?? sub/deeper/data.bin"]
    )
    assert str(target) in [w["worktree"] for w in worktrees(repo)]
    [event] = [e for e in show(run_cli, attempt["id"], repo)["events"] if e["kind"] == "restored"]
    assert event["detail"]["worktree"] == str(target)
    assert event["detail"]["head"] == attempt["_tip"]
    # the attempt itself is left as it was: the restored worktree is the user's
    assert show(run_cli, attempt["id"], repo)["attempt"]["workspace_status"] == "archived"


def test_restore_defaults_to_the_old_worktree_path(repo: Path, run_cli: RunCli) -> None:
    attempt = _archived(run_cli, repo)
    result = run_cli("restore", attempt["id"], cwd=repo)
    assert result.exit_code == 0, result.output
    assert (Path(attempt["worktree_path"]) / "new.txt").exists()


def test_restore_never_overwrites_a_path(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    attempt = _archived(run_cli, repo)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("mine\n")
    line = assert_failed_cleanly(run_cli("restore", attempt["id"], str(taken), cwd=repo), 7)
    assert line == f"Error: {taken} exists: orch restore never overwrites; name a new PATH"
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]
    assert attempt["branch_name"] not in orch_branches(repo)  # nothing was made


def test_restore_never_moves_a_branch(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    attempt = _archived(run_cli, repo)
    base = attempt["base_commit"]
    git("branch", attempt["branch_name"], base, cwd=repo)  # someone made it again, elsewhere
    line = assert_failed_cleanly(
        run_cli("restore", attempt["id"], str(tmp_path / "r"), cwd=repo), 7
    )
    assert line == (
        f"Error: branch {attempt['branch_name']} is at {base[:12]} but the archive saved it "
        f"at {attempt['_tip'][:12]}: orch restore never moves a branch; delete or rename it "
        "first"
    )
    assert git("rev-parse", attempt["branch_name"], cwd=repo).strip() == base
    assert not (tmp_path / "r").exists()


def test_a_failed_step_removes_what_the_restore_made(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    attempt = _archived(run_cli, repo)
    archive = Path(show(run_cli, attempt["id"], repo)["attempt"]["archive_path"])
    (archive / "uncommitted.patch").write_text("not a patch at all\n")
    result = run_cli("restore", attempt["id"], str(tmp_path / "r"), cwd=repo)
    line = assert_failed_cleanly(result, 7)
    assert line.startswith("Error: git apply ") and "No valid patches in input" in line, line
    assert not (tmp_path / "r").exists()
    assert str(tmp_path / "r") not in [w["worktree"] for w in worktrees(repo)]
    assert attempt["branch_name"] not in orch_branches(repo)


@pytest.mark.parametrize("ref", ["ffffffff", "live"])
def test_restore_without_an_archive_is_exit_8(repo: Path, run_cli: RunCli, ref: str) -> None:
    if ref == "live":
        ref = dispatch(run_cli, repo, "live")["id"]
        expected = f"Error: attempt {ref} has no saved work in the archive (workspace_status ready)"
    else:
        expected = "Error: no attempt 'ffffffff' in the store"
    assert assert_failed_cleanly(run_cli("restore", ref, cwd=repo), 8) == expected
    assert os.path.isdir(repo)
