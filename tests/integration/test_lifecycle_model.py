"""The store's lifecycle against a small model (issue 3, point 9).

A Hypothesis state machine drives the real store (SQLite, an injected clock it advances)
through dispatch-like creates, retries, claims, heartbeats, finishes, releases, cancels,
reassigns and lease expiry with reaping, and compares every attempt with the model after
every step. Invariants checked throughout: the store agrees with the model; terminal
states never change; lease tokens only grow; every change appends an event (and a refused
operation appends none); a retry never creates a second live attempt of its task.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from orch.attempts import lifecycle
from orch.errors import Conflict, LeaseLost, NotClaimable, RetryRefused
from orch.models import TERMINAL_STATES, State
from orch.store import Store, open_store
from tests.support.store import StepClock, new_attempt, remote_worker

TTL = 30.0
TASKS = st.sampled_from(["alpha", "beta"])
WORKERS = st.sampled_from(["w1", "w2"])
END_STATES = st.sampled_from([State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT])


@dataclasses.dataclass
class Modelled:
    id: str
    task: str
    number: int
    seq: int  # creation order; the clock moves on between creates, so claim order too
    worker: str | None
    by_retry: bool
    state: State = State.QUEUED
    token: int = 0
    expires: dt.datetime | None = None
    holder: str | None = None  # the worker holding the lease (``worker`` is who should)
    finished: tuple[State, int] | None = None  # how the lease holder finished it

    @property
    def live(self) -> bool:
        return self.state in (State.QUEUED, State.RUNNING)


class LifecycleMachine(RuleBasedStateMachine):
    store: Store  # set by the test: one store for every example, never closed in between
    clock: StepClock

    attempts = Bundle("attempts")

    def __init__(self) -> None:
        super().__init__()
        self.repository = f"/repos/{uuid.uuid4().hex}"
        self.model: dict[str, Modelled] = {}
        self.seen: dict[str, tuple[State, int, str | None, int]] = {}

    @initialize()
    def nothing_live_from_earlier_examples(self) -> None:
        assert self.store.list_attempts(states=(State.QUEUED, State.RUNNING)) == []

    # -- creating ----------------------------------------------------------------------------

    def _insert(self, task: str, worker: str | None, retry_of: int | None) -> Modelled:
        self.clock.tick()
        new = new_attempt(self.repository, task, worker)
        created = self.store.create_attempt(new, "dispatcher", retry_of=retry_of)
        self.store.finish_provisioning(created.id, Path(f"/inbox/{new.id}.json"), "dispatcher")
        numbers = [a.number for a in self.model.values() if a.task == task]
        assert created.attempt_number == max(numbers, default=0) + 1
        modelled = Modelled(
            new.id, task, created.attempt_number, len(self.model), worker, retry_of is not None
        )
        self.model[new.id] = modelled
        return modelled

    @rule(target=attempts, task=TASKS, worker=st.one_of(st.none(), WORKERS))
    def dispatch(self, task: str, worker: str | None) -> str:
        """A plain dispatch: parallel attempts of one task are allowed on purpose."""
        return self._insert(task, worker, None).id

    @rule(target=attempts, task=TASKS, stale=st.booleans())
    def retry(self, task: str, stale: bool) -> object:
        mine = [a for a in self.model.values() if a.task == task]
        if not mine:
            return multiple()
        latest = max(a.number for a in mine)
        retry_of = latest - 1 if stale else latest
        if any(a.live for a in mine) or retry_of != latest:
            with pytest.raises(RetryRefused):
                self._insert(task, None, retry_of)
            return multiple()
        return self._insert(task, None, retry_of).id

    # -- the worker's side -------------------------------------------------------------------

    def _claimed(self, modelled: Modelled, name: str) -> None:
        modelled.state, modelled.token, modelled.holder = State.RUNNING, modelled.token + 1, name
        modelled.expires = self.clock.now + dt.timedelta(seconds=TTL)

    @rule(attempt=attempts, name=WORKERS)
    def claim_this(self, attempt: str, name: str) -> None:
        modelled = self.model[attempt]
        if modelled.state is State.QUEUED and modelled.worker in (None, name):
            lease = self.store.claim(remote_worker(name), TTL, name, attempt)
            assert lease is not None and lease.token == modelled.token + 1
            self._claimed(modelled, name)
        else:
            with pytest.raises(NotClaimable):
                self.store.claim(remote_worker(name), TTL, name, attempt)

    @rule(name=WORKERS)
    def claim_next(self, name: str) -> None:
        candidates = sorted(
            (
                a
                for a in self.model.values()
                if a.state is State.QUEUED and a.worker in (None, name)
            ),
            key=lambda a: a.seq,
        )
        lease = self.store.claim(remote_worker(name), TTL, name)
        if not candidates:
            assert lease is None
            return
        assert lease is not None and lease.attempt.id == candidates[0].id
        self._claimed(candidates[0], name)

    def _holds(self, modelled: Modelled, token: int) -> bool:
        return modelled.state is State.RUNNING and token == modelled.token

    @rule(attempt=attempts, stale=st.booleans())
    def heartbeat(self, attempt: str, stale: bool) -> None:
        modelled = self.model[attempt]
        token = modelled.token - 1 if stale else modelled.token
        if self._holds(modelled, token):
            lease = self.store.heartbeat(attempt, token, TTL)
            modelled.expires = lease.expires_at
            assert modelled.expires == self.clock.now + dt.timedelta(seconds=TTL)
        else:
            with pytest.raises(LeaseLost):
                self.store.heartbeat(attempt, token, TTL)

    @rule(attempt=attempts, state=END_STATES, stale=st.booleans())
    def finish(self, attempt: str, state: State, stale: bool) -> None:
        modelled = self.model[attempt]
        token = modelled.token - 1 if stale else modelled.token
        if self._holds(modelled, token):
            self.store.finish(attempt, token, state, "worker", 0)
            modelled.state, modelled.expires = state, None
            modelled.finished = (state, token)
        elif modelled.finished == (state, token):
            # the same finish again (its answer was lost): the attempt as it ended
            assert self.store.finish(attempt, token, state, "worker", 0).state is state
        else:
            with pytest.raises(LeaseLost):
                self.store.finish(attempt, token, state, "worker", 0)

    @rule(attempt=attempts, stale=st.booleans())
    def release(self, attempt: str, stale: bool) -> None:
        modelled = self.model[attempt]
        token = modelled.token - 1 if stale else modelled.token
        if self._holds(modelled, token):
            self.store.release(attempt, token, "worktree busy", "worker")
            modelled.state, modelled.token, modelled.expires = State.QUEUED, token + 1, None
            modelled.holder = None
        else:
            with pytest.raises(LeaseLost):
                self.store.release(attempt, token, "worktree busy", "worker")

    # -- the operator's side -----------------------------------------------------------------

    @rule(attempt=attempts)
    def cancel(self, attempt: str) -> None:
        modelled = self.model[attempt]
        after, changed = self.store.cancel(attempt, "operator said so", "operator")
        assert changed == modelled.live
        if changed:
            modelled.state, modelled.token, modelled.expires = (
                State.CANCELLED,
                modelled.token + 1,
                None,
            )
        assert after.state is modelled.state

    @rule(attempt=attempts, name=WORKERS)
    def reassign(self, attempt: str, name: str) -> None:
        modelled = self.model[attempt]
        if not modelled.live:
            with pytest.raises(Conflict):
                self.store.reassign(attempt, name, "operator")
            return
        self.store.reassign(attempt, name, "operator")
        modelled.state, modelled.token, modelled.worker = State.QUEUED, modelled.token + 1, name
        modelled.expires, modelled.holder = None, None

    @rule(seconds=st.sampled_from([1.0, 10.0, TTL, TTL + 1]))
    def time_passes_and_lost_workers_are_reaped(self, seconds: float) -> None:
        now = self.clock.tick(seconds)
        expected = {
            a.id
            for a in self.model.values()
            if a.state is State.RUNNING and a.expires is not None and a.expires <= now
        }
        gone = {a.id for a in lifecycle.reap(self.store, "reaper")}
        assert gone == expected
        for attempt_id in gone:
            modelled = self.model[attempt_id]
            modelled.state, modelled.token, modelled.expires = (
                State.WORKER_GONE,
                modelled.token + 1,
                None,
            )

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        stored = {a.id: a for a in self.store.get_many(list(self.model))}
        assert set(stored) == set(self.model)
        for attempt_id, modelled in self.model.items():
            actual = stored[attempt_id]
            assert (actual.state, actual.lease_token, actual.worker, actual.lease_holder) == (
                modelled.state,
                modelled.token,
                modelled.worker,
                modelled.holder,
            ), (attempt_id, modelled)
            assert actual.attempt_number == modelled.number
            if modelled.state is State.RUNNING:
                assert actual.lease_expires_at == modelled.expires

    @invariant()
    def terminal_states_never_change_tokens_only_grow_and_changes_leave_events(self) -> None:
        for attempt in self.store.get_many(list(self.model)):
            events = len(self.store.events(attempt.id))
            now = (attempt.state, attempt.lease_token, attempt.worker, events)
            before = self.seen.get(attempt.id)
            self.seen[attempt.id] = now
            if before is None:
                continue
            state, token, worker, counted = before
            if state in TERMINAL_STATES:
                assert attempt.state is state
            assert attempt.lease_token >= token
            if (attempt.state, attempt.lease_token, attempt.worker) != (state, token, worker):
                assert events > counted, (attempt.id, before, now)
            else:
                assert events == counted, (attempt.id, before, now)

    @invariant()
    def a_retry_never_runs_beside_a_live_attempt(self) -> None:
        for task in {a.task for a in self.model.values()}:
            live = sorted(
                (a for a in self.model.values() if a.task == task and a.live), key=lambda a: a.seq
            )
            retried = [a for a in live if a.by_retry]
            assert len(retried) <= 1
            if retried:  # only dispatches made after it, on purpose, may run beside it
                assert all(a.seq > retried[0].seq for a in live if a is not retried[0])

    def teardown(self) -> None:
        for attempt in self.store.list_attempts(
            states=(State.QUEUED, State.RUNNING), repository=self.repository
        ):
            self.store.cancel(attempt.id, "end of example", "teardown")


@pytest.fixture
def model_store(isolated_env: Path) -> Iterator[tuple[Store, StepClock]]:
    clock = StepClock()
    url = f"sqlite:///{isolated_env / 'model.db'}"
    with open_store(url, isolated_env / "locks", clock=clock) as store:
        yield store, clock


def test_the_store_follows_the_lifecycle_model(model_store: tuple[Store, StepClock]) -> None:
    store, clock = model_store
    machine = type("BoundLifecycleMachine", (LifecycleMachine,), {"store": store, "clock": clock})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
