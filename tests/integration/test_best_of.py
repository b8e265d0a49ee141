"""Best-of-N dispatch (``orch dispatch TASK --attempts N``, issue 18.3) and the empty
prompt rule (issue 17.12), on real repositories and a real store.

N attempts of one task come from one resolved base commit, each with its own branch,
worktree, port bundle and payload; pool members are handed out first (one attempt each),
the rest are fresh worktrees; ``--worker`` given several times spreads the attempts in
turn; an attempt that fails to provision is ``failed`` and the others stand (exit 14).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orch.models import TaskState
from orch.serve.loop import Loop
from orch.store import open_store
from tests.support.attempts import (
    assert_consistent,
    assert_nothing_left_behind,
    attempts_of,
    doctor,
    payload_files,
    show,
)
from tests.support.cli import ORCH_BIN, RunCli, assert_failed_cleanly, error_line, json_out
from tests.support.processes import wait_for_git_under
from tests.support.repos import commit_all, git, head, orch_branches, worktrees
from tests.support.store import settings


@pytest.fixture(autouse=True)
def _no_background_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    # a pool refill started after the dispatch would race the assertions on the pool
    monkeypatch.setenv("ORCH_POOL_REFILL", "0")


def best_of(run_cli: RunCli, repo: Path, *args: str) -> dict[str, Any]:
    return json_out(run_cli("dispatch", "t", "--prompt", "p", "--json", *args, cwd=repo))


def with_setup(repo: Path, hook: str) -> None:
    (repo / "orch.toml").write_text(f"[workspace]\nsetup = '''{hook}'''\n")
    commit_all(repo, "set-up hook")


def payload(attempt: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(attempt["payload_path"]).read_text())
    return data


def live_worktrees(repo: Path) -> set[Path]:
    return {Path(w["worktree"]) for w in worktrees(repo)[1:]}


# -- N attempts from one base -----------------------------------------------------------


def test_n_attempts_have_their_own_branch_worktree_ports_and_payload_from_one_base(
    repo: Path, run_cli: RunCli, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD moves while the dispatch runs (the set-up hook commits to the main worktree
    each time it runs): every attempt keeps the base resolved once, before any of them."""
    with_setup(repo, 'git -C "$MAIN_REPO" commit -q --allow-empty -m "moved by $ORCH_WORKTREE"')
    monkeypatch.setenv("MAIN_REPO", str(repo))
    base = head(repo)

    data = best_of(run_cli, repo, "--attempts", "4")

    made = data["attempts"]
    assert data["failed"] == [] and len(made) == 4
    assert len(git("log", "--format=%H", f"{base}..HEAD", cwd=repo).split()) == 4  # it moved
    assert {a["base_commit"] for a in made} == {base}
    assert {a["task_key"] for a in made} == {"t"}
    for key in ("id", "branch_name", "worktree_path", "payload_path"):
        assert len({a[key] for a in made}) == 4, key
    bundles = [set(payload(a)["ports"].values()) for a in made]
    for i, bundle in enumerate(bundles):
        assert all(not bundle & other for other in bundles[i + 1 :])  # no port in two
    assert sorted(str(p) for p in payload_files(Path(os.environ["ORCH_HOME"]))) == sorted(
        a["payload_path"] for a in made
    )
    for attempt in made:
        wt = Path(attempt["worktree_path"])
        assert (attempt["state"], attempt["workspace_status"]) == ("queued", "ready")
        assert git("rev-parse", "HEAD", cwd=wt).strip() == base
        assert git("symbolic-ref", "HEAD", cwd=wt).strip() == f"refs/heads/{attempt['branch_name']}"
        assert payload(attempt)["base_commit"] == base
    assert live_worktrees(repo) == {Path(a["worktree_path"]) for a in made}
    assert sorted(orch_branches(repo)) == sorted(f"refs/heads/{a['branch_name']}" for a in made)
    git("fsck", "--no-progress", cwd=repo)


def test_the_ids_are_printed_one_per_line(repo: Path, run_cli: RunCli) -> None:
    result = run_cli("dispatch", "t", "--prompt", "p", "--attempts", "3", cwd=repo)
    assert result.exit_code == 0, result.stderr
    ids = result.stdout.split()
    assert result.stdout == "".join(f"{i}\n" for i in ids)
    assert sorted(ids) == sorted(a["id"] for a in attempts_of(run_cli, repo))
    assert len(ids) == 3


def test_pool_members_go_first_one_attempt_each_then_fresh_worktrees(
    repo: Path, run_cli: RunCli
) -> None:
    json_out(run_cli("pool", "fill", "--size", "2", "--json", cwd=repo))
    members = {
        Path(m["path"])
        for m in json_out(run_cli("pool", "list", "--json", cwd=repo))["members"]
        if m["problem"] is None
    }
    assert len(members) == 2

    made = best_of(run_cli, repo, "--attempts", "3")["attempts"]

    paths = [Path(a["worktree_path"]) for a in made]
    assert set(paths[:2]) == members  # the first two attempts took one member each
    assert paths[2] not in members and ".orch-pool" not in paths[2].parts
    for attempt in made[:2]:
        events = show(run_cli, attempt["id"], repo)["events"]
        assert any(e["kind"] == "workspace_from_pool" for e in events), events
    left = json_out(run_cli("pool", "list", "--json", cwd=repo))["members"]
    assert [m for m in left if m["problem"] is None] == []
    assert live_worktrees(repo) == set(paths)


# -- workers -----------------------------------------------------------------------------


def test_workers_take_the_attempts_in_turn(repo: Path, run_cli: RunCli) -> None:
    made = best_of(run_cli, repo, "--worker", "claude", "--worker", "codex", "--attempts", "4")
    assert [a["worker"] for a in made["attempts"]] == ["claude", "codex", "claude", "codex"]


def test_one_attempt_per_worker_without_attempts(repo: Path, run_cli: RunCli) -> None:
    made = best_of(run_cli, repo, "--worker", "claude", "--worker", "codex")
    assert [a["worker"] for a in made["attempts"]] == ["claude", "codex"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--attempts", "2", "--worker", "a", "--worker", "b", "--worker", "c"),
            "Error: 3 workers named for 2 attempts: give --attempts at least the number of "
            "--worker options (or drop --attempts)",
        ),
        (("--attempts", "0"), "Error: --attempts must be at least 1"),
        (("--attempts", "101"), "Error: --attempts 101: at most 100 attempts are made at once"),
        (
            ("--worker", "w" * 129),
            "Error: --worker is 129 characters long, at most 128 are allowed",
        ),
        (("--attempts", "2", "--worker", " "), "Error: --worker must not be empty"),
        *[
            (
                ("--attempts", "2", *extra),
                "Error: --attempts cannot be combined with --phase, --reuse-workspace or "
                "--host: a best-of-N dispatch makes new worktrees on this host",
            )
            for extra in (("--phase", "review"), ("--reuse-workspace",), ("--host", "any"))
        ],
    ],
)
def test_refusals_make_nothing(
    repo: Path, run_cli: RunCli, isolated_env: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("dispatch", "t", "--prompt", "p", *args, cwd=repo)
    assert assert_failed_cleanly(result, 2) == message
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_strict_refusal_leaves_nothing_for_any_attempt(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    json_out(run_cli("pool", "fill", "--size", "1", "--json", cwd=repo))
    (repo / "src" / "d0" / "f0.txt").write_text("changed\n")
    result = run_cli("dispatch", "t", "--prompt", "p", "--strict", "--attempts", "3", cwd=repo)
    line = assert_failed_cleanly(result, 5)
    assert line.startswith("Error: refusing to dispatch from a dirty repository (1 uncommitted")
    assert orch_branches(repo) == []
    assert payload_files(isolated_env) == []
    assert attempts_of(run_cli, repo) == []
    # the pool member was only looked at: still ready, and no checkout was started ahead
    members = json_out(run_cli("pool", "list", "--json", cwd=repo))["members"]
    assert [m["problem"] for m in members] == [None]
    assert live_worktrees(repo) == {Path(members[0]["path"])}
    assert list((isolated_env / "checkouts").glob("*")) == []


# -- one fails, the others stand ---------------------------------------------------------

# fails only on its second run: the attempts are provisioned one after another
SECOND_FAILS = (
    'n=$(cat "$COUNTER" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNTER"; '
    'if [ "$n" = 1 ]; then echo "no database for this one" >&2; exit 3; fi'
)


def test_one_that_fails_to_provision_is_failed_and_the_others_stand(
    repo: Path,
    run_cli: RunCli,
    store_url: str,
    isolated_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_setup(repo, SECOND_FAILS)
    monkeypatch.setenv("COUNTER", str(tmp_path / "counter"))

    result = run_cli("dispatch", "t", "--prompt", "p", "--attempts", "3", cwd=repo)

    assert result.exit_code == 14, (result.stdout, result.stderr)
    made_ids = result.stdout.split()
    assert len(made_ids) == 2
    rows = {a["id"]: a for a in attempts_of(run_cli, repo)}
    assert len(rows) == 3
    (failed_id,) = set(rows) - set(made_ids)
    failed = rows[failed_id]
    line = error_line(result.stderr)
    assert line.startswith(f"Error: 1 of the 3 attempts failed to provision ({failed_id}: ")
    assert "no database for this one" in line
    assert line.endswith("; the other 2 stand")
    assert (failed["state"], failed["workspace_status"]) == ("failed", "failed")
    assert "no database for this one" in failed["reason"]
    # all or nothing for the failed one: no branch, no worktree, no payload
    assert f"refs/heads/{failed['branch_name']}" not in orch_branches(repo)
    assert not Path(failed["worktree_path"]).exists()
    for attempt_id in made_ids:
        assert (rows[attempt_id]["state"], rows[attempt_id]["workspace_status"]) == (
            "queued",
            "ready",
        )
    assert live_worktrees(repo) == {Path(rows[i]["worktree_path"]) for i in made_ids}
    assert len(payload_files(isolated_env)) == 2


def test_json_names_the_failed_one(
    repo: Path, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_setup(repo, SECOND_FAILS)
    monkeypatch.setenv("COUNTER", str(tmp_path / "counter"))
    result = run_cli("dispatch", "t", "--prompt", "p", "--attempts", "2", "--json", cwd=repo)
    assert result.exit_code == 14
    data = json.loads(result.stdout)
    assert data["version"] == 1
    assert [a["workspace_status"] for a in data["attempts"]] == ["ready"]
    (failed,) = data["failed"]
    assert failed["number"] == 2 and failed["attempt"] is not None
    assert "no database for this one" in failed["reason"]
    assert set(data) == {"version", "attempts", "failed", "warnings"}  # one document
    assert error_line(result.stderr).startswith("Error: 1 of the 2 attempts failed")


def test_json_when_none_is_made_is_the_error_document(repo: Path, run_cli: RunCli) -> None:
    with_setup(repo, "echo broken >&2; exit 4")
    result = run_cli("dispatch", "t", "--prompt", "p", "--attempts", "2", "--json", cwd=repo)
    assert result.exit_code == 7
    data = json.loads(result.stdout)
    assert (data["version"], data["error"]["code"], data["error"]["name"]) == (
        1,
        7,
        "WorkspaceError",
    )
    assert data["error"]["message"].startswith("none of the 2 attempts was made: ")


def test_when_none_is_made_the_exit_code_is_the_failure_s(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    with_setup(repo, "echo broken >&2; exit 4")
    result = run_cli("dispatch", "t", "--prompt", "p", "--attempts", "2", cwd=repo)
    line = assert_failed_cleanly(result, 7)
    assert line.startswith("Error: none of the 2 attempts was made: ")
    rows = attempts_of(run_cli, repo)
    assert sorted(a["state"] for a in rows) == ["failed", "failed"]
    assert all(a["id"] in line for a in rows)
    assert orch_branches(repo) == [] and live_worktrees(repo) == set()
    assert payload_files(isolated_env) == []


# -- crashes ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["worktree-started-ahead", "intent-recorded", "payload-written"])
def test_a_best_of_dispatch_killed_mid_way_is_repaired_by_doctor(
    repo: Path, run_cli: RunCli, isolated_env: Path, step: str
) -> None:
    """Killed while the first attempt provisions, with the others' checkouts ahead still
    unrecorded: doctor fails the one in provisioning and removes the checkouts ahead."""
    proc = subprocess.run(
        [ORCH_BIN, "dispatch", "t", "--prompt", "p", "--attempts", "3"],
        cwd=repo,
        env={**os.environ, "ORCH_CRASH_AT": step},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)
    wait_for_git_under(repo.parent)
    wait_for_git_under(isolated_env)

    code, _ = doctor(run_cli, repo, "--fix")
    assert code == 0
    assert_consistent(run_cli, repo, isolated_env)
    rows = attempts_of(run_cli, repo)
    assert [(a["state"], a["workspace_status"]) for a in rows] == (
        [] if step == "worktree-started-ahead" else [("failed", "failed")]
    )
    assert live_worktrees(repo) == set() and orch_branches(repo) == []
    assert list((isolated_env / "checkouts").glob("*")) == []
    made = best_of(run_cli, repo, "--attempts", "2")["attempts"]  # and it can be done again
    assert [a["workspace_status"] for a in made] == ["ready", "ready"]


# -- the empty prompt (issue 17.12) ------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "  \n\t"])
@pytest.mark.parametrize("extra", [(), ("--attempts", "2")])
def test_an_empty_prompt_is_refused(
    repo: Path, run_cli: RunCli, isolated_env: Path, prompt: str, extra: tuple[str, ...]
) -> None:
    result = run_cli("dispatch", "t", "--prompt", prompt, *extra, cwd=repo)
    line = assert_failed_cleanly(result, 2)
    what = "empty" if not prompt else "only whitespace"
    assert line == (
        f"Error: the prompt is {what}: give the agent something to do with --prompt or "
        "--prompt-file (--allow-empty-prompt for an attempt that needs none)"
    )
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_no_prompt_at_all_is_refused(repo: Path, run_cli: RunCli, isolated_env: Path) -> None:
    line = assert_failed_cleanly(run_cli("dispatch", "t", cwd=repo), 2)
    assert line.startswith("Error: the prompt is empty: ")
    empty_file = repo.parent / "empty.md"
    empty_file.write_text("\n")
    line = assert_failed_cleanly(run_cli("dispatch", "t", "--prompt-file", str(empty_file)), 2)
    assert line.startswith("Error: the prompt is only whitespace: ")
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_allow_empty_prompt_dispatches(repo: Path, run_cli: RunCli) -> None:
    result = run_cli("dispatch", "t", "--allow-empty-prompt", "--json", cwd=repo)
    attempt = json_out(result)["attempt"]
    assert attempt["prompt"] == "" and attempt["workspace_status"] == "ready"


def test_submit_refuses_an_empty_prompt_and_the_loop_dispatches_an_allowed_one(
    repo: Path, run_cli: RunCli
) -> None:
    line = assert_failed_cleanly(run_cli("submit", "t", "--prompt", " ", cwd=repo), 2)
    assert line.startswith("Error: the prompt is only whitespace: ")
    submitted = run_cli("submit", "t", "--allow-empty-prompt", "--json", cwd=repo)
    assert submitted.exit_code == 0, submitted.stderr
    s = settings()
    with open_store(s.database_url, s.locks_dir) as store:
        assert [t.prompt for t in store.queued_tasks()] == [""]
        report = Loop(store, s, "loop").cycle()
        assert report.failed == [] and len(report.dispatched) == 1
        assert [t.state for t in store.queued_tasks()] == [TaskState.DISPATCHED]
        assert store.get(report.dispatched[0]).prompt == ""
