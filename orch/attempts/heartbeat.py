"""The worker's heartbeat: a thread that renews an attempt's lease while its agent runs.

Rides out a store outage with the one helper (``orch.outage.ride_out``); never touches
the agent itself (the worker stops it when ``lost`` is set).
"""

from __future__ import annotations

import dataclasses
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
