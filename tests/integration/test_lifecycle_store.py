"""The store's lifecycle operations on both backends (issue 3, point 1).

Claims, leases, heartbeats, finishing, releasing, cancelling and the fencing that keeps
a worker whose lease was taken away from writing. Lease expiry is driven by an injected
clock, never by sleeping; liveness of local workers is judged on real processes.

Every test runs on SQLite and on PostgreSQL. The PostgreSQL database is shared by every
test of one xdist worker, so each test uses a repository string of its own, its attempts
are older than anyone else's (the clock starts in 2001) and whatever it leaves live is
cancelled afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from orch.attempts import lifecycle
from orch.errors import AttemptNotFound, Conflict, LeaseLost, NotClaimable
from orch.models import Attempt, Finish, Lease, State, WorkerIdentity, WorkspaceStatus
from orch.store import Store, open_store
from orch.system import processes
from tests.support.store import (
    START,
    StepClock,
    claimed,
    new_attempt,
    ready_attempt,
    remote_worker,
    this_process,
)

TTL = 30.0


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def store(store_url: str, isolated_env: Path, clock: StepClock) -> Iterator[Store]:
    with open_store(store_url, isolated_env / "locks", clock=clock) as opened:
        yield opened


def kinds(store: Store, attempt_id: str) -> list[str]:
    return [e.kind for e in store.events(attempt_id)]


def ours(attempts: list[Attempt], repository: str) -> list[Attempt]:
    return [a for a in attempts if a.repository == repository]


# -- claims ----------------------------------------------------------------------------------


def test_claim_a_specific_attempt(store: Store, repository: str, clock: StepClock) -> None:
    attempt = ready_attempt(store, repository)
    claimed_at = clock.tick(5)
    lease = store.claim(remote_worker("w1"), TTL, "worker w1", attempt.id)

    assert lease is not None
    assert lease.token == 1 and lease.attempt.lease_token == 1
    assert lease.expires_at == claimed_at + dt.timedelta(seconds=TTL)
    got = store.get(attempt.id)
    assert got == lease.attempt
    assert got.state is State.RUNNING
    assert got.lease_holder == "w1" and got.worker_host == "elsewhere.invalid"
    assert got.worker is None  # who should take it is unchanged by who took it
    assert got.heartbeat_at == claimed_at and got.lease_expires_at == lease.expires_at
    claimed = store.events(attempt.id)[-1]
    assert (claimed.kind, claimed.actor) == ("claimed", "worker w1")
    assert claimed.detail["lease"] == 1 and claimed.detail["worker"] == "w1"

    with pytest.raises(NotClaimable, match="is running, not queued"):
        store.claim(remote_worker("w2"), TTL, "worker w2", attempt.id)
    assert store.get(attempt.id) == got


def test_claim_refusals_say_why(store: Store, repository: str) -> None:
    provisioning = store.create_attempt(new_attempt(repository, "p"), "dispatcher")
    assigned = ready_attempt(store, repository, "a", worker="w-other")

    with pytest.raises(NotClaimable, match="workspace_status provisioning"):
        store.claim(remote_worker("w1"), TTL, "w1", provisioning.id)
    with pytest.raises(NotClaimable, match=r"assigned to worker 'w-other'.*orch reassign"):
        store.claim(remote_worker("w1"), TTL, "w1", assigned.id)
    with pytest.raises(AttemptNotFound):
        store.claim(remote_worker("w1"), TTL, "w1", "0000dead")
    assert store.get(provisioning.id).state is State.QUEUED
    assert store.get(assigned.id).state is State.QUEUED
    assert kinds(store, assigned.id) == ["created", "provisioned"]


def test_claim_next_takes_unassigned_or_own_attempts_oldest_first(
    store: Store, repository: str, clock: StepClock
) -> None:
    me, other = f"me-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    not_ready = store.create_attempt(new_attempt(repository, "not-ready"), "dispatcher")
    clock.tick()
    unassigned = ready_attempt(store, repository, "first")
    clock.tick()
    theirs = ready_attempt(store, repository, "theirs", worker=other)
    clock.tick()
    mine = ready_attempt(store, repository, "mine", worker=me)
    clock.tick()
    unassigned_later = ready_attempt(store, repository, "later")

    taken = []
    for _ in range(3):
        lease = store.claim(remote_worker(me), TTL, me)
        assert lease is not None
        taken.append(lease.attempt)
    assert [a.id for a in taken] == [unassigned.id, mine.id, unassigned_later.id]
    assert [a.worker for a in taken] == [None, me, None]  # assignment is left as it was
    assert {a.lease_holder for a in taken} == {me}

    # Nothing of this test is left for `me` (PostgreSQL may hold other tests' leftovers).
    rest = store.claim(remote_worker(me), TTL, me)
    assert rest is None or rest.attempt.repository != repository
    assert store.get(theirs.id).state is State.QUEUED
    assert store.get(not_ready.id).state is State.QUEUED

    lease = store.claim(remote_worker(other), TTL, other)
    assert lease is not None and lease.attempt.id == theirs.id


def test_lease_tokens_only_grow(store: Store, repository: str, clock: StepClock) -> None:
    attempt = ready_attempt(store, repository)
    tokens = [store.get(attempt.id).lease_token]

    def step(change: Callable[[], object]) -> None:
        clock.tick()
        change()
        tokens.append(store.get(attempt.id).lease_token)

    lease = store.claim(remote_worker("w1"), TTL, "w1", attempt.id)
    assert lease is not None
    tokens.append(lease.token)
    step(lambda: store.heartbeat(attempt.id, tokens[-1], TTL))
    step(lambda: store.release(attempt.id, tokens[-1], "worktree busy", "w1"))
    step(lambda: store.claim(remote_worker("w1"), TTL, "w1", attempt.id))
    step(lambda: store.reassign(attempt.id, "w2", "operator"))
    step(lambda: store.claim(remote_worker("w2"), TTL, "w2", attempt.id))
    step(lambda: store.cancel(attempt.id, "enough", "operator"))

    # heartbeat keeps the token; every change of holder or end moves it forward
    assert tokens == [0, 1, 1, 2, 3, 4, 5, 6]
    assert kinds(store, attempt.id) == [
        "created",
        "provisioned",
        "claimed",
        "released",
        "claimed",
        "reassigned",
        "claimed",
        "cancelled",
    ]


def test_a_stale_lease_can_neither_heartbeat_nor_finish(
    store: Store, repository: str, clock: StepClock
) -> None:
    attempt = ready_attempt(store, repository)
    old = store.claim(remote_worker("w1"), TTL, "w1", attempt.id)
    assert old is not None
    store.release(old.attempt.id, old.token, "giving it back", "w1")
    new = store.claim(remote_worker("w1"), TTL, "w1", attempt.id)
    assert new is not None and new.token > old.token
    clock.tick()
    before, events = store.get(attempt.id), store.events(attempt.id)

    with pytest.raises(LeaseLost, match=f"lease {old.token} .* taken away"):
        store.heartbeat(attempt.id, old.token, TTL)
    with pytest.raises(LeaseLost):
        store.finish(attempt.id, old.token, State.SUCCEEDED, "w1", 0, "done")
    with pytest.raises(LeaseLost):
        store.release(attempt.id, old.token, "late", "w1")
    with pytest.raises(LeaseLost):
        store.take_messages(attempt.id, old.token, 2)
    with pytest.raises(LeaseLost):
        store.start_run(attempt.id, old.token, "p", ["agent"], "/tmp/log", None)
    assert store.get(attempt.id) == before
    assert store.events(attempt.id) == events
    assert store.runs(attempt.id) == []

    # the current holder is unaffected
    renewed_at = clock.tick(10)
    renewed = store.heartbeat(attempt.id, new.token, TTL)
    assert renewed.expires_at == renewed_at + dt.timedelta(seconds=TTL)
    done = store.finish(attempt.id, new.token, State.SUCCEEDED, "w1", 0, "all good")
    assert (done.state, done.exit_code, done.summary) == (State.SUCCEEDED, 0, "all good")
    assert done.finished_at == renewed_at and done.lease_expires_at is None


def test_heartbeat_and_finish_on_an_unknown_attempt_are_lease_lost(store: Store) -> None:
    with pytest.raises(LeaseLost, match="no longer exists"):
        store.heartbeat("0000dead", 1, TTL)
    with pytest.raises(LeaseLost, match="no longer exists"):
        store.finish("0000dead", 1, State.FAILED, "w")


def test_a_worker_cannot_finish_as_queued_running_or_worker_gone(
    store: Store, repository: str
) -> None:
    attempt, lease = claimed(store, repository, ttl=TTL)
    for state in (State.QUEUED, State.RUNNING, State.WORKER_GONE):
        with pytest.raises(Conflict, match=f"cannot finish an attempt as {state}"):
            store.finish(attempt.id, lease.token, state, "w")
    assert store.get(attempt.id).state is State.RUNNING


def _end_by(how: str, store: Store, attempt: Attempt, token: int, clock: StepClock) -> None:
    if how in ("succeeded", "failed", "timed_out", "cancelled-by-worker"):
        state = State.CANCELLED if how == "cancelled-by-worker" else State(how)
        store.finish(attempt.id, token, state, "w", 1, "ended")
    elif how == "cancelled":
        store.cancel(attempt.id, "operator said so", "operator")
    else:
        clock.tick(TTL + 1)
        gone = lifecycle.reap(store, "reaper")
        assert attempt.id in [a.id for a in gone]


@pytest.mark.parametrize(
    "how", ["succeeded", "failed", "timed_out", "cancelled-by-worker", "cancelled", "worker_gone"]
)
def test_terminal_states_never_change(
    store: Store, repository: str, clock: StepClock, how: str
) -> None:
    attempt, lease = claimed(store, repository, ttl=TTL)
    _end_by(how, store, attempt, lease.token, clock)
    ended, events = store.get(attempt.id), store.events(attempt.id)
    assert ended.terminal and ended.finished_at is not None
    clock.tick()

    for token in {lease.token, ended.lease_token}:
        with pytest.raises(LeaseLost):
            store.finish(attempt.id, token, State.SUCCEEDED, "w", 0)
        with pytest.raises(LeaseLost):
            store.heartbeat(attempt.id, token, TTL)
        with pytest.raises(LeaseLost):
            store.release(attempt.id, token, "late", "w")
        assert store.end_lost_worker(attempt.id, token, "late", "reaper") is None
    again, changed = store.cancel(attempt.id, "too late", "operator")
    assert not changed and again == ended
    with pytest.raises(Conflict, match="cannot be reassigned"):
        store.reassign(attempt.id, "w2", "operator")
    with pytest.raises(NotClaimable, match="not queued"):
        store.claim(remote_worker("w"), TTL, "w", attempt.id)
    with pytest.raises(Conflict, match="takes no more messages"):
        store.add_message(attempt.id, "more", "operator")
    assert attempt.id not in [a.id for a in lifecycle.reap(store, "reaper")]
    assert store.get(attempt.id) == ended
    assert store.events(attempt.id) == events


def test_a_finished_attempt_cannot_be_finished_twice(store: Store, repository: str) -> None:
    attempt, lease = claimed(store, repository, ttl=TTL)
    first = store.finish(attempt.id, lease.token, State.FAILED, "w", 3, "exit code 3")
    with pytest.raises(LeaseLost, match="is failed"):
        store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "second thoughts")
    assert store.get(attempt.id) == first
    assert kinds(store, attempt.id).count("finished") == 1


def test_the_same_finish_tried_again_returns_the_attempt_and_records_nothing(
    store: Store, repository: str
) -> None:
    # a worker whose connection dropped while its finish committed cannot know it did
    attempt, lease = claimed(store, repository, ttl=TTL)
    first = store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done")
    events = store.events(attempt.id)
    assert store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done") == first
    assert store.events(attempt.id) == events
    with pytest.raises(LeaseLost, match="is succeeded"):
        store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "another summary")


# -- lost workers ----------------------------------------------------------------------------


def test_an_expired_lease_ends_as_worker_gone_and_fences_the_old_holder(
    store: Store, repository: str, clock: StepClock
) -> None:
    attempt, lease = claimed(store, repository, ttl=TTL)

    clock.tick(TTL - 1)
    assert attempt.id not in [a.id for a in lifecycle.reap(store, "reaper")]
    store.heartbeat(attempt.id, lease.token, TTL)  # expires at START + 2*TTL - 1 now
    clock.tick(TTL - 0.001)
    assert attempt.id not in [a.id for a in lifecycle.reap(store, "reaper")]
    assert store.get(attempt.id).state is State.RUNNING

    clock.tick(0.001)  # exactly at expiry
    gone = ours(lifecycle.reap(store, "reaper"), repository)
    assert [a.id for a in gone] == [attempt.id]
    after = store.get(attempt.id)
    assert after.state is State.WORKER_GONE
    assert after.reason is not None and after.reason.startswith("lease expired")
    assert after.lease_token > lease.token and after.finished_at == clock.now
    event = store.events(attempt.id)[-1]
    assert (event.kind, event.actor) == ("worker_gone", "reaper")

    with pytest.raises(LeaseLost):
        store.heartbeat(attempt.id, lease.token, TTL)
    with pytest.raises(LeaseLost):
        store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "late result")
    assert store.get(attempt.id) == after


def test_a_dead_local_worker_is_noticed_at_once(store: Store, repository: str) -> None:
    proc = subprocess.Popen(["sleep", "0"])
    started = processes.start_time(proc.pid)  # a zombie until waited for: still has one
    proc.wait()
    assert started is not None
    dead = WorkerIdentity("w", processes.hostname(), proc.pid, started)
    attempt = ready_attempt(store, repository)
    alive = ready_attempt(store, repository, "alive")
    store.claim(dead, TTL, "w", attempt.id)
    store.claim(this_process("w"), TTL, "w", alive.id)

    # the clock has not moved: the lease is valid, only the pid says the worker is gone
    gone = ours(lifecycle.reap(store, "reaper"), repository)
    assert [a.id for a in gone] == [attempt.id]
    after = store.get(attempt.id)
    assert after.state is State.WORKER_GONE
    assert after.reason == f"worker process {proc.pid} on {processes.hostname()} is gone"
    assert store.get(alive.id).state is State.RUNNING


def test_a_reused_pid_counts_as_gone(store: Store, repository: str) -> None:
    """The pid is alive, but it belongs to a process started at another time."""
    me = this_process("w")
    assert me.started_at is not None
    impostor = dataclasses.replace(me, started_at=me.started_at - 1000)
    attempt = ready_attempt(store, repository)
    genuine = ready_attempt(store, repository, "genuine")
    store.claim(impostor, TTL, "w", attempt.id)
    store.claim(me, TTL, "w", genuine.id)

    gone = ours(lifecycle.reap(store, "reaper"), repository)
    assert [a.id for a in gone] == [attempt.id]
    assert store.get(attempt.id).reason == f"worker process {os.getpid()} on {me.host} is gone"
    assert store.get(genuine.id).state is State.RUNNING


def test_a_remote_worker_is_judged_by_its_lease_only(store: Store, repository: str) -> None:
    """A pid on another host means nothing here: no local process may be consulted."""
    elsewhere = WorkerIdentity("w", "elsewhere.invalid", pid=1, started_at=0.0)
    attempt = ready_attempt(store, repository)
    store.claim(elsewhere, TTL, "w", attempt.id)
    assert attempt.id not in [a.id for a in lifecycle.reap(store, "reaper")]
    assert store.get(attempt.id).state is State.RUNNING


def test_reap_loses_to_a_fresher_write(store: Store, repository: str, clock: StepClock) -> None:
    """end_lost_worker is a compare-and-set on the lease judged lost."""
    attempt, lease = claimed(store, repository, ttl=TTL)
    store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0)
    assert store.end_lost_worker(attempt.id, lease.token, "judged lost", "reaper") is None
    assert store.get(attempt.id).state is State.SUCCEEDED


# -- release, cancel, reassign ---------------------------------------------------------------


def test_release_returns_the_attempt_to_queued(
    store: Store, repository: str, clock: StepClock
) -> None:
    attempt = ready_attempt(store, repository, worker="w")
    lease = store.claim(this_process("w"), TTL, "w", attempt.id)
    assert lease is not None
    clock.tick()
    released = store.release(attempt.id, lease.token, "worktree in use by someone", "w")
    assert released.state is State.QUEUED
    assert released.lease_token == lease.token + 1
    assert released.lease_expires_at is None
    assert (released.worker_host, released.worker_pid, released.agent_pid) == (None, None, None)
    assert released.lease_holder is None and released.worker == "w"
    event = store.events(attempt.id)[-1]
    assert event.kind == "released"
    assert event.detail == {"reason": "worktree in use by someone", "lease": lease.token}

    with pytest.raises(LeaseLost):
        store.heartbeat(attempt.id, lease.token, TTL)
    again = store.claim(remote_worker("w"), TTL, "w", attempt.id)
    assert again is not None and again.token == lease.token + 2


def test_release_of_an_unassigned_attempt_leaves_it_unassigned(
    store: Store, repository: str
) -> None:
    attempt, lease = claimed(store, repository, worker="w1", ttl=TTL)
    released = store.release(attempt.id, lease.token, "worktree busy", "w1")
    assert released.worker is None and released.lease_holder is None
    assert store.claim(remote_worker("w2"), TTL, "w2", attempt.id) is not None


def test_cancel_a_queued_or_running_attempt(store: Store, repository: str) -> None:
    queued = ready_attempt(store, repository, "q")
    running, lease = claimed(store, repository, "r", ttl=TTL)

    for attempt, was in ((queued, "queued"), (running, "running")):
        after, changed = store.cancel(attempt.id, "not needed", "operator")
        assert changed and after.state is State.CANCELLED
        assert after.reason == "not needed" and after.finished_at is not None
        event = store.events(attempt.id)[-1]
        assert (event.kind, event.actor) == ("cancelled", "operator")
        assert event.detail == {"reason": "not needed", "was": was}
    with pytest.raises(LeaseLost):
        store.finish(running.id, lease.token, State.SUCCEEDED, "w", 0)
    with pytest.raises(AttemptNotFound):
        store.cancel("0000dead", "x", "operator")


def test_reassign_moves_a_live_attempt_and_fences_the_holder(store: Store, repository: str) -> None:
    attempt = ready_attempt(store, repository, worker="w1")
    lease = store.claim(remote_worker("w1"), TTL, "w1", attempt.id)
    assert lease is not None
    before, after = store.reassign(attempt.id, "w2", "operator")
    assert before.state is State.RUNNING and before.worker == "w1"
    assert after.state is State.QUEUED and after.worker == "w2"
    assert after.lease_token == lease.token + 1 and after.worker_pid is None
    event = store.events(attempt.id)[-1]
    assert event.kind == "reassigned"
    assert event.detail == {"worker": "w2", "previous_worker": "w1", "was": "running"}
    with pytest.raises(LeaseLost):
        store.heartbeat(attempt.id, lease.token, TTL)
    with pytest.raises(NotClaimable, match="assigned to worker 'w2'"):
        store.claim(remote_worker("w1"), TTL, "w1", attempt.id)
    assert store.claim(remote_worker("w2"), TTL, "w2", attempt.id) is not None


# -- follow-ups and runs ---------------------------------------------------------------------


def test_messages_are_delivered_once_in_order_to_the_lease_holder(
    store: Store, repository: str, clock: StepClock
) -> None:
    attempt = ready_attempt(store, repository)
    first = store.add_message(attempt.id, "one", "operator")  # queued attempts take them too
    lease = store.claim(remote_worker("w"), TTL, "w", attempt.id)
    assert lease is not None
    second = store.add_message(attempt.id, "two", "operator")
    run = store.start_run(attempt.id, lease.token, "do it", ["agent", "x"], "/l.log", 4242, 1.5)
    assert (run.number, run.prompt, run.command, run.pid) == (1, "do it", ("agent", "x"), 4242)
    assert store.get(attempt.id).agent_pid == 4242

    delivered_at = clock.tick()
    taken = store.take_messages(attempt.id, lease.token, 2)
    assert [(m.id, m.body, m.run_number) for m in taken] == [
        (first.id, "one", 2),
        (second.id, "two", 2),
    ]
    assert all(m.delivered_at == delivered_at for m in taken)
    assert store.take_messages(attempt.id, lease.token, 3) == []
    assert store.messages(attempt.id) == taken
    store.end_run(attempt.id, 1, 0)
    assert store.runs(attempt.id)[0].exit_code == 0
    assert kinds(store, attempt.id).count("message_queued") == 2
    assert kinds(store, attempt.id).count("messages_delivered") == 1


def test_created_attempts_start_queued_with_lease_zero(store: Store, repository: str) -> None:
    created = store.create_attempt(new_attempt(repository), "dispatcher")
    assert created.state is State.QUEUED and created.lease_token == 0
    assert created.workspace_status is WorkspaceStatus.PROVISIONING
    assert created.created_at == START


# -- finishing one attempt and claiming the next in one transaction ----------------------------


def test_finish_and_claim_ends_one_attempt_and_takes_the_next(
    store: Store, repository: str, clock: StepClock
) -> None:
    me = f"me-{uuid.uuid4().hex[:6]}"
    first = ready_attempt(store, repository, "first", worker=me)
    clock.tick()
    second = ready_attempt(store, repository, "second", worker=me)
    lease = store.claim(remote_worker(me), TTL, me)
    assert lease is not None and lease.attempt.id == first.id

    ended, following = store.finish_and_claim(
        first.id, lease.token, State.SUCCEEDED, me, 0, "ok", remote_worker(me), TTL
    )

    assert ended.id == first.id and ended.state == State.SUCCEEDED and ended.exit_code == 0
    assert following is not None and following.attempt.id == second.id
    assert following.token == 1 and store.get(second.id).state == State.RUNNING
    assert kinds(store, first.id)[-1] == "finished"
    assert kinds(store, second.id)[-1] == "claimed"
    # nothing left: the finish still happens, the claim comes back empty
    last, none = store.finish_and_claim(
        second.id, following.token, State.FAILED, me, 3, "no", remote_worker(me), TTL
    )
    assert last.state == State.FAILED and none is None


def test_finish_and_claim_claims_nothing_when_the_finish_is_refused(
    store: Store, repository: str
) -> None:
    me = f"me-{uuid.uuid4().hex[:6]}"
    first = ready_attempt(store, repository, "first", worker=me)
    waiting = ready_attempt(store, repository, "waiting", worker=me)
    lease = store.claim(remote_worker(me), TTL, me, first.id)
    assert lease is not None
    store.cancel(first.id, "operator", "operator")

    with pytest.raises(LeaseLost):
        store.finish_and_claim(
            first.id, lease.token, State.SUCCEEDED, me, 0, "ok", remote_worker(me), TTL
        )

    assert store.get(first.id).state == State.CANCELLED
    assert store.get(waiting.id).state == State.QUEUED  # the claim rolled back with it
    assert "claimed" not in kinds(store, waiting.id)


# -- batches: several claims, several finishes, one transaction each ---------------------------


def test_claim_many_takes_the_oldest_claimable_attempts_once(
    store: Store, repository: str, clock: StepClock
) -> None:
    me, other = f"me-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    mine = []
    for i in range(4):
        mine.append(ready_attempt(store, repository, f"t{i}", worker=me))
        clock.tick()
    ready_attempt(store, repository, "theirs", worker=other)

    first = store.claim_many(remote_worker(me), TTL, me, 3)
    rest = store.claim_many(remote_worker(me), TTL, me, 3)

    assert [lease.attempt.id for lease in first] == [a.id for a in mine[:3]]
    assert [lease.attempt.id for lease in rest if lease.attempt.repository == repository] == [
        mine[3].id
    ]
    for lease in first:
        assert lease.token == 1 and lease.attempt.state == State.RUNNING
        assert lease.attempt.lease_holder == me
        assert kinds(store, lease.attempt.id)[-1] == "claimed"
    assert store.claim_many(remote_worker(me), TTL, me, 0) == []


def held_fenced_and_ended(store: Store, repository: str) -> tuple[str, list[Lease]]:
    """A worker and four leases it took: the first two still held, the third's attempt
    reassigned to another worker since (fenced), the fourth's finished ("done", 0)."""
    me = f"me-{uuid.uuid4().hex[:6]}"
    attempts = [ready_attempt(store, repository, f"t{i}", worker=me) for i in range(4)]
    leases = [store.claim(remote_worker(me), TTL, me, a.id) for a in attempts]
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 4
    store.reassign(held[2].attempt.id, "someone-else", "operator")
    store.finish(held[3].attempt.id, held[3].token, State.SUCCEEDED, me, 0, "done")
    return me, held


def test_finish_many_ends_each_attempt_or_says_why_not(store: Store, repository: str) -> None:
    me, (ok, failed, fenced, again) = held_fenced_and_ended(store, repository)

    results = store.finish_many(
        [
            Finish(ok.attempt.id, ok.token, State.SUCCEEDED, 0, "done"),
            Finish(failed.attempt.id, failed.token, State.FAILED, 2, "tests fail"),
            Finish(fenced.attempt.id, fenced.token, State.SUCCEEDED, 0, "done"),
            Finish(again.attempt.id, again.token, State.SUCCEEDED, 0, "done"),  # a retry
        ],
        me,
    )

    first, second, third, fourth = results
    assert isinstance(first, Attempt) and first.state == State.SUCCEEDED
    assert first.exit_code == 0 and first.summary == "done"
    assert isinstance(second, Attempt) and second.state == State.FAILED
    assert second.exit_code == 2 and second.summary == "tests fail"
    assert isinstance(third, LeaseLost) and "taken away" in str(third.message)
    assert store.get(fenced.attempt.id).state == State.QUEUED
    assert isinstance(fourth, Attempt) and fourth.state == State.SUCCEEDED
    assert kinds(store, again.attempt.id).count("finished") == 1
    with pytest.raises(Conflict):
        store.finish_many([Finish(ok.attempt.id, ok.token, State.RUNNING)], me)


def test_heartbeat_many_renews_every_held_lease_in_one_statement(
    store: Store, repository: str, clock: StepClock
) -> None:
    _me, (first, second, fenced, ended) = held_fenced_and_ended(store, repository)
    later = clock.tick(10)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        results = store.heartbeat_many(
            [(lease.attempt.id, lease.token) for lease in (first, fenced, second, ended)], TTL
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)

    assert len(statements) == 1, statements  # every lease in one UPDATE
    renewed_first, taken, renewed_second, over = results
    expires = later + dt.timedelta(seconds=TTL)
    for renewed, lease in ((renewed_first, first), (renewed_second, second)):
        assert isinstance(renewed, Lease)
        assert (renewed.token, renewed.expires_at) == (lease.token, expires)
        assert store.get(lease.attempt.id).lease_expires_at == expires
        assert store.get(lease.attempt.id).heartbeat_at == later
    assert isinstance(taken, LeaseLost) and "taken away" in str(taken.message)
    assert isinstance(over, LeaseLost) and "succeeded" in str(over.message)
    assert store.get(fenced.attempt.id).state == State.QUEUED  # nothing written to either
    assert store.get(ended.attempt.id).lease_expires_at is None
    assert store.heartbeat_many([], TTL) == []
