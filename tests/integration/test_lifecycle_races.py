"""Races between real processes (issue 3, point 8).

Racers are separate Python processes that open the store themselves and wait at a
barrier (a file) so that they hit the store at the same moment; CLI racers are the
installed ``orch``. Whatever the interleaving, the outcome asserted is the one the
contracts promise: each attempt claimed once, one terminal state per attempt with
events that agree, one attempt per retry race, no write from a fenced-out worker.
"""

from __future__ import annotations

import json
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from orch.attempts import lifecycle
from orch.models import State
from orch.store import Store, open_store
from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, RunCli, error_line, json_out
from tests.support.processes import Start, is_running, released_together, wait_for
from tests.support.store import (
    ALSO_THROUGH_PGBOUNCER,
    OffsetClock,
    claimed,
    new_attempt,
    ready_attempt,
    settings,
)

CLAIMERS = 8
ATTEMPTS = 200

# Shared prologue: open the store, say ready, wait for the go file.
BARRIER = """
import json, os, sys, time, traceback
from pathlib import Path
from orch.store import open_store
url, locks, ready, go = sys.argv[1:5]
args = sys.argv[5:]
store = open_store(url, Path(locks))
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
"""

CLAIM_ALL = (
    BARRIER
    + """
from orch.models import WorkerIdentity
me = WorkerIdentity(name=args[0], host="racer.invalid")
taken, errors = [], []
while True:
    try:
        lease = store.claim(me, 60.0, "racer " + ready)
    except Exception as exc:
        errors.append(repr(exc))
        if len(errors) > 20:
            break
        continue
    if lease is None:
        break
    taken.append(lease.attempt.id)
print(json.dumps({"taken": taken, "errors": errors}))
"""
)

CANCEL_ALL = (
    BARRIER
    + """
results = {}
for attempt_id in args:
    try:
        _, changed = store.cancel(attempt_id, "raced", "canceller")
        results[attempt_id] = "changed" if changed else "no-op"
    except Exception as exc:
        results[attempt_id] = repr(exc)
print(json.dumps(results))
"""
)

FINISH_ALL = (
    BARRIER
    + """
from orch.errors import LeaseLost
from orch.models import State
results = {}
for pair in args:
    attempt_id, token = pair.split(":")
    try:
        store.finish(attempt_id, int(token), State.SUCCEEDED, "finisher", 0, "done")
        results[attempt_id] = "finished"
    except LeaseLost:
        results[attempt_id] = "lease-lost"
    except Exception as exc:
        results[attempt_id] = repr(exc)
print(json.dumps(results))
"""
)

RETRY_CREATE = (
    BARRIER
    + """
from orch.errors import RetryRefused
from orch.models import NewAttempt
repository, retry_of, attempt_id = args
new = NewAttempt(id=attempt_id, task_key="raced", repository=repository, base_ref="HEAD",
                 base_commit="0" * 40, branch_name="orch/raced-" + attempt_id,
                 worktree_path="/w/" + attempt_id, worker=None, prompt="")
try:
    created = store.create_attempt(new, "retrier", retry_of=int(retry_of))
    print(json.dumps({"created": created.attempt_number}))
except RetryRefused as exc:
    print(json.dumps({"refused": exc.message}))
except Exception as exc:
    print(json.dumps({"error": repr(exc)}))
"""
)


Job = tuple[str, list[str]]  # (script, its arguments)


def race(jobs: list[Job], url: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Run one process per job, release them together, return what each printed."""
    locks = str(settings().locks_dir)

    def argv(i: int, ready: Path, go: Path) -> list[str]:
        script, args = jobs[i]
        return [sys.executable, "-c", script, url, locks, str(ready), str(go), *args]

    ended = released_together(len(jobs), argv, tmp_path / f"race-{uuid.uuid4().hex[:6]}")
    for code, out, err in ended:
        assert code == 0 and out.strip(), (code, out, err)
    return [json.loads(out) for _, out, _ in ended]


# -- claims ------------------------------------------------------------------------------------


@pytest.mark.slow
@ALSO_THROUGH_PGBOUNCER
def test_racing_claimers_take_each_attempt_exactly_once(
    store_url: str, store: Store, repository: str, tmp_path: Path
) -> None:
    worker = f"racer-{uuid.uuid4().hex[:6]}"
    # half assigned to the racers' name, half to nobody: both kinds are theirs to take
    mine = {
        ready_attempt(store, repository, f"t{i}", worker=worker if i % 2 else None).id
        for i in range(ATTEMPTS)
    }
    results = race([(CLAIM_ALL, [worker])] * CLAIMERS, store_url, tmp_path)

    errors = [e for r in results for e in r["errors"]]
    assert errors == []  # no "database is locked", nothing else either
    taken = [attempt_id for r in results for attempt_id in r["taken"]]
    assert len(taken) == len(set(taken)), "an attempt was claimed twice"
    assert mine <= set(taken)
    for attempt in store.get_many(sorted(mine)):
        assert attempt.state is State.RUNNING and attempt.lease_token == 1
        assert [e.kind for e in store.events(attempt.id)].count("claimed") == 1


# -- cancel against finish ---------------------------------------------------------------------

PAIRS = 20


@ALSO_THROUGH_PGBOUNCER
def test_cancel_racing_finish_ends_in_one_terminal_state_with_agreeing_events(
    store_url: str, store: Store, repository: str, tmp_path: Path
) -> None:
    leases = []
    for i in range(PAIRS):
        attempt, lease = claimed(store, repository, f"pair{i}", ttl=60.0)
        leases.append(lease)
    ids = [lease.attempt.id for lease in leases]
    cancels, finishes = race(
        [(CANCEL_ALL, ids), (FINISH_ALL, [f"{le.attempt.id}:{le.token}" for le in leases])],
        store_url,
        tmp_path,
    )

    for attempt_id in ids:
        attempt = store.get(attempt_id)
        kinds = [e.kind for e in store.events(attempt_id)]
        assert kinds.count("finished") + kinds.count("cancelled") == 1, (attempt_id, kinds)
        if attempt.state is State.CANCELLED:
            assert (cancels[attempt_id], finishes[attempt_id]) == ("changed", "lease-lost")
            assert kinds[-1] == "cancelled" and attempt.reason == "raced"
        else:
            assert attempt.state is State.SUCCEEDED, attempt
            assert (cancels[attempt_id], finishes[attempt_id]) == ("no-op", "finished")
            assert kinds[-1] == "finished" and attempt.exit_code == 0


# -- retry against retry -----------------------------------------------------------------------

RETRIERS = 8


@ALSO_THROUGH_PGBOUNCER
def test_racing_retries_in_the_store_create_one_attempt(
    store_url: str, store: Store, repository: str, tmp_path: Path
) -> None:
    first, lease = claimed(store, repository, "raced", ttl=60.0)
    store.finish(first.id, lease.token, State.FAILED, "w", 1)
    jobs = [(RETRY_CREATE, [repository, "1", uuid.uuid4().hex[:8]]) for _ in range(RETRIERS)]
    results = race(jobs, store_url, tmp_path)

    assert [r for r in results if "error" in r] == []
    assert [r["created"] for r in results if "created" in r] == [2]
    refusals = [r["refused"] for r in results if "refused" in r]
    assert len(refusals) == RETRIERS - 1
    for refusal in refusals:
        assert "has a live attempt" in refusal or "was created meanwhile" in refusal
    numbers = [a.attempt_number for a in store.list_attempts(repository=repository)]
    assert numbers == [2, 1]


def test_two_orch_retry_at_once_make_one_attempt_and_the_other_exits_16(
    store_url: str, repo: Path, run_cli: RunCli, start: Start, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "retried-twice")
    holder = start(["sleep", "300"])
    claimed = run_cli("claim", attempt["id"], "--worker", "w", "--pid", str(holder.pid))
    token = claimed.stdout.split()[1]
    ended = run_cli("finish", attempt["id"], "--lease", token, "--state", "failed")
    assert ended.exit_code == 0, ended.stderr

    retriers = [
        start([ORCH_BIN, "retry", attempt["id"], "--cooldown", "0", "--json"]) for _ in range(2)
    ]
    codes = sorted(r.wait() for r in retriers)
    assert codes == [0, 16], [r.output() for r in retriers]
    winner = next(r for r in retriers if r.popen.returncode == 0)
    loser = next(r for r in retriers if r.popen.returncode == 16)
    created = json.loads(winner.stdout)["attempt"]
    assert created["attempt_number"] == 2
    line = error_line(loser.stderr)
    assert "has a live attempt" in line or "was created meanwhile" in line, line
    listed = json_out(run_cli("list", "--task", "retried-twice", "--json"))["attempts"]
    mine = [a for a in listed if a["repository"] == attempt["repository"]]
    assert [a["attempt_number"] for a in mine] == [2, 1]
    assert [a["id"] for a in mine] == [created["id"], attempt["id"]]


# -- a worker that was stopped while its lease expired ------------------------------------------


def test_a_stopped_worker_whose_lease_expired_cannot_finish_after_sigcont(
    repo: Path, run_cli: RunCli, start: Start, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "frozen")
    holder = start(["sleep", "300"])
    claimed = start(
        [ORCH_BIN, "claim", attempt["id"], "--worker", "w", "--pid", str(holder.pid)],
        env={"ORCH_LEASE_TTL": "1"},
    )
    assert claimed.wait() == 0, claimed.output()
    token = claimed.stdout.split()[1]
    go = tmp_path / "go"
    late = start(
        [
            "sh",
            "-c",
            f'while [ ! -e "{go}" ]; do sleep 0.02; done; '
            f'exec "{ORCH_BIN}" finish {attempt["id"]} --lease {token} --state succeeded',
        ]
    )
    late.signal(signal.SIGSTOP)
    go.touch()  # it would finish now, but it is stopped

    conf = settings()
    # the lease was 1 s long: judged a few seconds later it has expired (the worker's pid
    # is alive, so only the lease can tell)
    with open_store(conf.database_url, conf.locks_dir, clock=OffsetClock(5)) as later:
        gone = [a.id for a in lifecycle.reap(later, "reaper")]
        assert gone == [attempt["id"]]
        before = later.get(attempt["id"])
        events = later.events(attempt["id"])
        late.signal(signal.SIGCONT)
        assert late.wait() == 13, late.output()
        assert "taken away" in error_line(late.stderr)
        assert later.get(attempt["id"]) == before
        assert later.events(attempt["id"]) == events
        assert before.state is State.WORKER_GONE
        assert before.reason is not None and before.reason.startswith("lease expired")
    assert holder.popen.poll() is None


def test_a_stopped_orch_work_whose_lease_expired_writes_nothing_after_sigcont(
    repo: Path, run_cli: RunCli, start: Start, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "frozen-runtime")
    go = tmp_path / "go"
    worker = start(
        [
            ORCH_BIN,
            "work",
            "--once",
            "--",
            "sh",
            "-c",
            f'while [ ! -e "{go}" ]; do sleep 0.02; done; exit 0',
        ]
    )
    conf = settings()
    with open_store(conf.database_url, conf.locks_dir) as now:
        running = wait_for(
            lambda: (a := now.get(attempt["id"])).agent_pid is not None and a,
            "the agent to start",
        )
    # The worker heartbeats every lease_ttl/3 (10 s): stopped now, it holds no write lock.
    worker.signal(signal.SIGSTOP)
    with open_store(conf.database_url, conf.locks_dir, clock=OffsetClock(conf.lease_ttl + 5)) as s:
        assert [a.id for a in lifecycle.reap(s, "reaper")] == [attempt["id"]]
        # the orphaned agent is stopped by the reaper, not left running in the worktree
        wait_for(
            lambda: not is_running(running.agent_pid, running.agent_started_at),
            "the agent to be stopped",
        )
        gone, events = s.get(attempt["id"]), s.events(attempt["id"])
        go.touch()
        worker.signal(signal.SIGCONT)
        assert worker.wait() == 0, worker.output()
        assert "Traceback" not in worker.stderr
        assert s.get(attempt["id"]) == gone
        assert s.events(attempt["id"]) == events
    assert gone.state is State.WORKER_GONE
    # the lease ends the attempt; its port bundle is released with it
    assert [e.kind for e in events][-2:] == ["worker_gone", "ports_released"]
    assert "finished" not in [e.kind for e in events]
    assert worker.stdout == ""


def test_dispatches_of_one_task_register_its_workspace_at_once(
    store: Store, repository: str
) -> None:
    """Parallel dispatches of one task each map the task to their workspace as they make
    it ready; on PostgreSQL two of them could both find no mapping and both insert one,
    and the loser failed as if its branch belonged to another task (after its attempt was
    ready). The mapping is now written by finish_provisioning, in one statement."""
    import threading

    for round_ in range(12):
        task = f"task-{round_}"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []
        created = [
            store.create_attempt(
                new_attempt(repository, task, attempt_id=f"{round_:02d}{n:06x}"), "d"
            )
            for n in range(6)
        ]

        def register(
            attempt_id: str,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                store.finish_provisioning(attempt_id, Path(f"/inbox/{attempt_id}.json"), "d")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=register, args=(a.id,)) for a in created]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        mapped = store.task_workspace(repository, task)
        assert mapped is not None and mapped.branch_name.startswith(f"orch/{task}-")
        assert mapped.attempt_id in {a.id for a in created}
