"""Task phases: later phases reuse the task's worktree; provisioning skipped in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.attempts import dispatch
from tests.support.repos import git


def _end(run_orch: Any, attempt_id: str, script: str, cwd: Path) -> None:
    done = run_orch("work", "--attempt", attempt_id, "--", "sh", "-c", script, cwd=cwd)
    assert done.returncode == 0, done.stderr


def test_a_later_phase_reuses_the_worktree_and_branch(
    repo: Path, run_cli: Any, run_orch: Any
) -> None:
    plan = dispatch(run_cli, repo, "feat", "--phase", "planning")
    _end(
        run_orch, plan["id"], "echo plan > PLAN.md && git add PLAN.md && git commit -qm plan", repo
    )
    head = git("rev-parse", f"refs/heads/{plan['branch_name']}", cwd=repo).strip()
    impl = dispatch(run_cli, repo, "feat", "--phase", "implementation", "--reuse-workspace")
    assert impl["workspace_status"] == "reused"
    assert (impl["worktree_path"], impl["branch_name"]) == (
        plan["worktree_path"],
        plan["branch_name"],
    )
    assert impl["base_commit"] == head  # the phase starts from what the last one committed
    assert impl["attempt_number"] == 2 and impl["phase"] == "implementation"
    payload = json.loads(Path(impl["payload_path"]).read_text())
    assert payload["workspace_status"] == "reused" and payload["phase"] == "implementation"
    # one worktree, still registered once
    listed = git("worktree", "list", "--porcelain", cwd=repo)
    assert listed.count(plan["worktree_path"]) == 1


def test_concurrent_phases_on_one_worktree_are_refused(repo: Path, run_cli: Any) -> None:
    first = dispatch(run_cli, repo, "feat", "--phase", "planning")
    busy = run_cli(
        "dispatch", "--prompt", "p", "feat", "--phase", "review", "--reuse-workspace", cwd=repo
    )
    assert busy.exit_code == 12
    assert f"attempt {first['id']} (queued) still works in" in busy.stderr


def test_release_makes_the_next_phase_start_fresh(repo: Path, run_cli: Any) -> None:
    first = dispatch(run_cli, repo, "feat", "--phase", "planning")
    assert run_cli("cancel", first["id"]).exit_code == 0
    released = run_cli("release", "feat")
    assert released.stdout.strip() == "released 1 workspace mapping(s) of task 'feat'"
    fresh = dispatch(run_cli, repo, "feat", "--phase", "implementation", "--reuse-workspace")
    assert fresh["workspace_status"] == "ready"
    assert fresh["worktree_path"] != first["worktree_path"]


def test_inside_a_linked_worktree_provisioning_is_skipped(
    repo: Path, run_cli: Any, run_orch: Any
) -> None:
    outer = dispatch(run_cli, repo, "outer")
    assert run_cli("cancel", outer["id"]).exit_code == 0
    inner = dispatch(run_cli, Path(outer["worktree_path"]), "inner", "--phase", "review")
    assert inner["workspace_status"] == "skipped-in-worktree"
    assert inner["worktree_path"] == outer["worktree_path"]
    assert inner["branch_name"] == outer["branch_name"]
    assert inner["repository"] == str(repo)
    # no new branch or worktree was made
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 2


def test_outside_git_provisioning_is_skipped(tmp_path: Path, run_cli: Any) -> None:
    place = tmp_path / "notes"
    place.mkdir()
    result = run_cli(
        "dispatch", "--prompt", "p", "notes", "--phase", "discovery", "--json", cwd=place
    )
    assert result.exit_code == 0, result.output
    attempt = json.loads(result.stdout)["attempt"]
    assert attempt["workspace_status"] == "skipped-not-git"
    assert attempt["worktree_path"] == str(place)
    assert attempt["base_commit"] is None and attempt["branch_name"] is None
    # without a phase, outside git is still an error
    plain = run_cli("dispatch", "--prompt", "p", "notes", cwd=place)
    assert plain.exit_code == 3


def test_reuse_and_base_ref_do_not_mix(repo: Path, run_cli: Any) -> None:
    result = run_cli(
        "dispatch", "--prompt", "p", "feat", "--reuse-workspace", "--base-ref", "main", cwd=repo
    )
    assert result.exit_code == 2
    assert "drop --base-ref" in result.stderr


def test_doctor_is_content_with_attempts_outside_git(
    tmp_path: Path, run_cli: Any, repo: Path
) -> None:
    place = tmp_path / "plain-dir"
    place.mkdir()
    assert (
        run_cli("dispatch", "--prompt", "p", "notes", "--phase", "discovery", cwd=place).exit_code
        == 0
    )
    dispatch(run_cli, repo, "feat", "--phase", "planning")
    result = run_cli("doctor")
    assert result.exit_code == 0, result.output
