"""The worker's heartbeat threads against a stand-in store: they ride out an outage and keep
beating, but any other store error stops them and is kept for the worker to report.
``Heartbeats`` (``orch work --concurrency N``) beats every held lease in one call, and a
lease lost among them, or let go, is beaten no more; the store's one statement itself
is tested on both databases (``test_lifecycle_store``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from orch.attempts.heartbeat import Heartbeat, Heartbeats, HeldLease
from orch.errors import LeaseLost, StoreError, StoreUnavailable
from orch.models import Lease, State
from tests.support.records import NOW, an_attempt

TTL = 0.15  # a beat every 50 ms


def lease() -> Lease:
    return Lease(attempt=an_attempt(state=State.RUNNING), token=1, expires_at=NOW)


class Store:
    """Answers heartbeats with what ``script`` says for each call (None: renewed)."""

    def __init__(self, script: Callable[[int], Exception | None]) -> None:
        self.script, self.calls = script, 0

    def heartbeat(self, attempt_id: str, token: int, ttl: float) -> None:
        self.calls += 1
        error = self.script(self.calls)
        if error is not None:
            raise error


def beat_until(store: Store, done: Callable[[], bool], lost: threading.Event) -> Heartbeat:
    beat = Heartbeat(cast(Any, store), lease(), TTL, lost)
    beat.start()
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    beat.stopped.set()
    beat.join(5)
    assert not beat.is_alive()
    return beat


def test_an_outage_is_ridden_out_and_the_beats_go_on() -> None:
    store = Store(lambda n: StoreUnavailable("gone") if n <= 6 else None)
    lost = threading.Event()
    beat = beat_until(store, lambda: store.calls >= 9, lost)
    assert store.calls >= 9
    assert beat.failed is None and not lost.is_set()


def test_any_other_store_error_stops_the_beats_and_is_kept() -> None:
    broken = StoreError("attempt store: a broken statement")
    store = Store(lambda n: broken if n == 2 else None)
    lost = threading.Event()
    beat = beat_until(store, lost.is_set, lost)
    assert lost.is_set()
    assert beat.failed is broken
    assert store.calls == 2, "the beats went on after an error that is no outage"


def test_a_lost_lease_stops_the_beats() -> None:
    store = Store(lambda n: LeaseLost("taken") if n == 1 else None)
    lost = threading.Event()
    beat = beat_until(store, lost.is_set, lost)
    assert lost.is_set() and beat.failed is None and store.calls == 1


# -- Heartbeats: every held lease in one call --------------------------------------------------


class Beats:
    """Answers ``heartbeat_many`` as ``script`` says for each call: an error for the call,
    or the ids whose lease is lost (the others renewed)."""

    def __init__(self, script: Callable[[int], Exception | set[str]]) -> None:
        self.script = script
        self.calls: list[list[str]] = []  # the ids in each call

    def heartbeat_many(self, held: list[tuple[str, int]], ttl: float) -> list[Any]:
        self.calls.append([attempt_id for attempt_id, _token in held])
        answer = self.script(len(self.calls))
        if isinstance(answer, Exception):
            raise answer
        return [LeaseLost(i) if i in answer else Lease(an_attempt(id=i), t, NOW) for i, t in held]


def held_until(
    store: Beats, done: Callable[[list[HeldLease]], bool], let_go_first: bool = False
) -> list[HeldLease]:
    """Two leases held through one ``Heartbeats`` (the first let go before any beat when
    ``let_go_first``), beaten until ``done``."""
    beats = Heartbeats(cast(Any, store), TTL)
    held = [
        beats.hold(Lease(an_attempt(id=i, state=State.RUNNING), 1, NOW), threading.Event())
        for i in ("aaaa0001", "aaaa0002")
    ]
    if let_go_first:
        held[0].stop()
    beats.start()
    deadline = time.monotonic() + 10
    while not done(held) and time.monotonic() < deadline:
        time.sleep(0.01)
    beats.close()
    assert not beats.is_alive()
    return held


def test_a_lease_lost_among_many_stops_only_its_own_beats() -> None:
    store = Beats(lambda n: {"aaaa0001"} if n == 2 else set())
    first, second = held_until(store, lambda _held: len(store.calls) >= 5)
    assert first.lost.is_set() and first.failed is None
    assert not second.lost.is_set() and second.failed is None
    assert store.calls[:2] == [["aaaa0001", "aaaa0002"]] * 2  # one call for both
    assert all(call == ["aaaa0002"] for call in store.calls[2:])


def test_an_outage_is_ridden_out_for_every_lease_held() -> None:
    store = Beats(lambda n: StoreUnavailable("gone") if n <= 4 else set())
    first, second = held_until(store, lambda _held: len(store.calls) >= 7)
    assert not first.lost.is_set() and not second.lost.is_set()
    assert store.calls[-1] == ["aaaa0001", "aaaa0002"]


def test_any_other_store_error_stops_the_beats_of_every_lease_held() -> None:
    broken = StoreError("attempt store: a broken statement")
    store = Beats(lambda n: broken if n == 2 else set())
    held = held_until(store, lambda held: all(h.lost.is_set() for h in held))
    assert all(h.lost.is_set() and h.failed is broken for h in held)
    assert len(store.calls) == 2, "the beats went on after an error that is no outage"


def test_a_lease_let_go_is_beaten_no_more_and_told_nothing() -> None:
    store = Beats(lambda n: {"aaaa0001"})  # lost, had it still been held
    gone, kept = held_until(store, lambda _held: len(store.calls) >= 3, let_go_first=True)
    assert store.calls[:3] == [["aaaa0002"]] * 3
    assert not gone.lost.is_set() and not kept.lost.is_set()
