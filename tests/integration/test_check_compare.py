"""What attempts changed, recorded; the check per attempt; ``orch compare TASK`` (issue 18,
points 2, 4 and 5).

Real repositories, real worktrees, real workers (the installed ``orch`` entry point) and a
real store on SQLite and PostgreSQL. Every count is checked against git itself. Task keys
are unique per test: the PostgreSQL store is shared by the tests of one xdist worker, and
``orch compare TASK`` reads every attempt of a task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import orch
from orch.attempts.occupant import worktree_lock_path
from orch.config import resolve
from orch.fslock import try_lock
from orch.serve.loop import Loop
from orch.store import open_store
from orch.system import processes
from tests.support.attempts import dispatch, doctor, show, work
from tests.support.cli import ORCH_BIN, RunCli, RunOrch, error_line, json_out
from tests.support.processes import Proc, wait_for
from tests.support.repos import commit_all, git

# commits twice: a changed tracked file (2 lines added, 1 removed) and a new file of 3 lines
AGENT_COMMITS = (
    "printf 'one\\ntwo\\n' > src/d0/f0.txt && git commit -qam first && "
    "printf 'a\\nb\\nc\\n' > new.txt && git add new.txt && git commit -qm second"
)


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (Path(orch.__file__).parent / "schemas" / f"{name}.schema.json").read_text()
    )
    return loaded


def task() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def configure(repo: Path, body: str) -> None:
    (repo / "orch.toml").write_text(body)
    commit_all(repo, "orch.toml")


def numstat(repo: Path, base: str, tip: str) -> tuple[int, int, int]:
    """Files, lines added, lines removed, as git counts them."""
    rows = [ln.split("\t") for ln in git("diff", "--numstat", base, tip, cwd=repo).splitlines()]
    return len(rows), sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows)


def listed(run_cli: RunCli, repo: Path, attempt_id: str) -> dict[str, Any]:
    rows = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    found: dict[str, Any] = next(a for a in rows if a["id"] == attempt_id)
    return found


# -- point 2: the summary, recorded by orch work, shown by list and show --------------------


def test_work_records_what_the_attempt_changed_and_list_and_show_show_it(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    key = task()
    attempt = dispatch(run_cli, repo, key, "--prompt", "p")
    listed_before = listed(run_cli, repo, attempt["id"])
    assert listed_before["commits_ahead"] is None and listed_before["changes_tip"] is None

    work(run_orch, repo, attempt["id"], AGENT_COMMITS)

    tip = git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=repo).strip()
    files, added, removed = numstat(repo, attempt["base_commit"], tip)
    assert (files, added, removed) == (2, 5, 1)
    row = listed(run_cli, repo, attempt["id"])
    assert row["changes_tip"] == tip
    assert (row["commits_ahead"], row["files_changed"]) == (2, files)
    assert (row["lines_added"], row["lines_removed"]) == (added, removed)
    assert row.get("check") is None  # the record is the same as every command's
    assert attempt["id"] not in json_out(run_cli("list", "--json", cwd=repo))["checks"]

    table = run_cli("list", "--task", key, cwd=repo).stdout.splitlines()
    assert table[0].split() == [
        "ID", "TASK", "#", "STATE", "WORKSPACE", "BRANCH", "AHEAD", "FILES", "+/-", "AGE"
    ]  # fmt: skip
    assert table[1].split()[6:9] == ["2", "2", "+5/-1"]

    # an uncommitted edit and an untracked file: show counts the worktree live, and says so
    worktree = Path(attempt["worktree_path"])
    (worktree / "scratch.txt").write_text("x\ny\n")
    data = show(run_cli, attempt["id"], cwd=repo)
    assert data["changes"]["recorded"] == {
        "tip": tip,
        "commits_ahead": 2,
        "files_changed": 2,
        "lines_added": 5,
        "lines_removed": 1,
    }
    assert data["changes"]["live"] == {
        "tip": tip,
        "commits_ahead": 2,
        "files_changed": 3,
        "lines_added": 7,
        "lines_removed": 1,
    }
    jsonschema.validate(data, schema("show-v1"))
    text = run_cli("show", attempt["id"], cwd=repo).stdout
    assert f"2 commits ahead, 2 files, +5/-1 (committed, recorded at {tip[:12]}" in text
    assert (
        "2 commits ahead, 3 files, +7/-1 (the worktree now: uncommitted and untracked files "
        "included)" in text
    )
    # a cache of git's answer, not a change of the attempt: no event
    assert "changes_recorded" not in [e["kind"] for e in data["events"]]


def test_the_loop_records_a_branch_that_moved(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    work(run_orch, repo, attempt["id"], AGENT_COMMITS)
    worktree = Path(attempt["worktree_path"])
    (worktree / "later.txt").write_text("1\n")
    tip = commit_all(worktree, "a person commits after the agent ended")

    conf = resolve(os.environ)
    with open_store(conf.database_url, conf.locks_dir) as store:
        report = Loop(store, conf, "loop-test").cycle()
        assert attempt["id"] in report.changes_recorded
        recorded = store.get(attempt["id"])
        assert recorded.changes_tip == tip
        assert (recorded.commits_ahead, recorded.files_changed) == (3, 3)
        # a cycle that sees no move records nothing
        assert attempt["id"] not in Loop(store, conf, "loop-test").cycle().changes_recorded


# -- point 4: the check ----------------------------------------------------------------------

CHECK = '[review]\ncheck = "echo web=$ORCH_PORT_WEB attempt=$ORCH_ATTEMPT_ID; test -f ok"\n'


def test_check_passes_and_fails_records_runs_of_kind_check_with_the_port_bundle(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str, isolated_env: Path
) -> None:
    configure(repo, CHECK)
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    work(run_orch, repo, attempt["id"], "true")

    failed = run_orch("check", attempt["id"], cwd=repo)
    assert failed.returncode == 14, (failed.stdout, failed.stderr)
    assert failed.stdout.startswith(f"check of {attempt['id']} failed (exit 1) ")
    assert error_line(failed.stderr) == (
        f"Error: the check of attempt {attempt['id']} exited with 1 ('orch log {attempt['id']}')"
    )

    (Path(attempt["worktree_path"]) / "ok").write_text("")
    passed = run_orch("check", attempt["id"], "--json", cwd=repo)
    assert (passed.returncode, passed.stderr) == (0, "")
    body = json.loads(passed.stdout)
    assert body["check"]["result"] == "passed"
    assert body["check"]["exit_code"] == 0
    assert body["check"]["duration"] >= 0

    data = show(run_cli, attempt["id"], cwd=repo)
    assert [(r["kind"], r["exit_code"]) for r in data["runs"]] == [
        ("agent", 0),
        ("check", 1),
        ("check", 0),
    ]
    assert data["check"]["result"] == "passed"
    finished = [e["detail"] for e in data["events"] if e["kind"] == "check_finished"]
    assert [(d["result"], d["exit_code"], d["timed_out"]) for d in finished] == [
        ("failed", 1, False),
        ("passed", 0, False),
    ]
    listing = json_out(run_cli("list", "--json", cwd=repo))
    assert listing["checks"][attempt["id"]]["result"] == "passed"
    # the shipped schemas describe what list and show print now
    jsonschema.validate(listing, schema("list-v1"))
    jsonschema.validate(data, schema("show-v1"))

    web = data["ports"]["ports"]["web"]
    log = (isolated_env / "logs" / f"{attempt['id']}.log").read_text()
    assert log.count(f"web={web} attempt={attempt['id']}\n") == 2
    assert "check passed" in run_cli("show", attempt["id"], cwd=repo).stdout


def test_a_check_that_runs_out_of_time_is_killed_with_its_process_group(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path, store_url: str
) -> None:
    pidfile = tmp_path / "check.pid"
    configure(
        repo,
        f'[review]\ncheck = "sleep 60 & echo $! > {pidfile}; wait"\ncheck_timeout = 0.5\n',
    )
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")

    done = run_orch("check", attempt["id"], "--json", cwd=repo)
    assert done.returncode == 14
    assert error_line(done.stderr) == (
        f"Error: the check of attempt {attempt['id']} timed out ('orch log {attempt['id']}')"
    )
    # the check's result is the one JSON document on stdout (a result, not an error)
    body = json.loads(done.stdout)
    assert (body["attempt"], body["check"]["result"]) == (attempt["id"], "timed out")
    sleeper = int(pidfile.read_text())
    wait_for(lambda: not processes.is_alive(sleeper, None), "the check's child to be killed")
    check = show(run_cli, attempt["id"], cwd=repo)["check"]
    assert (check["result"], check["timed_out"], check["exit_code"]) == ("timed out", True, None)


def test_a_check_whose_process_was_killed_is_recorded_as_interrupted(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path, store_url: str
) -> None:
    """kill -9 of ``orch check`` in the middle of its check: nobody will hear the check's
    end, and the run shows as unfinished until ``orch doctor --fix`` (or the next ``orch
    check`` of the attempt) records it as interrupted. A check that runs is left alone."""
    pidfile = tmp_path / "check.pid"
    configure(repo, f'[review]\ncheck = "echo $$ > {pidfile}; sleep 60"\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    checking = Proc([ORCH_BIN, "check", attempt["id"]], tmp_path / "out", cwd=repo)
    try:
        shell = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "a check"))
        _, data = doctor(run_cli, repo, "--fix")  # while it runs: nothing to repair
        assert [f for f in data["findings"] if f["kind"] == "check-abandoned"] == []
        checking.signal(signal.SIGKILL)
        checking.wait()
    finally:
        checking.kill()
    try:
        assert show(run_cli, attempt["id"], cwd=repo)["check"]["result"] == "unfinished"
        code, data = doctor(run_cli, repo)
        assert code == 18
        [found] = [f for f in data["findings"] if f["kind"] == "check-abandoned"]
        assert (found["subject"], found["fixed"]) == (attempt["id"], False)
        assert f"pid {checking.pid} on this host" in found["detail"]
        code, data = doctor(run_cli, repo, "--fix")
        assert [(f["kind"], f["fixed"]) for f in data["findings"]] == [("check-abandoned", True)]
        check = show(run_cli, attempt["id"], cwd=repo)["check"]
        assert (check["result"], check["exit_code"], check["timed_out"]) == (
            "interrupted",
            None,
            False,
        )
        code, data = doctor(run_cli, repo, "--fix")
        assert (code, data["findings"]) == (0, [])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell, signal.SIGKILL)  # the orphaned check (it holds the worktree lock)


def test_the_next_check_records_one_whose_process_was_killed_as_interrupted(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path, store_url: str
) -> None:
    pidfile = tmp_path / "check.pid"
    check = f"test -e {pidfile} || {{ echo $$ > {pidfile}; sleep 60; }}"
    configure(repo, f'[review]\ncheck = "{check}"\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    checking = Proc([ORCH_BIN, "check", attempt["id"]], tmp_path / "out", cwd=repo)
    try:
        shell = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "a check"))
        checking.signal(signal.SIGKILL)
        checking.wait()
    finally:
        checking.kill()
    os.killpg(shell, signal.SIGKILL)
    wait_for(lambda: not processes.is_alive(shell, None), "the orphaned check to end")

    again = run_orch("check", attempt["id"], "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    runs = [r for r in show(run_cli, attempt["id"], cwd=repo)["runs"] if r["kind"] == "check"]
    assert [r["result"] for r in runs] == ["interrupted", "passed"]
    events = json_out(run_cli("events", "--json", "--attempt", attempt["id"], cwd=repo))
    finished = [e["detail"] for e in events["events"] if e["kind"] == "check_finished"]
    assert [d.get("reason") for d in finished] == [
        f"its process (pid {checking.pid}) ended without recording the check's end",
        None,
    ]


def test_a_check_never_runs_while_another_process_works_in_the_worktree(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path, store_url: str
) -> None:
    ran = tmp_path / "ran"
    configure(repo, f'[review]\ncheck = "touch {ran}"\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    # the lock an agent's worker holds (and hands to its agent) while the agent runs
    lock = worktree_lock_path(Path(attempt["worktree_path"]), resolve(os.environ))
    held = try_lock(lock, "agent x")
    assert held is not None
    try:
        busy = run_orch("check", attempt["id"], cwd=repo)
    finally:
        held.release()
    assert (busy.returncode, busy.stdout) == (10, "")
    assert error_line(busy.stderr) == (
        f"Error: the worktree of attempt {attempt['id']} is in use by agent x: a check never "
        "runs while an agent or another check runs there; try again when it has ended"
    )
    assert not ran.exists()
    assert show(run_cli, attempt["id"], cwd=repo)["runs"] == []


def test_check_without_a_configured_command_is_one_line(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    done = run_orch("check", attempt["id"], cwd=repo)
    assert (done.returncode, done.stdout) == (11, "")
    root = repo.resolve()
    assert error_line(done.stderr) == (
        f'Error: no check configured for {root}: add [review] check = "<command>" to '
        f"{root / 'orch.toml'}"
    )
    unknown = run_orch("check", "ffffffff", cwd=repo)
    assert unknown.returncode == 8
    assert error_line(unknown.stderr) == "Error: no attempt 'ffffffff' in the store"


@pytest.mark.parametrize("agent_exit", [0, 3])
def test_work_runs_the_check_after_an_agent_that_succeeded_when_configured(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, agent_exit: int, store_url: str
) -> None:
    configure(repo, '[review]\ncheck = "test -f built"\ncheck_after_agent = true\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    proc = run_orch(
        "work", "--attempt", attempt["id"], "--", "sh", "-c", f"touch built; exit {agent_exit}"
    )
    assert "Traceback" not in proc.stderr
    data = show(run_cli, attempt["id"], cwd=repo)
    runs = [(r["kind"], r["exit_code"]) for r in data["runs"]]
    if agent_exit == 0:
        assert runs == [("agent", 0), ("check", 0)]
        assert data["attempt"]["state"] == "succeeded"
    else:
        assert runs == [("agent", agent_exit)]
        assert data["attempt"]["state"] == "failed"


def test_a_failing_check_after_the_agent_leaves_the_attempt_succeeded(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    configure(repo, '[review]\ncheck = "exit 5"\ncheck_after_agent = true\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    work(run_orch, repo, attempt["id"], "true")
    data = show(run_cli, attempt["id"], cwd=repo)
    assert data["attempt"]["state"] == "succeeded"
    assert (data["check"]["result"], data["check"]["exit_code"]) == ("failed", 5)


# -- point 5: orch compare TASK --------------------------------------------------------------


def test_compare_task_puts_the_attempts_side_by_side_and_names_the_collisions(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    configure(repo, '[review]\ncheck = "test -f pass"\n')
    key = task()
    first = dispatch(run_cli, repo, key, "--prompt", "p")
    second = dispatch(run_cli, repo, key, "--prompt", "p")
    third = dispatch(run_cli, repo, key, "--prompt", "p")
    work(run_orch, repo, first["id"], AGENT_COMMITS)
    work(run_orch, repo, second["id"], "printf 'mine\\n' > src/d0/f0.txt && git commit -qam x")
    work(run_orch, repo, third["id"], "printf 'z\\n' > src/d1/f1.txt && git commit -qam y")
    (Path(first["worktree_path"]) / "pass").write_text("")
    assert run_orch("check", first["id"], cwd=repo).returncode == 0
    assert run_orch("check", second["id"], cwd=repo).returncode == 14

    body = json_out(run_cli("compare", key, "--json", cwd=repo))
    assert body["task_key"] == key
    rows = {r["id"]: r for r in body["attempts"]}
    assert [r["id"] for r in body["attempts"]] == [first["id"], second["id"], third["id"]]
    for attempt in (first, second, third):
        tip = git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=repo).strip()
        files, added, removed = numstat(repo, attempt["base_commit"], tip)
        changes = rows[attempt["id"]]["changes"]
        assert (changes["files_changed"], changes["lines_added"], changes["lines_removed"]) == (
            files,
            added,
            removed,
        )
        assert changes["tip"] == tip
    assert rows[first["id"]]["files"] == ["new.txt", "src/d0/f0.txt"]
    assert rows[first["id"]]["changes"]["commits_ahead"] == 2
    assert (rows[first["id"]]["state"], rows[first["id"]]["exit_code"]) == ("succeeded", 0)
    assert rows[first["id"]]["check"]["result"] == "passed"
    assert rows[second["id"]]["check"]["result"] == "failed"
    assert rows[third["id"]]["check"] is None
    assert body["collisions"] == [
        {"path": "src/d0/f0.txt", "attempts": [first["id"], second["id"]]}
    ]

    text = run_cli("compare", key, cwd=repo).stdout.splitlines()
    assert text[0] == f"task {key}: 3 attempts (committed work against each attempt's base_commit)"
    assert text[1].split() == [
        "ATTEMPT", "#", "WORKER", "STATE", "EXIT", "DURATION", "AHEAD", "FILES", "+/-", "CHECK"
    ]  # fmt: skip
    first_row = text[2].split()
    assert first_row[:5] == [first["id"], "1", "local", "succeeded", "0"]
    assert first_row[6:10] == ["2", "2", "+5/-1", "passed"]
    assert text[3].split()[9:12] == ["failed", "(exit", "1)"]
    assert text[4].split()[9] == "-"
    assert text[-2:] == [
        "files changed by more than one attempt (1):",
        f"  src/d0/f0.txt  {first['id']}, {second['id']}",
    ]


def test_compare_a_task_without_attempts_or_with_diff_options_is_one_line(
    repo: Path, run_orch: RunOrch, store_url: str
) -> None:
    none = run_orch("compare", "no-such-task", cwd=repo)
    assert (none.returncode, none.stdout) == (8, "")
    assert error_line(none.stderr) == "Error: no attempts of task 'no-such-task' in the store"
    both = run_orch("compare", "no-such-task", "--stat", cwd=repo)
    assert both.returncode == 2
    assert error_line(both.stderr) == (
        "Error: --worktree and --stat compare two attempts (orch compare A B)"
    )


def test_compare_task_counts_a_branch_that_moved_since_its_record(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    key = task()
    attempt = dispatch(run_cli, repo, key, "--prompt", "p")
    work(run_orch, repo, attempt["id"], AGENT_COMMITS)
    worktree = Path(attempt["worktree_path"])
    (worktree / "more.txt").write_text("1\n2\n")
    tip = commit_all(worktree, "later")
    row = json_out(run_cli("compare", key, "--json", cwd=repo))["attempts"][0]
    assert (row["changes"]["tip"], row["changes"]["commits_ahead"]) == (tip, 3)
    assert listed(run_cli, repo, attempt["id"])["changes_tip"] == tip


def test_an_agent_run_after_a_check_is_recorded_as_its_own_run(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    """The worker ends the run the store numbered, not the one it counted: a check run
    made before the worker came keeps its own exit code."""
    configure(repo, '[review]\ncheck = "exit 3"\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "p")
    assert run_orch("check", attempt["id"], cwd=repo).returncode == 14
    work(run_orch, repo, attempt["id"], "true")
    runs = show(run_cli, attempt["id"], cwd=repo)["runs"]
    assert [(r["number"], r["kind"], r["exit_code"], r["result"]) for r in runs] == [
        (1, "check", 3, "failed"),
        (2, "agent", 0, "passed"),
    ]


def test_compare_task_with_a_branch_deleted_by_hand_says_so_and_goes_on(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    key = task()
    kept = dispatch(run_cli, repo, key, "--prompt", "p")
    gone = dispatch(run_cli, repo, key, "--prompt", "p")
    for attempt in (kept, gone):
        work(run_orch, repo, attempt["id"], AGENT_COMMITS)
    git("worktree", "remove", "--force", gone["worktree_path"], cwd=repo)
    git("branch", "-D", gone["branch_name"], cwd=repo)

    done = run_orch("compare", key, cwd=repo)
    assert (done.returncode, done.stderr) == (0, "")
    assert (
        f"  {gone['id']}: its branch {gone['branch_name']} is gone (the numbers are the last "
        "recorded)"
    ) in done.stdout.splitlines()
    assert done.stdout.endswith("no file was changed by more than one attempt\n")
    rows = json_out(run_cli("compare", key, "--json", cwd=repo))["attempts"]
    assert [(r["id"], r["files"]) for r in rows] == [
        (kept["id"], ["new.txt", "src/d0/f0.txt"]),
        (gone["id"], []),
    ]
    assert rows[1]["changes"]["commits_ahead"] == 2
    # the branch deleted, its worktree left: one line and exit 8 from diff and compare A B;
    # the task's comparison still goes on
    orphan = dispatch(run_cli, repo, key, "--prompt", "p")
    work(run_orch, repo, orphan["id"], AGENT_COMMITS)
    git("update-ref", "-d", f"refs/heads/{orphan['branch_name']}", cwd=repo)
    words = f"the branch {orphan['branch_name']} of attempt {orphan['id']} is gone"
    for args in (
        ("diff", orphan["id"]),
        ("diff", orphan["id"], "--stat"),
        ("diff", orphan["id"], "--committed"),
        ("compare", orphan["id"], kept["id"], "--worktree"),
    ):
        result = run_orch(*args, cwd=repo)
        assert result.returncode == 8, (args, result.stderr)
        assert result.stderr.startswith(f"Error: {words}") and result.stderr[-1:] == "\n", args
        assert len(result.stderr.splitlines()) == 1 and result.stdout == "", args
    done = run_orch("compare", key, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert orphan["id"] in done.stdout


def test_check_runs_stay_out_of_the_prompt_history(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    """A continuation carries the prompts the agent was given: a check run has none."""
    configure(repo, '[review]\ncheck = "true"\ncheck_after_agent = true\n')
    attempt = dispatch(run_cli, repo, task(), "--prompt", "write the code")
    assert run_orch("check", attempt["id"], cwd=repo).returncode == 0
    work(run_orch, repo, attempt["id"], "true")
    assert [r["kind"] for r in show(run_cli, attempt["id"], cwd=repo)["runs"]] == [
        "check",
        "agent",
        "check",
    ]
    sent = run_cli("send", attempt["id"], "one more thing", cwd=repo)
    assert sent.exit_code == 0, sent.output
    continuation = sent.stdout.split(":")[0]
    payload = json.loads(
        Path(show(run_cli, continuation, cwd=repo)["attempt"]["payload_path"]).read_text()
    )
    assert payload["prompt_history"] == ["write the code", "one more thing"]
