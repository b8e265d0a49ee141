"""An attempt's events (the outbox sinks are fed from) and their deliveries to sinks.

Standard library only.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from orch.models.serial import plain
from orch.models.states import State
from orch.record import record

# The event kinds that move an attempt into a state, each always into the same one; a
# ``finished`` or ``created`` event names its state in its detail. Read by the store when
# it writes an event (its ``state``), so that a sink subscribing to ``succeeded`` gets it.
EVENT_STATES: dict[str, State] = {
    "claimed": State.RUNNING,
    "released": State.QUEUED,
    "reassigned": State.QUEUED,
    "cancelled": State.CANCELLED,
    "worker_gone": State.WORKER_GONE,
    "failed_before_claim": State.FAILED,
    "provisioning_failed": State.FAILED,
}


def event_state(kind: str, detail: dict[str, Any]) -> State | None:
    """The state an event of ``kind`` moved its attempt into; None when it moved none."""
    if kind in ("finished", "created"):
        try:
            return State(detail["state"])
        except (KeyError, ValueError):
            return None
    return EVENT_STATES.get(kind)


@record
class AttemptEvent:
    """One thing that happened to an attempt, in the order the store recorded it."""

    id: int
    attempt_id: str
    kind: str
    actor: str
    detail: dict[str, Any]
    created_at: dt.datetime
    state: State | None = None  # the state this event moved the attempt into, if any

    @property
    def kinds(self) -> frozenset[str]:
        """The names a sink's ``on`` may give to subscribe to this event: its kind, and
        the state it moved the attempt into."""
        return frozenset({self.kind, str(self.state)} if self.state else {self.kind})

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # not delivered yet: due at next_try_at
    DELIVERED = "delivered"
    FAILED = "failed"  # failed for good (tries exhausted, or refused): retried by hand only
    SKIPPED = "skipped"  # nothing to deliver with on this machine (no notifier)


@record
class EventDelivery:
    """One event for one sink: delivered once, or failed for good and visible."""

    id: int
    event_id: int
    attempt_id: str
    sink: str
    state: DeliveryState
    tries: int
    next_try_at: dt.datetime
    delivered_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    kind: str = ""  # the event's kind, when read with it

    @property
    def key(self) -> str:
        """The idempotency key every delivery of this event to this sink carries."""
        return f"{self.event_id}:{self.sink}"

    def to_dict(self) -> dict[str, Any]:
        return {**plain(self), "key": self.key}
