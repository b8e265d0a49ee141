"""The worker's heartbeat: a thread that renews an attempt's lease while its agent runs.

``Heartbeat`` beats one lease (``orch work``); ``Heartbeats`` beats every lease of a
worker that runs several attempts at once (``orch work --concurrency N``) in one
statement per beat. Both ride out a store outage with the one helper
(``orch.outage.ride_out``) and never touch an agent itself (the worker stops it when its
``lost`` is set).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import TYPE_CHECKING

from orch.errors import LeaseLost, StoreError, StoreUnavailable
from orch.models import Lease
from orch.outage import STORE_PATIENCE, ride_out

if TYPE_CHECKING:
    from orch.store import Store


class Heartbeat(threading.Thread):
    """Renews the lease every third of its time to live while the agent runs.

    An outage of the store is ridden out (a beat is tried again with back-off for up to a
    lease's time), and past that the beats simply go on: the lease's own expiry decides
    whether the outage cost the attempt. Any other store error stops the beats, and the
    agent with them (``lost``), and is kept in ``failed`` for the worker to report."""

    def __init__(self, store: Store, lease: Lease, ttl: float, lost: threading.Event) -> None:
        super().__init__(name=f"heartbeat-{lease.attempt.id}", daemon=True)
        self.store, self.lease, self.ttl, self.lost = store, lease, ttl, lost
        self.stopped = threading.Event()
        self.failed: StoreError | None = None

    def run(self) -> None:
        interval = max(0.05, self.ttl / 3)
        patience = dataclasses.replace(STORE_PATIENCE, limit=self.ttl)
        while not self.stopped.wait(interval):
            try:
                ride_out(self._beat, patience, sleep=self.stopped.wait)
            except LeaseLost:
                self.lost.set()
                return
            except StoreUnavailable:
                continue  # the lease's own expiry decides if this outage lasted too long
            except StoreError as exc:
                self.failed = exc
                self.lost.set()
                return

    def _beat(self) -> None:
        self.store.heartbeat(self.lease.attempt.id, self.lease.token, self.ttl)

    def stop(self) -> None:
        """No more beats; returns once the thread has ended (``failed`` is final then)."""
        self.stopped.set()
        self.join()


@dataclasses.dataclass(eq=False)
class HeldLease:
    """One lease among those ``Heartbeats`` renews, as its attempt's worker sees it."""

    beats: Heartbeats
    lease: Lease
    lost: threading.Event
    failed: StoreError | None = None

    def stop(self) -> None:
        """No more beats for this lease; ``failed`` is final once this returns."""
        self.beats.let_go(self)


class Heartbeats(threading.Thread):
    """Renews every lease held through it, every third of their time to live, with one
    statement (``Store.heartbeat_many``): N agents cost one short transaction per beat,
    not N.

    Each lease is judged on its own: a lease taken away sets only its own ``lost`` (its
    agent alone is stopped) and is beaten no more. An outage is ridden out as by
    ``Heartbeat``; any other store error stops the beats of every lease it held then,
    kept in each one's ``failed``."""

    def __init__(self, store: Store, ttl: float) -> None:
        super().__init__(name="heartbeats", daemon=True)
        self.store, self.ttl = store, ttl
        self.stopped = threading.Event()
        self._held: dict[str, HeldLease] = {}  # attempt id -> its lease
        self._lock = threading.Lock()

    def hold(self, lease: Lease, lost: threading.Event) -> HeldLease:
        """Beat ``lease`` from the next beat on, until its ``stop``."""
        held = HeldLease(self, lease, lost)
        with self._lock:
            self._held[lease.attempt.id] = held
        return held

    def let_go(self, held: HeldLease) -> None:
        with self._lock:
            if self._held.get(held.lease.attempt.id) is held:
                del self._held[held.lease.attempt.id]

    def close(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        interval = max(0.05, self.ttl / 3)
        patience = dataclasses.replace(STORE_PATIENCE, limit=self.ttl)
        while not self.stopped.wait(interval):
            with self._lock:
                held = list(self._held.values())
            if not held:
                continue
            beat = functools.partial(
                self.store.heartbeat_many,
                [(h.lease.attempt.id, h.lease.token) for h in held],
                self.ttl,
            )
            try:
                results = ride_out(beat, patience, sleep=self.stopped.wait)
            except StoreUnavailable:
                continue  # each lease's own expiry decides if this outage lasted too long
            except StoreError as exc:
                self._drop(held, exc)
                continue
            self._drop([h for h, r in zip(held, results, strict=True) if isinstance(r, LeaseLost)])

    def _drop(self, held: list[HeldLease], failed: StoreError | None = None) -> None:
        """Beat these no more and tell their workers (unless they stopped meanwhile)."""
        with self._lock:
            for one in held:
                if self._held.get(one.lease.attempt.id) is not one:
                    continue  # its agent ended meanwhile: nothing to tell
                del self._held[one.lease.attempt.id]
                one.failed = failed
                one.lost.set()
