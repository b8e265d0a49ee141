"""The operator's lifecycle commands on real repositories (issue 3, points 4 to 7):
``orch wait``, ``retry``, ``reassign`` and ``cancel``, and the worker protocol commands
``claim``, ``heartbeat`` and ``finish`` they interact with.

Workers that hold a claim are stood in for by a real ``sleep`` process passed as
``--pid``, so that an operator action that stops "the worker" stops that process and
nothing else. Exact exit codes and messages are asserted.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.models import State
from orch.store import Store, open_store
from orch.system import processes
from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, RunCli, error_line, json_out
from tests.support.processes import Proc, Start, is_running, wait_for
from tests.support.repos import git
from tests.support.store import settings

RunOrch = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def holder(start: Start) -> Proc:
    """A live process standing for the worker that holds a claim."""
    return start(["sleep", "300"])


@pytest.fixture
def store(isolated_env: Path) -> Iterator[Store]:
    conf = settings()
    with open_store(conf.database_url, conf.locks_dir) as opened:
        yield opened


def claim(run_cli: RunCli, attempt_id: str, holder: Proc, worker: str = "w") -> int:
    result = run_cli("claim", attempt_id, "--worker", worker, "--pid", str(holder.pid))
    assert result.exit_code == 0, result.stderr
    claimed_id, token = result.stdout.split()
    assert claimed_id == attempt_id
    return int(token)


def finish(run_cli: RunCli, attempt_id: str, token: int, state: str, code: int = 0) -> None:
    result = run_cli(
        "finish", attempt_id, "--lease", str(token), "--state", state, "--exit-code", str(code)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{attempt_id} {state}"


def ended(run_cli: RunCli, repo: Path, task_key: str, state: str, holder: Proc) -> dict[str, Any]:
    """A dispatched attempt that a worker claimed and finished as ``state``."""
    attempt = dispatch(run_cli, repo, task_key, "--prompt", f"do {task_key}")
    finish(run_cli, attempt["id"], claim(run_cli, attempt["id"], holder), state)
    return attempt


def refused(result: Any, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    return error_line(result.stderr)


# -- wait --------------------------------------------------------------------------------------


def test_wait_exits_0_once_every_attempt_succeeded(
    repo: Path, run_cli: RunCli, holder: Proc, start: Start
) -> None:
    first = dispatch(run_cli, repo, "first")
    second = dispatch(run_cli, repo, "second")
    waiter = start([ORCH_BIN, "wait", first["id"], second["id"], "--json"])
    tokens = [claim(run_cli, a["id"], holder) for a in (first, second)]
    for attempt, token in zip((first, second), tokens, strict=True):
        finish(run_cli, attempt["id"], token, "succeeded")

    assert waiter.wait() == 0, waiter.output()
    data = json.loads(waiter.stdout)
    assert set(data) == {"version", "attempts", "timed_out", "all_succeeded"}
    assert (data["version"], data["timed_out"], data["all_succeeded"]) == (1, False, True)
    assert [(a["id"], a["state"]) for a in data["attempts"]] == [
        (first["id"], "succeeded"),
        (second["id"], "succeeded"),
    ]
    assert waiter.stderr == ""

    text = run_cli("wait", first["id"], second["id"])
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "TASK", "#", "STATE", "WORKSPACE", "BRANCH", "AHEAD", "FILES", "+/-", "AGE"
    ]  # fmt: skip
    assert {ln.split()[0] for ln in lines[1:]} == {first["id"], second["id"]}


def test_wait_exits_14_when_one_did_not_succeed(repo: Path, run_cli: RunCli, holder: Proc) -> None:
    good = ended(run_cli, repo, "good", "succeeded", holder)
    bad = ended(run_cli, repo, "bad", "failed", holder)
    result = run_cli("wait", good["id"], bad["id"], "--json")
    assert result.exit_code == 14
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert (data["timed_out"], data["all_succeeded"]) == (False, False)
    assert [a["state"] for a in data["attempts"]] == ["succeeded", "failed"]


def test_wait_exits_15_on_timeout_with_one_still_queued(
    repo: Path, run_cli: RunCli, holder: Proc
) -> None:
    done = ended(run_cli, repo, "done", "succeeded", holder)
    queued = dispatch(run_cli, repo, "queued")
    result = run_cli("wait", done["id"], queued["id"], "--timeout", "0.5", "--json")
    assert result.exit_code == 15
    assert result.stderr == "Error: timed out after 0.5s\n"
    data = json.loads(result.stdout)
    assert (data["timed_out"], data["all_succeeded"]) == (True, False)
    assert [a["state"] for a in data["attempts"]] == ["succeeded", "queued"]

    text = run_cli("wait", queued["id"], "--timeout", "0")
    assert text.exit_code == 15 and "queued" in text.stdout


def test_wait_accepts_payload_paths_and_names_each_attempt_once(
    repo: Path, run_cli: RunCli, holder: Proc
) -> None:
    attempt = ended(run_cli, repo, "by-path", "succeeded", holder)
    payload = attempt["payload_path"]
    assert Path(payload).is_file()
    result = run_cli("wait", payload, attempt["id"], "--json")
    assert result.exit_code == 0, result.stderr
    assert [a["id"] for a in json.loads(result.stdout)["attempts"]] == [attempt["id"]]


def test_wait_on_an_unknown_attempt_exits_8(run_cli: RunCli, tmp_path: Path) -> None:
    assert "no attempt 'deadbeef'" in refused(run_cli("wait", "deadbeef"), 8)
    assert "no payload at" in refused(run_cli("wait", str(tmp_path / "nope.json")), 9)


# -- retry -------------------------------------------------------------------------------------


def test_retry_numbers_up_with_a_fresh_branch_and_worktree_from_the_same_base(
    repo: Path, run_cli: RunCli, holder: Proc
) -> None:
    failed = ended(run_cli, repo, "flaky", "failed", holder)
    base = failed["base_commit"]
    (repo / "moved.txt").write_text("HEAD moves on\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "moved on", cwd=repo)
    assert git("rev-parse", "HEAD", cwd=repo).strip() != base

    retried = json_out(run_cli("retry", failed["id"], "--cooldown", "0", "--json"))["attempt"]
    assert retried["attempt_number"] == 2
    assert (retried["task_key"], retried["prompt"]) == ("flaky", "do flaky")
    assert (retried["base_ref"], retried["base_commit"]) == ("HEAD", base)
    assert (retried["state"], retried["workspace_status"]) == ("queued", "ready")
    assert retried["branch_name"] != failed["branch_name"]
    assert retried["worktree_path"] != failed["worktree_path"]
    assert git("rev-parse", f"refs/heads/{retried['branch_name']}", cwd=repo).strip() == base
    worktree = Path(retried["worktree_path"])
    assert git("rev-parse", "HEAD", cwd=worktree).strip() == base
    assert not (worktree / "moved.txt").exists()
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree).strip() == retried["branch_name"]
    # the failed attempt's workspace is left as it was
    assert Path(failed["worktree_path"]).is_dir()
    assert git("rev-parse", f"refs/heads/{failed['branch_name']}", cwd=repo).strip() == base


def test_retry_with_base_ref_moves_the_base(repo: Path, run_cli: RunCli, holder: Proc) -> None:
    failed = ended(run_cli, repo, "move-me", "failed", holder)
    (repo / "moved.txt").write_text("new base\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "new base", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo).strip()

    result = run_cli("retry", failed["id"], "--cooldown", "0", "--base-ref", "main", "--json")
    retried = json_out(result)["attempt"]
    assert (retried["base_ref"], retried["base_commit"]) == ("main", head)
    assert (Path(retried["worktree_path"]) / "moved.txt").read_text() == "new base\n"


def test_retry_during_the_cooldown_is_refused_saying_when(
    repo: Path, run_cli: RunCli, holder: Proc, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = ended(run_cli, repo, "cooling", "failed", holder)
    line = refused(run_cli("retry", failed["id"], "--cooldown", "3600"), 16)
    match = re.fullmatch(
        r"Error: task 'cooling' is cooling down: retry allowed in (\d+)s "
        r"\(cooldown 3600s; --cooldown 0 skips\)",
        line,
    )
    assert match is not None, line
    assert 3000 <= int(match.group(1)) <= 3600

    monkeypatch.setenv("ORCH_RETRY_COOLDOWN", "3600")  # the default comes from settings
    assert "is cooling down" in refused(run_cli("retry", failed["id"]), 16)
    assert _attempt_numbers(run_cli, "cooling") == [1]

    retried = run_cli("retry", failed["id"], "--cooldown", "0")
    assert retried.exit_code == 0, retried.stderr
    assert _attempt_numbers(run_cli, "cooling") == [2, 1]


def _attempt_numbers(run_cli: RunCli, task_key: str) -> list[int]:
    attempts = json_out(run_cli("list", "--task", task_key, "--json"))["attempts"]
    return [a["attempt_number"] for a in attempts]


def test_retry_beyond_max_attempts_is_refused(repo: Path, run_cli: RunCli, holder: Proc) -> None:
    failed = ended(run_cli, repo, "limited", "failed", holder)
    line = refused(run_cli("retry", failed["id"], "--cooldown", "0", "--max-attempts", "1"), 16)
    assert line == (
        "Error: task 'limited' already has 1 attempts (max_attempts 1); "
        "raise it with --max-attempts"
    )
    assert _attempt_numbers(run_cli, "limited") == [1]


def test_retry_while_an_attempt_is_live_is_refused(
    repo: Path, run_cli: RunCli, holder: Proc
) -> None:
    queued = dispatch(run_cli, repo, "live")
    line = refused(run_cli("retry", queued["id"], "--cooldown", "0"), 16)
    assert line == (
        f"Error: task 'live' has a live attempt ({queued['id']}, queued): "
        "wait for it, or cancel it first"
    )
    claim(run_cli, queued["id"], holder)
    assert "(" + queued["id"] + ", running)" in refused(
        run_cli("retry", queued["id"], "--cooldown", "0"), 16
    )
    assert _attempt_numbers(run_cli, "live") == [1]


def test_retry_by_task_key_by_payload_path_and_by_attempt_id(
    repo: Path, run_cli: RunCli, holder: Proc
) -> None:
    first = ended(run_cli, repo, "by-key", "failed", holder)
    second = json_out(run_cli("retry", "by-key", "--cooldown", "0", "--json"))["attempt"]
    assert second["attempt_number"] == 2
    finish(run_cli, second["id"], claim(run_cli, second["id"], holder), "failed")
    # retrying an older attempt retries the task: the new attempt numbers after the newest
    third = json_out(run_cli("retry", first["payload_path"], "--cooldown", "0", "--json"))
    assert third["attempt"]["attempt_number"] == 3
    assert third["attempt"]["base_commit"] == first["base_commit"]
    assert _attempt_numbers(run_cli, "by-key") == [3, 2, 1]
    assert "no attempt or task 'no-such-task'" in refused(run_cli("retry", "no-such-task"), 8)


# -- reassign ----------------------------------------------------------------------------------


def test_reassign_a_queued_attempt_rewrites_its_payload(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "moving", "--worker", "alpha")
    assert json.loads(Path(attempt["payload_path"]).read_text())["worker"] == "alpha"
    result = run_cli("reassign", attempt["id"], "--worker", "beta")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{attempt['id']} queued for worker beta\n"
    moved = store.get(attempt["id"])
    assert (moved.state, moved.worker) == (State.QUEUED, "beta")
    payload = json.loads(Path(attempt["payload_path"]).read_text())
    assert (payload["worker"], payload["state"]) == ("beta", "queued")
    event = store.events(attempt["id"])[-1]
    assert event.kind == "reassigned"
    assert event.detail == {"worker": "beta", "previous_worker": "alpha", "was": "queued"}
    assert "--worker must not be empty" in refused(
        run_cli("reassign", attempt["id"], "--worker", " "), 2
    )


def test_reassign_a_running_attempt_fences_the_old_worker_and_leaves_its_process_alone(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, holder: Proc, store: Store, start: Start
) -> None:
    """The process that claimed (a script's ``--pid $$``) is the worker, not an agent: it
    is fenced by its lease, never signalled."""
    attempt = dispatch(run_cli, repo, "fenced", "--worker", "alpha")
    claimed = run_orch("claim", attempt["id"], "--worker", "alpha", "--pid", str(holder.pid))
    assert claimed.returncode == 0, claimed.stderr
    old = claimed.stdout.split()[1]
    assert store.get(attempt["id"]).state is State.RUNNING

    result = run_cli("reassign", attempt["id"], "--worker", "beta", "--grace", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{attempt['id']} queued for worker beta\n"
    time.sleep(1.5)  # past the grace period a SIGKILL would have been sent
    assert holder.popen.poll() is None

    beat = run_orch("heartbeat", attempt["id"], "--lease", old)
    assert beat.returncode == 13, (beat.stdout, beat.stderr)
    assert "taken away" in error_line(beat.stderr)
    late = run_orch("finish", attempt["id"], "--lease", old, "--state", "succeeded")
    assert late.returncode == 13
    assert error_line(late.stderr).startswith(f"Error: lease {old} on attempt {attempt['id']}")

    moved = store.get(attempt["id"])
    assert (moved.state, moved.worker, moved.lease_token) == (State.QUEUED, "beta", int(old) + 1)
    assert json.loads(Path(attempt["payload_path"]).read_text())["worker"] == "beta"
    other = start(["sleep", "300"])
    refusal = run_cli("claim", attempt["id"], "--worker", "alpha", "--pid", str(other.pid))
    assert "assigned to worker 'beta'" in refused(refusal, 17)


def test_reassign_an_attempt_running_under_orch_work_stops_its_agent(
    repo: Path, run_cli: RunCli, start: Start, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "handed-over")
    worker = start([ORCH_BIN, "work", "--once", "--", "sleep", "30"])
    wait_for(lambda: store.get(attempt["id"]).agent_pid is not None, "the agent to start")
    running = store.get(attempt["id"])

    result = run_cli("reassign", attempt["id"], "--worker", "beta")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("(previous agent stopped by SIGTERM)\n")
    assert not is_running(running.agent_pid, running.agent_started_at)
    assert worker.wait() == 0, worker.output()
    assert worker.stdout == ""  # fenced out: it reported nothing

    moved = store.get(attempt["id"])
    assert (moved.state, moved.worker) == (State.QUEUED, "beta")
    assert [e.kind for e in store.events(attempt["id"])][-1] == "reassigned"
    assert [r.exit_code for r in store.runs(attempt["id"])] == [-signal.SIGTERM]


def test_reassign_stops_the_agent_and_the_worker_goes_on_to_its_next_attempt(
    repo: Path, run_cli: RunCli, start: Start, store: Store
) -> None:
    first = dispatch(run_cli, repo, "first")
    script = 'if [ "$ORCH_TASK_KEY" = first ]; then exec sleep 30; fi'
    worker = start([ORCH_BIN, "work", "--idle-poll", "0.1", "--", "sh", "-c", script])
    wait_for(lambda: store.get(first["id"]).agent_pid is not None, "the agent to start")
    running = store.get(first["id"])
    second = dispatch(run_cli, repo, "second")

    result = run_cli("reassign", first["id"], "--worker", "beta", "--grace", "1")
    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout
        == f"{first['id']} queued for worker beta (previous agent stopped by SIGTERM)\n"
    )
    assert not is_running(running.agent_pid, running.agent_started_at)
    wait_for(lambda: store.get(second["id"]).state is State.SUCCEEDED, "the next attempt")
    assert worker.popen.poll() is None  # the worker itself was never signalled
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert store.get(first["id"]).state is State.QUEUED


def test_a_pid_that_now_belongs_to_another_process_is_never_signalled(start: Start) -> None:
    other = start(["sleep", "300"])
    started = processes.start_time(other.pid)
    assert started is not None
    assert processes.terminate(other.pid, started - 5.0, 0.1) == "not running"
    assert processes.terminate(other.pid, None, 0.1).startswith("not signalled")
    assert other.popen.poll() is None
    assert processes.terminate(other.pid, started, 5) == "stopped by SIGTERM"


def test_reassign_a_finished_attempt_is_refused(repo: Path, run_cli: RunCli, holder: Proc) -> None:
    done = ended(run_cli, repo, "done", "succeeded", holder)
    line = refused(run_cli("reassign", done["id"], "--worker", "beta"), 12)
    assert line == f"Error: attempt {done['id']} is succeeded: it cannot be reassigned"


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_a_queued_attempt(repo: Path, run_cli: RunCli, store: Store) -> None:
    first = dispatch(run_cli, repo, "unwanted")
    second = dispatch(run_cli, repo, "unwanted-too")
    result = run_cli("cancel", first["id"], second["id"], "--reason", "changed my mind")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{first['id']} cancelled\n{second['id']} cancelled\n"
    for attempt in (first, second):
        cancelled = store.get(attempt["id"])
        assert cancelled.state is State.CANCELLED and cancelled.reason == "changed my mind"
        event = store.events(attempt["id"])[-1]
        assert event.kind == "cancelled"
        assert event.detail == {"reason": "changed my mind", "was": "queued"}


def test_cancel_a_running_agent_stops_it_within_the_grace_period(
    repo: Path, run_cli: RunCli, start: Start, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "long")
    worker = start([ORCH_BIN, "work", "--once", "--", "sleep", "30"])
    wait_for(lambda: store.get(attempt["id"]).agent_pid is not None, "the agent to start")
    running = store.get(attempt["id"])

    result = run_cli("cancel", attempt["id"], "--grace", "10")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{attempt['id']} cancelled; agent stopped by SIGTERM\n"
    assert not is_running(running.agent_pid, running.agent_started_at)
    assert worker.wait() == 0, worker.output()
    assert "Traceback" not in worker.stderr

    cancelled = store.get(attempt["id"])
    assert cancelled.state is State.CANCELLED
    assert cancelled.reason == "cancelled by the operator"
    kinds = [e.kind for e in store.events(attempt["id"])]
    assert kinds[-1] == "cancelled" and "finished" not in kinds  # the worker was fenced
    assert [r.exit_code for r in store.runs(attempt["id"])] == [-signal.SIGTERM]


def test_cancel_kills_an_agent_that_ignores_sigterm_after_the_grace_period(
    repo: Path, run_cli: RunCli, start: Start, store: Store, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "stubborn")
    ready = tmp_path / "trapping"
    script = f'trap "" TERM; touch "{ready}"; while :; do sleep 0.05; done'
    worker = start([ORCH_BIN, "work", "--once", "--", "sh", "-c", script])
    wait_for(lambda: store.get(attempt["id"]).agent_pid is not None, "the agent to start")
    wait_for(ready.exists, "the agent to ignore SIGTERM")
    running = store.get(attempt["id"])

    result = run_cli("cancel", attempt["id"], "--grace", "0.5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{attempt['id']} cancelled; agent killed by SIGKILL\n"
    wait_for(
        lambda: not is_running(running.agent_pid, running.agent_started_at), "the agent to die"
    )
    assert worker.wait() == 0, worker.output()
    assert store.get(attempt["id"]).state is State.CANCELLED


def test_cancel_an_attempt_claimed_through_the_cli_leaves_the_claiming_process_alone(
    repo: Path, run_cli: RunCli, holder: Proc, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "scripted")
    token = claim(run_cli, attempt["id"], holder)
    result = run_cli("cancel", attempt["id"], "--grace", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{attempt['id']} cancelled\n"
    time.sleep(1.5)  # past the grace period a SIGKILL would have been sent
    assert holder.popen.poll() is None
    late = run_cli("finish", attempt["id"], "--lease", str(token), "--state", "succeeded")
    assert "taken away" in refused(late, 13)
    assert store.get(attempt["id"]).state is State.CANCELLED


def test_cancel_names_the_follow_ups_it_drops_and_show_marks_them(
    repo: Path, run_cli: RunCli, holder: Proc, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "talked-to")
    claim(run_cli, attempt["id"], holder)
    for body in ("add a test\nand run it", "then update the docs"):
        assert run_cli("send", attempt["id"], body).exit_code == 0
    result = run_cli("cancel", attempt["id"], "--grace", "0")
    assert result.exit_code == 0, result.stderr
    first, second = store.messages(attempt["id"])
    assert result.stdout == (
        f"{attempt['id']} cancelled\n"
        "  2 follow-ups dropped, never run:\n"
        f"    {first.id}  add a test\n"
        f"    {second.id}  then update the docs\n"
    )
    event = store.events(attempt["id"])[-1]
    assert event.kind == "followups_dropped"
    assert event.detail == {"messages": [first.id, second.id], "count": 2}

    shown = run_cli("show", attempt["id"])
    assert "follow-ups dropped (the attempt ended before they ran): 2" in shown.stdout
    assert f"  {second.id}  then update the docs" in shown.stdout.splitlines()
    assert "follow-ups waiting" not in shown.stdout
    data = json_out(run_cli("show", attempt["id"], "--json"))
    assert [m["dropped"] for m in data["messages"]] == [True, True]
    logged = run_cli("log", attempt["id"]).stdout
    assert "# follow-up dropped (the attempt ended before it ran): then update the docs" in logged


def test_cancel_a_finished_attempt_changes_nothing(
    repo: Path, run_cli: RunCli, holder: Proc, store: Store
) -> None:
    done = ended(run_cli, repo, "finished", "succeeded", holder)
    before, events = store.get(done["id"]), store.events(done["id"])
    result = run_cli("cancel", done["id"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{done['id']} already ended (succeeded): nothing to do\n"
    assert store.get(done["id"]) == before
    assert store.events(done["id"]) == events
    assert holder.popen.poll() is None  # a finished attempt's worker is left alone


def test_cancel_unknown_attempt_exits_8(run_cli: RunCli) -> None:
    assert "no attempt 'deadbeef'" in refused(run_cli("cancel", "deadbeef"), 8)


# -- the worker protocol commands ----------------------------------------------------------


def test_claim_heartbeat_finish_through_the_cli(
    repo: Path, run_cli: RunCli, holder: Proc, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "protocol", "--worker", "w")
    nothing = run_cli("claim", "--worker", "nobody-else", "--pid", str(holder.pid))
    assert refused(nothing, 17) == "Error: no queued attempt for worker 'nobody-else'"

    data = json_out(run_cli("claim", "--worker", "w", "--pid", str(holder.pid), "--json"))
    assert set(data) == {"version", "attempt", "lease", "lease_expires_at", "lease_ttl_seconds"}
    assert data["attempt"]["id"] == attempt["id"] and data["lease"] == 1
    assert data["attempt"]["worker_pid"] == holder.pid
    assert (data["attempt"]["worker"], data["attempt"]["lease_holder"]) == ("w", "w")
    assert data["attempt"]["worker_host"] == processes.hostname()

    beat = run_cli("heartbeat", attempt["id"], "--lease", "1")
    assert beat.exit_code == 0 and beat.stdout.startswith("lease 1 until ")
    again = run_cli("claim", attempt["id"], "--worker", "w", "--pid", str(holder.pid))
    assert refused(again, 17) == f"Error: attempt {attempt['id']} is running, not queued"
    finish(run_cli, attempt["id"], 1, "failed", 3)
    done = store.get(attempt["id"])
    assert (done.state, done.exit_code) == (State.FAILED, 3)
    twice = run_cli("finish", attempt["id"], "--lease", "1", "--state", "succeeded")
    assert "is failed" in refused(twice, 13)
    assert store.get(attempt["id"]) == done
