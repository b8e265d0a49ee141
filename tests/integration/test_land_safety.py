"""``orch land`` when others act at the same time, and when it is killed (issue 19, points
4, 5 and 8): a target that moves meanwhile is built on again, never overwritten; two
lands at once into one target lose nothing; kill -9 at every step leaves the target at
its old or its new commit, and ``orch doctor --fix`` completes the record.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from orch.attempts.land import LandOutcome
from tests.support.attempts import doctor, repaired, shown_attempt
from tests.support.cli import ORCH_BIN, RunCli, RunOrch
from tests.support.landing import attempt_with_commits, land, main_commits, outcomes, rev
from tests.support.processes import all_at_once, wait_for_git_under
from tests.support.repos import branch_tip, git


def task() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def landing_in_process(
    repo: Path, attempt_id: str, commits_meanwhile: int
) -> tuple[LandOutcome, list[str]]:
    """Land in this process while someone commits to main after each intent is recorded
    (``commits_meanwhile`` times at most); the outcome and those commits."""
    from orch.attempts.land import LandRequest
    from orch.attempts.land import land as run_land
    from orch.config import resolve
    from orch.git import Git
    from orch.store import open_store

    settings = resolve(os.environ)
    store = open_store(settings.database_url, settings.locks_dir)
    made: list[str] = []

    def someone_commits(step: str) -> None:
        if step == "intent-recorded" and len(made) < commits_meanwhile:
            made.append(main_commits(repo, {f"m{len(made)}.txt": "meanwhile\n"}, "meanwhile"))

    try:
        request = LandRequest((attempt_id,), check=False, keep=True)
        [outcome] = run_land(store, settings, Git(), request, "me", os.environ, someone_commits)
    finally:
        store.close()
    return outcome, made


def test_a_target_that_moved_meanwhile_is_built_on_again_not_overwritten(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    outcome, made = landing_in_process(repo, attempt["id"], 1)
    assert outcome.result == "landed", outcome
    assert rev(repo, "main^") == made[0]  # on top of the commit made meanwhile
    assert (repo / "m0.txt").is_file() and (repo / "new.txt").is_file()
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["landed_commit"] == rev(repo, "main") and after["landing_commit"] is None


def test_a_target_that_keeps_moving_wins_after_a_few_tries(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    from orch.attempts.land.one import MOVES

    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    outcome, made = landing_in_process(repo, attempt["id"], MOVES)
    error = outcome.error
    assert error is not None and error.exit_code == 12
    assert f"main moved {MOVES} times while attempt {attempt['id']} was landing" in error.message
    assert rev(repo, "main") == made[-1] and not (repo / "new.txt").exists()
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["landed_commit"] is None and after["landing_commit"] is None


def test_two_lands_at_once_into_one_target_lose_nothing(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    a = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo a > a.txt && git add a.txt && git commit -qm a"
    )
    b = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo b > b.txt && git add b.txt && git commit -qm b"
    )
    old = rev(repo, "main")
    all_at_once(
        [[ORCH_BIN, "land", a["id"], "--no-check"], [ORCH_BIN, "land", b["id"], "--no-check"]],
        cwd=repo,
    )
    landed = [shown_attempt(run_cli, repo, x["id"])["landed_commit"] for x in (a, b)]
    # one after the other: both on main, the second on top of the first
    assert set(git("rev-list", f"{old}..main", cwd=repo).split()) == set(landed)
    assert (repo / "a.txt").is_file() and (repo / "b.txt").is_file()
    assert git("status", "--porcelain", cwd=repo) == ""


# -- kill -9 at every step --------------------------------------------------------------------

LAND_STEPS = [
    "conflict-tested",
    "intent-recorded",
    "check-started",
    "target-moved",
    "recorded",
    "worktree-removed",
]
MOVED = {"target-moved", "recorded", "worktree-removed"}


@pytest.mark.parametrize("step", LAND_STEPS)
def test_land_killed_at_each_step_is_completed_by_doctor(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, step: str
) -> None:
    main_commits(repo, {"orch.toml": '[review]\ncheck = "test -f new.txt"\n'}, "the check")
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    tip = branch_tip(repo, attempt["branch_name"])

    proc = run_orch("land", attempt["id"], cwd=repo, env={"ORCH_CRASH_AT": step})
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)
    wait_for_git_under(repo.parent)
    now = rev(repo, "main")
    if step in MOVED:  # at the result, never elsewhere
        assert rev(repo, "main^") == old and git("show", "main:new.txt", cwd=repo) == "a\nb\nc\n"
    else:
        assert now == old
    assert branch_tip(repo, attempt["branch_name"]) == tip  # no commit lost

    repaired(run_cli, repo, isolated_env)
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["landing_commit"] is None
    assert (after["landed_commit"] == now) == (step in MOVED)
    assert rev(repo, "main") == now
    # the main worktree has main's files, whether or not the land happened
    assert git("status", "--porcelain", cwd=repo) == ""
    # and landing again finishes the job
    [done] = outcomes(land(run_cli, repo, attempt["id"], "--json"))
    assert done["result"] == ("already landed" if step in MOVED else "landed"), done
    assert (repo / "new.txt").read_text() == "a\nb\nc\n"
    # the attempt's worktree and branch are gone, its commits saved in main
    assert branch_tip(repo, attempt["branch_name"]) is None
    assert not Path(attempt["worktree_path"]).exists()
    repaired(run_cli, repo, isolated_env)


def test_doctor_leaves_a_land_in_progress_alone(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    """An intent whose target's lock a live land holds is that land's to finish; once the
    lock is free, the same intent was left by a land that died."""
    from orch.attempts.land.target import Target, landing_into
    from orch.config import resolve
    from orch.git import Git
    from orch.store import open_store

    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    settings = resolve(os.environ)
    store = open_store(settings.database_url, settings.locks_dir)
    try:
        intent = {"into": "main", "from": old, "tip": "0" * 40, "strategy": "squash"}
        store.begin_landing(attempt["id"], "1" * 40, intent, "a land")
    finally:
        store.close()
    with landing_into(Git().discover(repo), Target("main")):
        code, data = doctor(run_cli, repo, "--fix")
        assert (code, data["findings"]) == (0, [])
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0 and [f["kind"] for f in data["findings"]] == ["interrupted-land"]
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["landing_commit"] is None and after["landed_commit"] is None
    assert rev(repo, "main") == old
