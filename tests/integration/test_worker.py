"""``orch work`` end to end (issue 3, points 2 and 3): real agent commands in real worktrees.

Every worker is the installed ``orch`` entry point in its own process and every agent is a
real shell command. Agents that must be caught mid-run announce themselves with a marker
file and wait for a "go" file from the test, so no test depends on how fast anything is;
waiting is always bounded (``WAIT_LIMIT``) and never asserted on.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.attempts.lifecycle import local_worker
from orch.attempts.worker import WorkerConfig, WorkerRuntime, worktree_lock_path
from orch.fslock import try_lock
from orch.models import Attempt, Run, State, WorkspaceStatus
from orch.store import Store, open_store
from orch.system import processes
from tests.support.attempts import dispatch, show
from tests.support.cli import ORCH_BIN, RunCli, error_line, json_out
from tests.support.processes import Proc, Start, is_running, wait_for
from tests.support.repos import commit_all
from tests.support.store import new_attempt, settings

# Announces the run, then waits for the test's go file (the first run only).
HOLD = (
    'touch "$MARKS/$ORCH_ATTEMPT_ID.run$ORCH_RUN"; '
    'if [ "$ORCH_RUN" = 1 ]; then while [ ! -e "$MARKS/go" ]; do sleep 0.02; done; fi; '
)


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "marks"
    path.mkdir()
    yield path
    # an agent held on the go file lives in its own process group, which killing the
    # worker does not reach: let it end even when the test failed before releasing it
    (path / "go").touch()


@pytest.fixture
def store(isolated_env: Path) -> Iterator[Store]:
    """The test's own SQLite store, read directly (no reaping) while workers run."""
    conf = settings()
    with open_store(conf.database_url, conf.locks_dir) as opened:
        yield opened


def work(start: Start, marks: Path, *argv: str, env: dict[str, str] | None = None) -> Proc:
    return start([ORCH_BIN, "work", *argv], env={"MARKS": str(marks), **(env or {})})


def agent_started(store: Store, attempt_id: str) -> Callable[[], bool]:
    """True once the runtime recorded the agent's pid (its first run has started)."""
    return lambda: store.get(attempt_id).agent_pid is not None


def agent_with_a_child(
    start: Start, marks: Path, store: Store, attempt_id: str
) -> tuple[Proc, int, float | None, Attempt]:
    """A worker whose agent has started a child (``sleep 60``) and waits for it: the
    worker, the child's pid and start time, and the attempt as it runs."""
    script = 'sleep 60 & echo $! > "$MARKS/sleep.pid"; wait'
    worker = work(start, marks, "--once", "--", "sh", "-c", script)
    wait_for(agent_started(store, attempt_id), "the agent to start")
    wait_for(lambda: (marks / "sleep.pid").exists(), "the agent's child")
    sleeper = int((marks / "sleep.pid").read_text())
    return worker, sleeper, processes.start_time(sleeper), store.get(attempt_id)


def log_of(isolated_env: Path, attempt_id: str) -> str:
    return (isolated_env / "logs" / f"{attempt_id}.log").read_text()


def finished(proc: Proc) -> str:
    code = proc.wait()
    assert code == 0, (code, proc.output())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


# -- one run -----------------------------------------------------------------------------------


def test_the_command_runs_in_the_worktree_with_the_attempt_in_its_environment(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, isolated_env: Path, store: Store
) -> None:
    prompt = "fix the 'login' bug; then $HOME stays unexpanded"
    attempt = dispatch(run_cli, repo, "fix-login", "--prompt", prompt)
    script = (
        'echo "pwd=$(pwd -P)"; env | grep "^ORCH_" | sort; '
        'printf "arg1=%s\\narg2=%s\\n" "$1" "$2"; echo "to stderr" >&2'
    )
    worker = work(start, marks, "--once", "--", "sh", "-c", script, "sh", "{prompt}", "{worktree}")
    out = finished(worker)
    assert out.strip() == f"{attempt['id']} succeeded exit code 0: to stderr"

    log = log_of(isolated_env, attempt["id"])
    values = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
    worktree = attempt["worktree_path"]
    assert values["pwd"] == str(Path(worktree).resolve())
    assert values["ORCH_ATTEMPT_ID"] == attempt["id"]
    assert values["ORCH_PAYLOAD"] == attempt["payload_path"]
    assert values["ORCH_WORKTREE"] == worktree
    assert values["ORCH_BRANCH"] == attempt["branch_name"]
    assert values["ORCH_BASE_COMMIT"] == attempt["base_commit"]
    assert values["ORCH_PROMPT"] == prompt
    assert values["ORCH_TASK_KEY"] == "fix-login"
    assert values["ORCH_RUN"] == "1"
    assert (values["arg1"], values["arg2"]) == (prompt, worktree)
    assert "to stderr" in log
    assert f"=== orch run 1 of attempt {attempt['id']}: sh" in log
    assert "=== orch run 1 exited with 0" in log

    ended = store.get(attempt["id"])
    assert (ended.state, ended.exit_code) == (State.SUCCEEDED, 0)
    [run] = store.runs(attempt["id"])
    assert run.command == ("sh", "-c", script, "sh", prompt, worktree)
    assert run.exit_code == 0 and run.prompt == prompt
    assert run.log_path == str(isolated_env / "logs" / f"{attempt['id']}.log")
    kinds = [e.kind for e in store.events(attempt["id"])]
    assert kinds == ["created", "ports_leased", "provisioned", "claimed", "run_started", "finished"]


def test_an_exit_status_other_than_zero_fails_the_attempt_with_a_summary(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "breaks")
    script = 'echo "running the tests"; echo "2 tests failed"; exit 3'
    out = finished(work(start, marks, "--once", "--", "sh", "-c", script))
    assert out.strip() == f"{attempt['id']} failed exit code 3: 2 tests failed"
    ended = store.get(attempt["id"])
    assert (ended.state, ended.exit_code) == (State.FAILED, 3)
    assert ended.summary == "exit code 3: 2 tests failed"


def test_a_command_that_does_not_exist_fails_the_attempt_with_127(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "missing")
    missing = str(repo / "no-such-agent")
    out = finished(work(start, marks, "--once", "--", missing, "--flag"))
    assert out.startswith(f"{attempt['id']} failed exit code 127")
    ended = store.get(attempt["id"])
    assert (ended.state, ended.exit_code) == (State.FAILED, 127)
    assert f"cannot start {missing}" in log_of(isolated_env, attempt["id"])
    assert ended.summary == f"exit code 127: cannot start {missing}: no such file"


def test_a_command_that_may_not_be_executed_fails_the_attempt_saying_so(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "not-executable")
    agent = tmp_path / "agent.sh"
    agent.write_text("#!/bin/sh\necho hi\n")
    agent.chmod(0o644)
    out = finished(work(start, marks, "--once", "--", str(agent)))
    summary = f"exit code 127: cannot start {agent}: permission denied"
    assert out.strip() == f"{attempt['id']} failed {summary}"
    assert store.get(attempt["id"]).summary == summary


def test_agent_claude_without_a_claude_binary_fails_the_attempt_cleanly(
    repo: Path,
    run_cli: RunCli,
    start: Start,
    marks: Path,
    store: Store,
    tmp_path: Path,
    isolated_env: Path,
) -> None:
    (repo / "orch.toml").write_text("[workspace]\nsetup = 'echo \"setting up in $PWD\"'\n")
    commit_all(repo, "a set-up hook that prints a line")
    attempt = dispatch(run_cli, repo, "needs-claude", "--prompt", "hello")
    assert "setting up in" in log_of(isolated_env, attempt["id"])
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = finished(work(start, marks, "--once", "--agent", "claude", env={"PATH": str(empty)}))
    assert out.startswith(f"{attempt['id']} failed exit code 127")
    ended = store.get(attempt["id"])
    assert (ended.state, ended.exit_code) == (State.FAILED, 127)
    assert "cannot start claude" in log_of(isolated_env, attempt["id"])
    assert ended.summary == "exit code 127: cannot start claude: not found on PATH"


def test_work_once_with_nothing_to_do_exits_quietly(start: Start, marks: Path) -> None:
    worker = work(start, marks, "--once", "--", "true")
    assert finished(worker) == ""
    assert worker.stderr == ""


def test_work_without_a_command_is_refused(start: Start, marks: Path) -> None:
    worker = work(start, marks, "--once")
    assert worker.wait() == 2
    assert "name an agent with --agent" in error_line(worker.stderr)


# -- what it says while it works ----------------------------------------------------------------


def test_work_says_each_claim_run_end_and_finish_as_it_happens_into_a_file(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    """stdout and stderr are files here (not a terminal): each line must be there while the
    worker still works, not when it exits."""
    first = dispatch(run_cli, repo, "quick")
    second = dispatch(run_cli, repo, "held")
    script = 'if [ "$ORCH_TASK_KEY" = held ]; then ' + HOLD + "fi; exit 0"
    worker = work(start, marks, "--idle-poll", "0.05", "--", "sh", "-c", script)
    wait_for(agent_started(store, second["id"]), "the second agent to start")

    assert worker.stdout == f"{first['id']} succeeded exit code 0\n"
    said = wait_for(
        lambda: (err := worker.stderr).count("claimed") == 2 and err, "the second claim line"
    )
    assert said.splitlines() == [
        f"orch work: claimed {first['id']} (task quick, attempt 1)",
        f"orch work: {first['id']} run 1 exited with 0",
        f"orch work: claimed {second['id']} (task held, attempt 1)",
    ]
    (marks / "go").touch()
    wait_for(lambda: store.get(second["id"]).state is State.SUCCEEDED, "the second to finish")
    worker.signal(signal.SIGTERM)
    out = finished(worker)
    assert out.splitlines() == [
        f"{first['id']} succeeded exit code 0",
        f"{second['id']} succeeded exit code 0",
    ]


def test_work_quiet_says_nothing(repo: Path, run_cli: RunCli, start: Start, marks: Path) -> None:
    dispatch(run_cli, repo, "silent")
    worker = work(start, marks, "--once", "--quiet", "--", "true")
    assert finished(worker) == ""
    assert worker.stderr == ""


# -- signals -----------------------------------------------------------------------------------


def test_first_sigterm_drains_the_current_attempt_and_claims_no_more(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    first = dispatch(run_cli, repo, "first")
    second = dispatch(run_cli, repo, "second")
    worker = work(start, marks, "--idle-poll", "0.05", "--", "sh", "-c", HOLD + "exit 0")
    wait_for(agent_started(store, first["id"]), "the first agent to start")

    worker.signal(signal.SIGTERM)
    (marks / "go").touch()
    out = finished(worker)
    assert out.strip() == f"{first['id']} succeeded exit code 0"
    assert store.get(first["id"]).state is State.SUCCEEDED
    untouched = store.get(second["id"])
    assert untouched.state is State.QUEUED and untouched.lease_token == 0
    assert not (marks / f"{second['id']}.run1").exists()


def test_second_sigterm_stops_the_agent_and_cancels_the_attempt(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "stopped")
    worker, sleeper, sleeper_started, running = agent_with_a_child(
        start, marks, store, attempt["id"]
    )

    worker.stop_at_once()
    out = finished(worker)

    ended = store.get(attempt["id"])
    assert ended.state is State.CANCELLED
    assert ended.summary == "stopped: the worker was told to stop"
    assert ended.exit_code == -signal.SIGTERM
    assert out.strip() == f"{attempt['id']} cancelled stopped: the worker was told to stop"
    assert not is_running(running.agent_pid, running.agent_started_at)
    wait_for(lambda: not is_running(sleeper, sleeper_started), "the agent's child to be stopped")


@pytest.mark.parametrize("look", ["list", "wait"])
def test_kill_9_of_the_worker_is_noticed_by_the_next_look_and_the_agent_is_stopped(
    repo: Path,
    run_cli: RunCli,
    start: Start,
    marks: Path,
    store: Store,
    isolated_env: Path,
    look: str,
) -> None:
    attempt = dispatch(run_cli, repo, "orphaned")
    worker, sleeper, sleeper_started, running = agent_with_a_child(
        start, marks, store, attempt["id"]
    )
    assert running.worker_pid == worker.pid
    lock_path = worktree_lock_path(Path(attempt["worktree_path"]), settings())
    assert try_lock(lock_path, "test") is None  # the agent holds the worktree

    worker.signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    if look == "list":
        listed = json_out(run_cli("list", "--json"))["attempts"]
        [seen] = [a for a in listed if a["id"] == attempt["id"]]
        assert seen["state"] == "worker_gone"
    else:
        # lease_ttl is 30 s: an answer well before that comes from the pid check
        waited = run_cli("wait", attempt["id"], "--timeout", "20", "--json")
        assert waited.exit_code == 14, (waited.stdout, waited.stderr)
        assert json.loads(waited.stdout)["attempts"][0]["state"] == "worker_gone"

    gone = store.get(attempt["id"])
    assert gone.state is State.WORKER_GONE
    assert gone.reason == f"worker process {worker.pid} on {processes.hostname()} is gone"
    wait_for(
        lambda: not is_running(running.agent_pid, running.agent_started_at), "the agent to stop"
    )
    wait_for(lambda: not is_running(sleeper, sleeper_started), "the agent's child to stop")
    held = wait_for(lambda: try_lock(lock_path, "test"), "the worktree lock to be free")
    held.release()


# -- follow-ups --------------------------------------------------------------------------------


def test_a_follow_up_runs_in_the_same_worktree_after_the_first_run(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "two-runs", "--prompt", "write the code")
    script = HOLD + 'echo "run $ORCH_RUN: ${ORCH_FOLLOW_UP:-$ORCH_PROMPT} in $(pwd -P)"; exit 0'
    worker = work(start, marks, "--once", "--", "sh", "-c", script)
    wait_for(lambda: (marks / f"{attempt['id']}.run1").exists(), "the first run to start")

    sent = run_cli("send", attempt["id"], "now add tests")
    assert sent.exit_code == 0, sent.stderr
    assert sent.stdout.startswith("message ") and attempt["id"] in sent.stdout
    (marks / "go").touch()
    finished(worker)

    worktree = str(Path(attempt["worktree_path"]).resolve())
    log = log_of(isolated_env, attempt["id"])
    assert f"run 1: write the code in {worktree}" in log
    assert f"run 2: now add tests in {worktree}" in log
    detail = show(run_cli, attempt["id"])
    assert detail["attempt"]["state"] == "succeeded"
    runs = detail["runs"]
    assert [(r["number"], r["prompt"], r["exit_code"]) for r in runs] == [
        (1, "write the code", 0),
        (2, "now add tests", 0),
    ]
    [message] = detail["messages"]
    assert message["body"] == "now add tests"
    assert message["delivered_at"] is not None and message["run_number"] == 2
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.index("message_queued") < kinds.index("messages_delivered")
    assert kinds.count("run_started") == 2 and kinds[-1] == "finished"

    history = run_cli("log", attempt["id"])
    assert history.exit_code == 0
    lines = history.stdout.splitlines()
    assert lines[:2] == ["# prompt", "write the code"]
    assert any(ln.startswith("# run 1 started ") and ", exit 0: sh -c" in ln for ln in lines)
    assert any(ln.startswith("# run 2 started ") for ln in lines)
    assert "  follow-up: now add tests" in lines
    assert f"run 2: now add tests in {worktree}" in lines


def test_a_follow_up_is_given_the_original_prompt_and_the_history(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    """A command that cannot resume a session of its own gets the original prompt with the
    follow-ups appended; the environment and the payload hold the prompt history."""
    attempt = dispatch(run_cli, repo, "context", "--prompt", "write the code")
    keep = (
        'printf "%s" "$ORCH_PROMPT" > "$MARKS/$ORCH_ATTEMPT_ID.prompt$ORCH_RUN"; '
        'printf "%s" "$ORCH_PROMPT_HISTORY" > "$MARKS/$ORCH_ATTEMPT_ID.history$ORCH_RUN"; '
        'cp "$ORCH_PAYLOAD" "$MARKS/$ORCH_ATTEMPT_ID.payload$ORCH_RUN"; '
    )
    worker = work(start, marks, "--once", "--", "sh", "-c", keep + HOLD + "exit 0")
    wait_for(lambda: (marks / f"{attempt['id']}.run1").exists(), "the first run to start")
    assert run_cli("send", attempt["id"], "now add tests").exit_code == 0
    (marks / "go").touch()
    finished(worker)

    def given(attempt_id: str, run: int) -> tuple[str, list[str], list[str]]:
        payload = json.loads((marks / f"{attempt_id}.payload{run}").read_text())
        return (
            (marks / f"{attempt_id}.prompt{run}").read_text(),
            json.loads((marks / f"{attempt_id}.history{run}").read_text()),
            payload["prompt_history"],
        )

    history = ["write the code", "now add tests"]
    assert given(attempt["id"], 1) == ("write the code", history[:1], history[:1])
    assert given(attempt["id"], 2) == (
        "write the code\n\nFollow-up: now add tests",
        history,
        history,
    )

    # sent after it ended: the continuation goes on with all of it
    sent = run_cli("send", attempt["id"], "one more thing")
    continuation_id = sent.stdout.split(":")[0]
    history.append("one more thing")
    payload = json.loads(Path(store.get(continuation_id).payload_path or "").read_text())
    assert payload["prompt_history"] == history
    finished(work(start, marks, "--once", "--", "sh", "-c", keep + "exit 0"))
    assert given(continuation_id, 1) == (
        "write the code\n\nFollow-up: now add tests\n\nFollow-up: one more thing",
        history,
        history,
    )
    assert [r.prompt for r in store.runs(continuation_id)] == ["one more thing"]


def test_a_message_to_an_ended_attempt_continues_in_its_worktree(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, isolated_env: Path
) -> None:
    """Terminal states never change: the follow-up becomes attempt 2 in the same worktree."""
    attempt = dispatch(run_cli, repo, "continued", "--prompt", "first")
    script = 'echo "$ORCH_PROMPT on $(git branch --show-current) in $(pwd -P)"'
    finished(work(start, marks, "--once", "--", "sh", "-c", script))
    assert store.get(attempt["id"]).state is State.SUCCEEDED

    sent = run_cli("send", attempt["id"], "one more thing")
    assert sent.exit_code == 0, sent.stderr
    continuation_id = sent.stdout.split(":")[0]
    assert sent.stdout == (
        f"{continuation_id}: attempt 2 of 'continued' continues in {attempt['worktree_path']}\n"
    )
    continuation = store.get(continuation_id)
    assert (continuation.attempt_number, continuation.prompt) == (2, "one more thing")
    assert continuation.workspace_status is WorkspaceStatus.REUSED
    assert continuation.worktree_path == attempt["worktree_path"]
    assert continuation.branch_name == attempt["branch_name"]
    assert store.get(attempt["id"]).state is State.SUCCEEDED  # never reopened

    again = run_cli("send", attempt["id"], "and another")
    assert again.exit_code == 12
    assert error_line(again.stderr) == (
        f"Error: attempt {continuation_id} (queued) already works in "
        f"{attempt['worktree_path']}: send the message to it with 'orch send {continuation_id} ...'"
    )

    finished(work(start, marks, "--once", "--", "sh", "-c", script))
    worktree = str(Path(attempt["worktree_path"]).resolve())
    assert store.get(continuation_id).state is State.SUCCEEDED
    assert f"one more thing on {attempt['branch_name']} in {worktree}" in log_of(
        isolated_env, continuation_id
    )


def test_a_message_to_an_ended_attempt_without_a_worktree_is_refused(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "gone")
    finished(work(start, marks, "--once", "--", "true"))
    shutil.rmtree(attempt["worktree_path"])
    late = run_cli("send", attempt["id"], "too late")
    assert late.exit_code == 12
    assert error_line(late.stderr) == (
        f"Error: attempt {attempt['id']} has ended and its worktree is gone (ready): "
        f"use 'orch retry {attempt['id']} --prompt ...'"
    )
    assert [a.id for a in store.list_attempts(task_key="gone")] == [attempt["id"]]


def test_log_shows_a_follow_up_still_waiting(repo: Path, run_cli: RunCli, store: Store) -> None:
    attempt = dispatch(run_cli, repo, "waiting", "--prompt", "p")
    assert run_cli("send", attempt["id"], "later, please").exit_code == 0
    history = run_cli("log", attempt["id"])
    assert "# follow-up waiting: later, please" in history.stdout.splitlines()


# -- one agent per worktree ----------------------------------------------------------------


def _second_attempt_in(store: Store, first: dict[str, Any], tmp_path: Path) -> str:
    """Another attempt whose claim points at ``first``'s worktree (as reuse would)."""
    new = new_attempt(
        first["repository"], "same-worktree", worker="second", worktree_path=first["worktree_path"]
    )
    store.create_attempt(new, "test")
    store.finish_provisioning(new.id, tmp_path / "no-payload.json", "test")
    return new.id


def _second_worker(store: Store, attempt_id: str, marks: Path) -> WorkerRuntime:
    config = WorkerConfig(
        identity=local_worker("second", os.getpid()),
        command=("sh", "-c", f'touch "{marks}/second-ran"'),
        once=True,
        attempt_ref=attempt_id,
        lock_wait=0.5,
    )
    return WorkerRuntime(store, settings(), config, "second worker")


def test_a_second_worker_cannot_start_an_agent_in_a_busy_worktree(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, tmp_path: Path
) -> None:
    first = dispatch(run_cli, repo, "first")
    worker = work(start, marks, "--once", "--", "sh", "-c", HOLD + "exit 0")
    wait_for(agent_started(store, first["id"]), "the first agent to start")
    second = _second_attempt_in(store, first, tmp_path)

    assert _second_worker(store, second, marks).run() == []
    released = store.get(second)
    assert released.state is State.QUEUED and released.lease_token == 2
    event = store.events(second)[-1]
    assert event.kind == "released"
    assert event.detail["reason"].startswith(f"worktree {first['worktree_path']} is in use by ")
    assert event.detail["reason"].endswith(f" attempt {first['id']}")
    assert store.runs(second) == []
    assert not (marks / "second-ran").exists()

    (marks / "go").touch()
    finished(worker)
    [ended] = _second_worker(store, second, marks).run()
    assert ended.id == second and ended.state is State.SUCCEEDED
    assert (marks / "second-ran").exists()


def test_a_worktree_lock_held_elsewhere_sends_the_attempt_back_naming_the_holder(
    repo: Path, run_cli: RunCli, marks: Path, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "locked")
    path = worktree_lock_path(Path(attempt["worktree_path"]), settings())
    held = try_lock(path, "someone else's agent")
    assert held is not None
    try:
        assert _second_worker(store, attempt["id"], marks).run() == []
    finally:
        held.release()
    released = store.get(attempt["id"])
    assert released.state is State.QUEUED
    event = store.events(attempt["id"])[-1]
    assert event.kind == "released"
    assert event.detail["reason"] == (
        f"worktree {attempt['worktree_path']} is in use by someone else's agent"
    )
    assert not (marks / "second-ran").exists()


# -- the lease lost while the agent starts -----------------------------------------------------


class _CancelledWhileStarting(Store):
    """The real store, with an operator's cancel landing between spawn and start_run."""

    agents: list[tuple[int | None, float | None]]

    def start_run(self, *args: Any, **kwargs: Any) -> Run:
        # the worker's call, read by name: the signature stays the store's own
        call = inspect.signature(Store.start_run).bind(self, *args, **kwargs).arguments
        self.agents.append((call["pid"], call.get("pid_started_at")))
        self.cancel(call["attempt_id"], "cancelled while the agent started", "operator")
        return super().start_run(*args, **kwargs)


def test_an_agent_whose_lease_is_lost_as_it_starts_is_stopped_not_orphaned(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "lost-at-start")
    racing = _CancelledWhileStarting(store.engine)
    racing.agents = []
    config = WorkerConfig(
        identity=local_worker("w", os.getpid()), command=("sleep", "30"), once=True
    )
    assert WorkerRuntime(racing, settings(), config, "worker").run() == []

    [(pid, started_at)] = racing.agents
    assert pid is not None and not is_running(pid, started_at)
    cancelled = store.get(attempt["id"])
    assert cancelled.state is State.CANCELLED
    assert [e.kind for e in store.events(attempt["id"])][-1] == "cancelled"
    assert store.runs(attempt["id"]) == []
