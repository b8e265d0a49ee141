"""The worker's heartbeat thread against a stand-in store: it rides out an outage and keeps
beating, but any other store error stops it and is kept for the worker to report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from orch.attempts.heartbeat import Heartbeat
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
