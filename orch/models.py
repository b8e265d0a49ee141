"""Domain objects: the attempt, its events, and the words for their states.

Frozen dataclasses only; the store builds them from rows and nothing outside the store
ever sees an ORM object. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any


class State(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    WORKER_GONE = "worker_gone"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT, State.WORKER_GONE}
)


class WorkspaceStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    REMOVED = "removed"
    ARCHIVED = "archived"
    REUSED = "reused"
    SKIPPED_IN_WORKTREE = "skipped-in-worktree"
    SKIPPED_NOT_GIT = "skipped-not-git"


@dataclasses.dataclass(frozen=True)
class Attempt:
    id: str
    task_key: str
    attempt_number: int
    state: State
    workspace_status: WorkspaceStatus
    repository: str
    base_ref: str
    base_commit: str | None
    branch_name: str | None
    worktree_path: str | None
    worker: str | None
    payload_path: str | None
    prompt: str
    reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["state"] = str(self.state)
        out["workspace_status"] = str(self.workspace_status)
        out["created_at"] = self.created_at.isoformat()
        out["updated_at"] = self.updated_at.isoformat()
        return out


@dataclasses.dataclass(frozen=True)
class AttemptEvent:
    id: int
    attempt_id: str
    kind: str
    actor: str
    detail: dict[str, Any]
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return out


@dataclasses.dataclass(frozen=True)
class NewAttempt:
    """What dispatch knows before the store assigns the attempt number."""

    id: str
    task_key: str
    repository: str
    base_ref: str
    base_commit: str
    branch_name: str
    worktree_path: str
    worker: str | None
    prompt: str
