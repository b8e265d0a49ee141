"""``orch work --concurrency N`` (issue 22, point 4): one worker process, many agents.

The worker is the installed ``orch`` in its own process, its agents real shell commands
in real worktrees, the store SQLite and PostgreSQL. That agents run at the same time is
shown by the agents themselves: each announces itself with a file and waits until all of
them have (agents run one after another would wait for ever, and fail after a bound);
agents that must be caught mid-run wait for the test's "go" file. No assertion is on
time: waiting is bounded (``wait_for``) and never asserted on.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from orch.attempts.concurrent_worker import SerialStore
from orch.attempts.occupant import worktree_lock_path
from orch.fslock import try_lock
from orch.models import Attempt, State
from orch.store import Connecting, Store, open_store
from orch.system import processes
from tests.support.attempts import dispatch, show
from tests.support.cli import ORCH_BIN, RunCli, assert_failed_cleanly, json_out
from tests.support.hosts import clones, orch_on
from tests.support.processes import Proc, Start, is_running, wait_for
from tests.support.repos import commit_all, git
from tests.support.store import ALSO_THROUGH_PGBOUNCER, settings

# Announces itself, then waits (bounded) until ``$EXPECTED`` agents have: only agents
# running at the same time all get past this line.
TOGETHER = (
    'touch "$MARKS/$ORCH_ATTEMPT_ID.started"; n=0; '
    'while [ "$(ls "$MARKS" | grep -c "\\.started$")" -lt "$EXPECTED" ]; do '
    "sleep 0.02; n=$((n+1)); if [ $n -gt 6000 ]; then echo alone; exit 99; fi; done; "
)
# ... and then waits for the test's go file
HOLD = TOGETHER + 'while [ ! -e "$MARKS/go" ]; do sleep 0.02; done; '


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "marks"
    path.mkdir()
    yield path
    (path / "go").touch()  # agents in their own process groups outlive a killed worker


def work(start: Start, marks: Path, expected: int, *argv: str, ttl: str = "30") -> Proc:
    return start(
        [ORCH_BIN, "work", *argv],
        env={"MARKS": str(marks), "EXPECTED": str(expected), "ORCH_LEASE_TTL": ttl},
    )


def finished(proc: Proc) -> str:
    code = proc.wait()
    assert code == 0, (code, proc.output())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def all_running(store: Store, ids: list[str]) -> list[Attempt]:
    """The attempts once every one of their agents has started (recorded its pid)."""
    running: list[Attempt] = wait_for(
        lambda: (got := store.get_many(ids)) and all(a.agent_pid for a in got) and got,
        "every agent to start",
    )
    return running


def lock_free(path: Path) -> Callable[[], bool]:
    """True once the lock at ``path`` can be taken (it is let go again at once)."""

    def free() -> bool:
        held = try_lock(path, "test")
        if held is None:
            return False
        held.release()
        return True

    return free


def dispatched(run_cli: RunCli, repo: Path, *task_keys: str) -> list[str]:
    return [dispatch(run_cli, repo, key)["id"] for key in task_keys]


# -- at once -----------------------------------------------------------------------------------


@ALSO_THROUGH_PGBOUNCER
def test_once_runs_the_attempts_at_the_same_time_and_records_each(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store, isolated_env: Path
) -> None:
    ids = dispatched(run_cli, repo, "one", "two", "three")
    worker = work(
        start, marks, 3, "--once", "--concurrency", "3", "--", "sh", "-c", TOGETHER + "echo done"
    )
    out = finished(worker)

    assert sorted(out.splitlines()) == sorted(f"{i} succeeded exit code 0: done" for i in ids)
    assert sorted(p.name for p in marks.iterdir()) == sorted(f"{i}.started" for i in ids)
    for attempt_id in ids:
        ended = store.get(attempt_id)
        assert (ended.state, ended.exit_code) == (State.SUCCEEDED, 0)
        [run] = store.runs(attempt_id)
        assert run.exit_code == 0 and run.prompt == ended.prompt
        assert run.log_path == str(isolated_env / "logs" / f"{attempt_id}.log")
        kinds = [e.kind for e in store.events(attempt_id)]
        assert kinds[-3:] == ["claimed", "run_started", "finished"]
        assert "=== orch run 1 exited with 0" in Path(run.log_path).read_text()
    # one process claimed them all, and holds none of them now
    holders = {e.detail["pid"] for i in ids for e in store.events(i) if e.kind == "claimed"}
    assert holders == {worker.pid}


def test_a_failing_agent_among_them_fails_only_its_own_attempt(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "fine", "breaks", "fine-too")
    script = TOGETHER + 'if [ "$ORCH_TASK_KEY" = breaks ]; then echo "2 tests failed"; exit 3; fi'
    finished(work(start, marks, 3, "--once", "--concurrency", "3", "--", "sh", "-c", script))

    states = {store.get(i).task_key: (store.get(i).state, store.get(i).exit_code) for i in ids}
    assert states == {
        "fine": (State.SUCCEEDED, 0),
        "breaks": (State.FAILED, 3),
        "fine-too": (State.SUCCEEDED, 0),
    }
    assert store.get(ids[1]).summary == "exit code 3: 2 tests failed"


def test_once_claims_at_most_n_and_leaves_the_rest_queued(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "a", "b", "c")
    finished(work(start, marks, 2, "--once", "--concurrency", "2", "--", "sh", "-c", TOGETHER))
    states = [store.get(i).state for i in ids]
    assert states == [State.SUCCEEDED, State.SUCCEEDED, State.QUEUED]  # the oldest two


def test_the_check_and_the_follow_ups_are_each_attempts_own(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    (repo / "orch.toml").write_text('[review]\ncheck = "test -f built"\ncheck_after_agent = true\n')
    commit_all(repo, "orch.toml")
    ids = dispatched(run_cli, repo, "told", "alone")
    # the first run holds until go; a follow-up run builds; "alone" fails, so no check
    script = (
        'if [ "$ORCH_RUN" = 1 ]; then ' + HOLD + "fi; "
        'if [ "$ORCH_TASK_KEY" = alone ]; then exit 4; fi; touch built'
    )
    worker = work(start, marks, 2, "--once", "--concurrency", "2", "--", "sh", "-c", script)
    all_running(store, ids)
    sent = run_cli("send", ids[0], "now build it")
    assert sent.exit_code == 0, sent.stderr
    (marks / "go").touch()
    finished(worker)

    told, alone = (show(run_cli, i, cwd=repo) for i in ids)
    assert [(r["kind"], r["exit_code"]) for r in told["runs"]] == [
        ("agent", 0),
        ("agent", 0),
        ("check", 0),
    ]
    assert told["attempt"]["state"] == "succeeded"
    assert [(r["kind"], r["exit_code"]) for r in alone["runs"]] == [("agent", 4)]
    assert alone["attempt"]["state"] == "failed"


def test_a_worker_in_its_loop_fills_each_slot_that_frees(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "l1", "l2", "l3", "l4", "l5")
    worker = work(start, marks, 2, "--idle-poll", "0.05", "--concurrency", "2", "--", "true")
    wait_for(
        lambda: all(a.state is State.SUCCEEDED for a in store.get_many(ids)), "the attempts to end"
    )
    worker.signal(signal.SIGTERM)
    out = finished(worker)
    assert sorted(out.splitlines()) == sorted(f"{i} succeeded exit code 0" for i in ids)


def test_attempts_sent_to_this_host_are_provisioned_here_side_by_side(
    tmp_path: Path, store_url: str, marks: Path
) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    home_a, home_b = tmp_path / "home-alpha", tmp_path / "home-beta"
    ids = []
    for key in ("h1", "h2", "h3"):
        sent = orch_on(
            "alpha", home_a, "dispatch", "--prompt", "p", key, "--host", "any", "--json", cwd=alpha
        )
        assert sent.returncode == 0, sent.stderr
        ids.append(json.loads(sent.stdout)["attempt"]["id"])
    done = orch_on(
        "beta",
        home_b,
        *("work", "--once", "--concurrency", "3", "--repo", str(beta), "--"),
        *("sh", "-c", TOGETHER + "pwd"),
        cwd=beta,
        env={"MARKS": str(marks), "EXPECTED": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in marks.iterdir()) == sorted(f"{i}.started" for i in ids)
    listed = git("worktree", "list", "--porcelain", cwd=beta)
    for attempt_id in ids:
        shown = json.loads(orch_on("beta", home_b, "show", attempt_id, "--json", cwd=beta).stdout)
        attempt = shown["attempt"]
        assert (attempt["state"], attempt["workspace_host"]) == ("succeeded", "beta")
        assert attempt["worktree_path"] in listed


# -- leases: one statement, one connection, one lease lost --------------------------------------


def test_the_leases_are_renewed_together_in_one_statement(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "x", "y", "z")
    worker = work(start, marks, 3, "--concurrency", "3", "--", "sh", "-c", HOLD, ttl="1.5")
    claimed = all_running(store, ids)
    # a beat every 0.5 s: wait until every lease was renewed after its claim
    renewed = wait_for(
        lambda: (
            (now := store.get_many(ids))
            and all(
                a.heartbeat_at and c.heartbeat_at and a.heartbeat_at > c.heartbeat_at
                for a, c in zip(now, claimed, strict=True)
            )
            and now
        ),
        "the leases to be renewed",
    )
    # one read sees one statement's work: every lease renewed at the same instant (beats
    # of their own would each carry their own time)
    assert len({a.heartbeat_at for a in renewed}) == 1, [a.heartbeat_at for a in renewed]
    assert len({a.lease_expires_at for a in renewed}) == 1
    (marks / "go").touch()
    wait_for(
        lambda: all(a.state is State.SUCCEEDED for a in store.get_many(ids)), "the attempts to end"
    )
    worker.signal(signal.SIGTERM)
    finished(worker)


def test_a_lease_taken_away_stops_only_its_own_agent(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "kept", "fenced", "kept-too")
    worker = work(
        start, marks, 3, "--once", "--concurrency", "3", "--", "sh", "-c", HOLD, ttl="1.5"
    )
    running = all_running(store, ids)
    fenced = running[1]
    # fenced behind the worker's back, its agent left alone: only the heartbeat can tell
    assert fenced.lease_token is not None
    store.end_lost_worker(fenced.id, fenced.lease_token, "judged lost by the test", "test")
    wait_for(
        lambda: not is_running(fenced.agent_pid, fenced.agent_started_at),
        "the fenced attempt's agent to be stopped",
    )
    assert all(is_running(a.agent_pid, a.agent_started_at) for a in (running[0], running[2]))
    (marks / "go").touch()
    out = finished(worker)

    assert sorted(out.splitlines()) == sorted(f"{i} succeeded exit code 0" for i in ids[::2])
    gone = store.get(fenced.id)
    assert (gone.state, gone.reason) == (State.WORKER_GONE, "judged lost by the test")
    assert "finished" not in [e.kind for e in store.events(fenced.id)]  # it wrote nothing
    assert [r.exit_code for r in store.runs(fenced.id)] == [-signal.SIGTERM]
    assert "taken away" in worker.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_worker_holds_at_most_one_connection_whatever_n(
    store_url: str, repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    from tests.support.postgres import held_connections

    ids = dispatched(run_cli, repo, "p", "q", "r")
    worker = work(start, marks, 3, "--concurrency", "3", "--", "sh", "-c", HOLD, ttl="1.5")
    all_running(store, ids)
    port = make_url(store_url).port or 5432
    running = [held_connections(worker.pid, port) for _ in range(300)]
    (marks / "go").touch()
    wait_for(
        lambda: all(a.state is State.SUCCEEDED for a in store.get_many(ids)), "the attempts to end"
    )
    idle = [held_connections(worker.pid, port) for _ in range(300)]
    worker.signal(signal.SIGTERM)
    finished(worker)
    assert max(running) <= 1, running
    assert max(idle) <= 1 and 0 in idle, idle


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_threads_calling_the_store_one_at_a_time_hold_one_connection_at_a_time(
    store_url: str, isolated_env: Path
) -> None:
    """What keeps the worker at one connection while its attempts' threads all write at
    once (their agents ending together): ``SerialStore`` over a worker's pool-less engine."""
    opened = open_store(store_url, isolated_env / "locks", connecting=Connecting(hold_idle=False))
    open_now, most = [0], [0]
    guard = threading.Lock()

    def connected(*_args: object) -> None:
        with guard:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])

    def closed(*_args: object) -> None:
        with guard:
            open_now[0] -= 1

    event.listen(opened.engine, "connect", connected)
    event.listen(opened.engine, "close", closed)
    serial = SerialStore(opened)
    go = threading.Barrier(6)

    def calls() -> None:
        go.wait()
        for _ in range(25):
            serial.repositories()

    with opened:
        threads = [threading.Thread(target=calls) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert most[0] == 1


# -- signals and kill -9 ---------------------------------------------------------------------


def test_the_first_signal_drains_every_attempt_and_claims_no_more(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "d1", "d2", "d3")
    worker = work(
        start, marks, 2, "--idle-poll", "0.05", "--concurrency", "2", "--", "sh", "-c", HOLD
    )
    all_running(store, ids[:2])
    worker.signal(signal.SIGTERM)
    (marks / "go").touch()
    out = finished(worker)
    assert sorted(out.splitlines()) == sorted(f"{i} succeeded exit code 0" for i in ids[:2])
    assert store.get(ids[2]).state is State.QUEUED  # never claimed after the signal


def test_a_second_signal_stops_every_agent_and_cancels_each_attempt(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "s1", "s2", "s3")
    worker = work(start, marks, 3, "--concurrency", "3", "--", "sh", "-c", HOLD)
    running = all_running(store, ids)
    worker.stop_at_once()
    out = finished(worker)

    assert sorted(out.splitlines()) == sorted(
        f"{i} cancelled stopped: the worker was told to stop" for i in ids
    )
    for attempt in running:
        assert not is_running(attempt.agent_pid, attempt.agent_started_at)
        assert store.get(attempt.id).state is State.CANCELLED
        assert [r.exit_code for r in store.runs(attempt.id)] == [-signal.SIGTERM]


def test_kill_9_of_the_worker_leaves_every_attempt_to_end_worker_gone(
    repo: Path, run_cli: RunCli, start: Start, marks: Path, store: Store
) -> None:
    ids = dispatched(run_cli, repo, "k1", "k2", "k3")
    worker = work(start, marks, 3, "--concurrency", "3", "--", "sh", "-c", HOLD)
    running = all_running(store, ids)
    locks = [worktree_lock_path(Path(a.worktree_path or "."), settings()) for a in running]
    assert all(try_lock(path, "test") is None for path in locks)  # each agent holds its own

    worker.signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    listed = json_out(run_cli("list", "--json"))["attempts"]
    assert {a["id"]: a["state"] for a in listed if a["id"] in ids} == dict.fromkeys(
        ids, "worker_gone"
    )
    for attempt in running:
        gone = store.get(attempt.id)
        assert gone.state is State.WORKER_GONE
        assert gone.reason == f"worker process {worker.pid} on {processes.hostname()} is gone"
    wait_for(
        lambda: not any(is_running(a.agent_pid, a.agent_started_at) for a in running),
        "every agent to stop",
    )
    for path in locks:
        wait_for(lock_free(path), "the worktree lock to be free")


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", ""])
def test_a_concurrency_that_is_not_a_whole_number_above_zero_is_one_line(
    run_cli: RunCli, value: str
) -> None:
    result = run_cli("work", "--concurrency", value, "--", "true")
    line = assert_failed_cleanly(result, 2)
    assert line == f"Error: --concurrency must be a whole number of at least 1, not {value!r}"


def test_attempt_with_a_concurrency_above_one_is_refused(run_cli: RunCli) -> None:
    line = assert_failed_cleanly(run_cli("work", "--concurrency", "2", "--attempt", "abcd"), 2)
    assert line == "Error: --attempt works on one attempt: it takes no --concurrency above 1"


def test_the_help_names_the_option(run_cli: RunCli) -> None:
    helped = run_cli("work", "--help")
    assert "--concurrency N" in helped.stdout
