"""Domain objects: the attempt, its events and runs, the queues, and the words for their
states. Frozen dataclasses only; the store builds them from rows and nothing outside the
store ever sees an ORM object. Standard library only.

One module per concept (``states``, ``attempt``, ``events``, ``runs``, ``queues``,
``serial``, ``counts``); this package names them all, so ``from orch.models import X`` is
the one way in.
"""

from __future__ import annotations

from orch.models.attempt import (
    Attempt,
    ChangeSummary,
    CheckoutSpec,
    Finish,
    Landed,
    Lease,
    NewAttempt,
    PortBundle,
    TaskWorkspace,
    WorkerIdentity,
)
from orch.models.counts import COUNT_CAP, capped, count_text
from orch.models.events import EVENT_STATES, AttemptEvent, DeliveryState, EventDelivery, event_state
from orch.models.queues import (
    ENTRY_MAX,
    LAND_WAITING_STATES,
    LandQueueState,
    QueuedLand,
    QueuedTask,
    TaskState,
)
from orch.models.runs import Message, Run, RunKind, Usage
from orch.models.serial import plain
from orch.models.states import (
    CLEANED_UP,
    HOLDS_WORKTREE,
    LIVE_STATES,
    OCCUPIES_WORKTREE,
    READY_TO_RUN,
    TERMINAL_STATES,
    WORKER_END_STATES,
    State,
    WorkspaceStatus,
)

__all__ = [
    "CLEANED_UP",
    "COUNT_CAP",
    "ENTRY_MAX",
    "EVENT_STATES",
    "HOLDS_WORKTREE",
    "LAND_WAITING_STATES",
    "LIVE_STATES",
    "OCCUPIES_WORKTREE",
    "READY_TO_RUN",
    "TERMINAL_STATES",
    "WORKER_END_STATES",
    "Attempt",
    "AttemptEvent",
    "ChangeSummary",
    "CheckoutSpec",
    "DeliveryState",
    "EventDelivery",
    "Finish",
    "LandQueueState",
    "Landed",
    "Lease",
    "Message",
    "NewAttempt",
    "PortBundle",
    "QueuedLand",
    "QueuedTask",
    "Run",
    "RunKind",
    "State",
    "TaskState",
    "TaskWorkspace",
    "Usage",
    "WorkerIdentity",
    "WorkspaceStatus",
    "capped",
    "count_text",
    "event_state",
    "plain",
]
