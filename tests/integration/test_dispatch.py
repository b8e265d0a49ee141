"""``orch dispatch`` succeeding: every recorded field checked against git and the store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orch import naming
from orch.git import Git
from orch.system import inbox
from tests.support.attempts import attempts_of, dispatch, show
from tests.support.cli import RunCli, json_out
from tests.support.repos import commit_all, git, head, inside, orch_branches, worktrees

RECORDED = (
    "task_key",
    "attempt_number",
    "prompt",
    "repository",
    "base_ref",
    "base_commit",
    "branch_name",
    "worktree_path",
    "workspace_status",
    "state",
    "worker",
)


def assert_workspace_matches_git(attempt: dict[str, Any], repo: Path) -> None:
    """The attempt's branch and worktree are what git itself reports."""
    wt = Path(attempt["worktree_path"])
    assert head(wt) == attempt["base_commit"]
    assert (
        git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=repo).strip()
        == (attempt["base_commit"])
    )
    assert git("symbolic-ref", "HEAD", cwd=wt).strip() == f"refs/heads/{attempt['branch_name']}"
    listed = {Path(w["worktree"]): w for w in worktrees(repo)}
    assert listed[wt.resolve()]["branch"] == f"refs/heads/{attempt['branch_name']}"
    assert git("status", "--porcelain", "--untracked-files=all", cwd=wt) == ""
    # the bookkeeping is what stock git accepts
    git("fsck", "--no-progress", cwd=repo)
    assert git("worktree", "prune", "--dry-run", "--verbose", cwd=repo) == ""


def test_strict_dispatch_records_what_git_has(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    orch_home = isolated_env
    result = run_cli(
        "dispatch",
        "add-retries",
        "--strict",
        "--prompt",
        "Add retries",
        "--worker",
        "claude",
        "--json",
        cwd=repo,
    )
    data = json_out(result)
    assert result.stderr == ""
    assert data["warnings"] == []
    attempt = data["attempt"]

    assert attempt["task_key"] == "add-retries"
    assert attempt["attempt_number"] == 1
    assert attempt["state"] == "queued"
    assert attempt["workspace_status"] == "ready"
    assert attempt["repository"] == str(repo.resolve())
    assert attempt["base_ref"] == "HEAD"
    assert attempt["base_commit"] == head(repo)
    assert attempt["prompt"] == "Add retries"
    assert attempt["worker"] == "claude"
    assert attempt["reason"] is None
    assert attempt["branch_name"].startswith("orch/add-retries-")
    assert attempt["branch_name"].endswith(attempt["id"])
    assert inside(attempt["worktree_path"], orch_home / "worktrees")
    assert_workspace_matches_git(attempt, repo)
    assert orch_branches(repo) == [f"refs/heads/{attempt['branch_name']}"]

    detail = show(run_cli, attempt["id"], cwd=repo)
    assert detail["attempt"] == attempt
    assert [e["kind"] for e in detail["events"]] == ["created", "ports_leased", "provisioned"]
    created = detail["events"][0]["detail"]
    assert created["base_commit"] == attempt["base_commit"]
    assert created["workspace_status"] == "provisioning"
    assert attempts_of(run_cli, repo) == [attempt]


def test_payload_is_private_valid_and_equal_to_the_row(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "add-retries", "--prompt", "Add retries")
    payload_file = Path(attempt["payload_path"])
    assert payload_file == isolated_env / "inbox" / f"{attempt['id']}.json"
    assert stat.S_IMODE(payload_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(payload_file.parent.stat().st_mode) == 0o700

    payload = json.loads(payload_file.read_text(encoding="utf-8"))
    jsonschema.validate(payload, inbox.schema())
    assert payload["schema_version"] == 1
    assert payload["attempt_id"] == attempt["id"]
    for field in RECORDED:
        assert payload[field] == attempt[field], field
    assert payload["orch_home"] == str(isolated_env)
    assert payload["commands"]["show"] == ["orch", "show", attempt["id"], "--json"]


def test_show_accepts_id_prefix_and_payload_path(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, "add-retries")
    payload_file = Path(attempt["payload_path"])
    refs_and_cwds = [
        (attempt["id"], repo),
        (attempt["id"][:7], repo),
        (str(payload_file), repo),
        (payload_file.name, payload_file.parent),  # a relative payload path
    ]
    for ref, cwd in refs_and_cwds:
        assert show(run_cli, ref, cwd=cwd)["attempt"] == attempt, ref


def test_schema_is_shipped_in_the_package() -> None:
    schema = inbox.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"] == {"const": 1}


# -- explicit base refs --------------------------------------------------------------------


def make_dirty(repo: Path) -> None:
    """A modified tracked file, a staged change and an untracked file."""
    (repo / "src" / "d0" / "f0.txt").write_text("uncommitted edit\n")
    (repo / "src" / "d1" / "f1.txt").write_text("staged edit\n")
    git("add", "src/d1/f1.txt", cwd=repo)
    (repo / "notes.txt").write_text("untracked\n")


def assert_worktree_has_no_dirt(attempt: dict[str, Any]) -> None:
    wt = Path(attempt["worktree_path"])
    assert (wt / "src" / "d0" / "f0.txt").read_text() == "file 0\n"
    assert (wt / "src" / "d1" / "f1.txt").read_text() == "file 1\n"
    assert not (wt / "notes.txt").exists()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=wt) == ""


@pytest.mark.parametrize("base_ref", ["main", "HEAD~1", "tag", "annotated-tag", "sha"])
def test_explicit_base_on_a_dirty_repository(
    make_repo: Callable[..., Path], run_cli: RunCli, store_url: str, base_ref: str
) -> None:
    repo = make_repo("repo", commits=2)
    expected = {
        "main": head(repo),
        "HEAD~1": git("rev-parse", "HEAD~1", cwd=repo).strip(),
        "tag": head(repo),
        "annotated-tag": git("rev-parse", "HEAD~1", cwd=repo).strip(),
        "sha": git("rev-parse", "HEAD~1", cwd=repo).strip(),
    }[base_ref]
    git("tag", "tag", cwd=repo)
    git("tag", "-a", "-m", "v1", "annotated-tag", "HEAD~1", cwd=repo)
    named = expected if base_ref == "sha" else base_ref
    make_dirty(repo)

    result = run_cli(
        "dispatch", "--prompt", "p", "t", "--strict", "--base-ref", named, "--json", cwd=repo
    )
    attempt = json_out(result)["attempt"]
    assert result.stderr == ""
    assert attempt["base_ref"] == named
    assert attempt["base_commit"] == expected  # a tag is peeled to its commit
    assert_workspace_matches_git(attempt, repo)
    assert_worktree_has_no_dirt(attempt)
    has_history = expected == head(repo)
    assert (Path(attempt["worktree_path"]) / "history.txt").exists() == has_history


def test_non_strict_dispatch_on_a_dirty_repository_warns(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    make_dirty(repo)
    result = run_cli("dispatch", "--prompt", "p", "t", "--json", cwd=repo)
    data = json_out(result)
    attempt = data["attempt"]
    warning = result.stderr.splitlines()
    assert len(warning) == 1 and warning[0].startswith("Warning: "), result.stderr
    for words in (
        "3 uncommitted paths",
        "does not carry",
        "notes.txt (untracked)",
        "src/d0/f0.txt (modified)",
        "src/d1/f1.txt (staged)",
        head(repo)[:12],
    ):
        assert words in warning[0]
    assert data["warnings"] == [warning[0].removeprefix("Warning: ")]
    assert attempt["base_commit"] == head(repo)
    assert_worktree_has_no_dirt(attempt)
    # the dirt stays where it was
    assert (repo / "notes.txt").exists()
    assert git("diff", "--cached", "--name-only", cwd=repo) == "src/d1/f1.txt\n"


def test_ignored_files_are_not_dirt(repo: Path, run_cli: RunCli, store_url: str) -> None:
    (repo / "x.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("ignored\n")
    result = run_cli("dispatch", "--prompt", "p", "t", "--strict", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    result = run_cli("dispatch", "--prompt", "p", "t", cwd=repo)  # and no warning without --strict
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# -- prompts -------------------------------------------------------------------------------


def test_prompt_from_a_file(repo: Path, run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    prompt = "Add retries.\n\nUse exponential backoff \u2013 max 5 tries.\n"
    (tmp_path / "prompt.md").write_text(prompt, encoding="utf-8")
    attempt = dispatch(run_cli, repo, "t", "--prompt-file", str(tmp_path / "prompt.md"))
    assert attempt["prompt"] == prompt
    payload = json.loads(Path(attempt["payload_path"]).read_text(encoding="utf-8"))
    assert payload["prompt"] == prompt


def test_prompt_from_stdin(repo: Path, run_cli: RunCli, store_url: str) -> None:
    prompt = "Fix the login bug\nsecond line\n"
    result = run_cli("dispatch", "t", "--prompt-file", "-", "--json", cwd=repo, input=prompt)
    attempt = json_out(result)["attempt"]
    assert attempt["prompt"] == prompt
    assert show(run_cli, attempt["id"], cwd=repo)["attempt"]["prompt"] == prompt


# -- names ---------------------------------------------------------------------------------

TASK_KEYS = ["fix the login bug", "Fix lógin \u2013 ünïcode 修复", "feature/login", "FIX-LOGIN"]


@pytest.mark.parametrize("task_key", TASK_KEYS)
def test_task_keys_become_safe_distinct_names(
    repo: Path, run_cli: RunCli, store_url: str, isolated_env: Path, task_key: str
) -> None:
    first = dispatch(run_cli, repo, task_key)
    second = dispatch(run_cli, repo, task_key)  # same key, same second: still distinct
    assert (first["attempt_number"], second["attempt_number"]) == (1, 2)
    assert first["branch_name"] != second["branch_name"]
    assert first["worktree_path"] != second["worktree_path"]
    for attempt in (first, second):
        branch = attempt["branch_name"]
        assert attempt["task_key"] == task_key  # stored verbatim
        assert branch.isascii() and branch.startswith("orch/")
        assert git("check-ref-format", "--branch", branch, cwd=repo).strip() == branch
        assert inside(attempt["worktree_path"], isolated_env / "worktrees")
        assert Path(attempt["worktree_path"]).name.isascii()
        assert_workspace_matches_git(attempt, repo)
    assert len(orch_branches(repo)) == 2
    assert len(worktrees(repo)) == 3
    listed = json_out(run_cli("list", "--task", task_key, "--json", cwd=repo))["attempts"]
    mine = [a["id"] for a in listed if a["repository"] == str(repo.resolve())]
    assert sorted(mine) == sorted([first["id"], second["id"]])


# -- where dispatch runs from --------------------------------------------------------------


def test_dispatch_from_a_linked_worktree_uses_the_main_worktree(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    first = dispatch(run_cli, repo, "first")
    linked = Path(first["worktree_path"])
    # the linked worktree moves on: its HEAD is no longer the main worktree's
    (linked / "agent.txt").write_text("agent work\n")
    linked_head = commit_all(linked, "agent work")
    assert linked_head != head(repo)

    second = dispatch(run_cli, repo, "second", "--strict", cwd=linked / "src")
    assert second["repository"] == str(repo.resolve())
    assert second["base_ref"] == "HEAD"
    assert second["base_commit"] == head(repo)
    assert not (Path(second["worktree_path"]) / "agent.txt").exists()
    assert_workspace_matches_git(second, repo)


def test_dispatch_with_repo_option_from_elsewhere(
    repo: Path, run_cli: RunCli, store_url: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    attempt = dispatch(run_cli, repo, "t", "--repo", str(repo / "src"), cwd=elsewhere)
    assert attempt["repository"] == str(repo.resolve())
    assert_workspace_matches_git(attempt, repo)


def test_installed_entry_point_dispatches(
    repo: Path, run_orch: Callable[..., Any], store_url: str
) -> None:
    proc = run_orch("dispatch", "add-retries", "--strict", "--prompt", "p", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    attempt_id = proc.stdout.strip()
    shown = run_orch("show", attempt_id, "--json", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    attempt = json.loads(shown.stdout)["attempt"]
    assert attempt["id"] == attempt_id
    assert attempt["workspace_status"] == "ready"
    assert_workspace_matches_git(attempt, repo)


def test_a_dispatch_whose_random_id_is_taken_draws_another(
    repo: Path, run_cli: RunCli, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are 32 random bits; when one is already in the store (forced here: the first
    draw repeats the first attempt's id) the dispatch succeeds under a fresh id, and
    its branch is named after that id. Its worktree, made while the store opened (a
    cold dispatch checks out ahead), stays where it was made: named after the task and
    the first draw, which is no other attempt's path."""
    first = dispatch(run_cli, repo, "first")
    draws = iter([first["id"]])
    random_id = naming.new_attempt_id
    monkeypatch.setattr(naming, "new_attempt_id", lambda: next(draws, None) or random_id())
    second = dispatch(run_cli, repo, "second")
    assert second["id"] != first["id"]
    assert second["branch_name"].endswith(second["id"])
    assert Path(second["worktree_path"]).name == f"second-{first['id']}"
    assert Path(second["worktree_path"]).parent == Path(first["worktree_path"]).parent
    assert head(Path(second["worktree_path"])) == second["base_commit"]
    assert {a["id"] for a in attempts_of(run_cli, repo)} == {first["id"], second["id"]}
    assert sorted(orch_branches(repo)) == [
        f"refs/heads/{a['branch_name']}" for a in (first, second)
    ]


def test_background_dirt_checks_yield_the_cpu(repo: Path) -> None:
    """The dirt checks a dispatch starts ahead of their use (the main worktree's, a pool
    member's) run at nice 19 so that they take only CPU time the dispatch does not want;
    a check that is waited for at once keeps the caller's priority."""
    hook = repo.parent / "slow-fsmonitor"
    hook.write_text("#!/bin/sh\nsleep 5\n")
    hook.chmod(0o755)
    git("config", "core.fsmonitor", str(hook), cwd=repo)  # holds `git status` for a while
    own = os.getpriority(os.PRIO_PROCESS, 0)
    background = Git().start_dirty_check(repo, yield_cpu=True)
    foreground = Git().start_dirty_check(repo)
    try:
        assert os.getpriority(os.PRIO_PROCESS, background._proc.pid) == 19
        assert os.getpriority(os.PRIO_PROCESS, foreground._proc.pid) == own
    finally:
        background.cancel()
        foreground.cancel()


def test_the_dirt_warning_through_the_command_is_about_the_right_worktree(
    repo: Path,
    make_repo: Callable[..., Path],
    run_orch: Callable[..., subprocess.CompletedProcess[str]],
    store_url: str,
) -> None:
    """`orch dispatch` starts the main worktree's dirt check before parsing its arguments
    (orch.cli.startup); wherever it is started from, the warning is the same as in-process
    and about the main worktree of the repository dispatched from."""
    make_dirty(repo)
    expected = (
        "3 uncommitted paths that the attempt does not carry (src/d0/f0.txt (modified), "
        "src/d1/f1.txt (staged), notes.txt (untracked))"
    )

    def warning(*args: str, cwd: Path) -> str:
        proc = run_orch("dispatch", "--prompt", "p", "t", *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    assert expected in warning(cwd=repo)
    assert expected in warning(cwd=repo / "src" / "d0")  # paths stay root-relative
    clean = make_repo("clean")
    assert expected in warning("--repo", str(repo), cwd=clean)
    assert warning("--repo", str(clean), cwd=repo) == ""
    assert warning("--strict", "--repo", str(clean), cwd=repo) == ""
    # from a clean linked worktree the main worktree's dirt is what matters, and the
    # linked worktree's own dirt is not the main worktree's
    linked = repo.parent / "linked"
    git("worktree", "add", "-q", "--detach", str(linked), cwd=repo)
    assert expected in warning(cwd=linked)
    git("stash", "-u", "-q", cwd=repo)
    (linked / "only-here.txt").write_text("x")
    assert warning(cwd=linked) == ""
