"""The two queues the loop of ``orch serve`` works through: submitted tasks and lands.

Standard library only.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from orch.models.serial import plain
from orch.record import record

ENTRY_MAX = 2**31 - 1  # the queues' entry numbers at most (an integer column on PostgreSQL)


class TaskState(enum.StrEnum):
    """Where a submitted task is in the queue ``orch serve`` works through."""

    READY = "ready"  # waiting to be dispatched
    DISPATCHING = "dispatching"  # the loop is creating its attempt right now
    DISPATCHED = "dispatched"  # its attempts exist; a lost worker's lone attempt is retried
    DONE = "done"  # its attempts ended (a lone one not as worker_gone) or cannot be retried
    FAILED = "failed"  # dispatching it failed (the reason says why)

    @property
    def finished(self) -> bool:
        """Done with for good: the task never changes again (a year of them is history)."""
        return self in (TaskState.DONE, TaskState.FAILED)


@record
class QueuedTask:
    """A task submitted with ``orch submit``: recorded, not provisioned."""

    id: int
    task_key: str
    repository: str
    base_ref: str | None
    prompt: str
    workers: tuple[str, ...]  # named with --worker, in order; empty: any worker
    attempts: int  # made by one dispatch (best-of-N: N from one base commit)
    state: TaskState
    attempt_id: str | None  # the attempt it follows (best-of-N: the first made)
    attempt_ids: tuple[str, ...] | None  # best-of-N: every attempt its dispatch made
    reason: str | None
    actor: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def made(self) -> tuple[str, ...]:
        """The attempts it follows: every one a best-of-N dispatch made, else its one."""
        if self.attempt_ids:
            return self.attempt_ids
        return (self.attempt_id,) if self.attempt_id else ()

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        out["state"] = str(self.state)
        return out


class LandQueueState(enum.StrEnum):
    """Where a land queued with ``orch land --queue`` is in the loop's land queue."""

    QUEUED = "queued"  # waiting for the loop
    LANDING = "landing"  # the loop is landing it right now
    DONE = "done"  # the loop landed it, or it had already landed (``result`` says which)
    FAILED = "failed"  # it did not land (``result``: conflict, check failed, refused, ...)

    @property
    def waiting(self) -> bool:
        return self in LAND_WAITING_STATES


# the states of a land still to be landed: written once, the store's SQL reads it too
LAND_WAITING_STATES = frozenset({LandQueueState.QUEUED, LandQueueState.LANDING})


@record
class QueuedLand:
    """A land waiting in (or gone through) ``orch serve``'s land queue, with its result."""

    id: int
    attempt_id: str
    repository: str
    host: str  # the host whose loop lands it (where it was queued)
    into_branch: str | None  # the target asked for (None: the attempt's own, resolved at landing)
    strategy: str
    message: str | None
    run_check: bool
    keep: bool
    resolve: bool
    state: LandQueueState
    result: str | None  # landed, already landed, conflict, check failed, refused, failed
    target: str | None  # the branch it landed (or would have landed) into
    landed_commit: str | None  # the target's new commit
    paths: list[str] | None  # a conflict's paths (the first 50)
    exit_code: int | None  # what ``orch land`` would have exited with
    reason: str | None  # the one line that says why it did not land
    actor: str
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        out["state"] = str(self.state)
        return out
