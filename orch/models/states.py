"""The words for an attempt's state and its workspace's status, and the sets of them
that rules are written with (every predicate is a method of its enum).

Standard library only.
"""

from __future__ import annotations

import enum


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
        """Ended for good: a terminal state never changes."""
        return self in TERMINAL_STATES

    @property
    def live(self) -> bool:
        """Not ended yet (queued or running): it may still be claimed, run or cancelled."""
        return self not in TERMINAL_STATES

    @property
    def worker_end(self) -> bool:
        """A state a worker may finish an attempt as (``worker_gone`` is judged by others)."""
        return self in WORKER_END_STATES


# The sets behind the predicates, each written once; the store's SQL reads them too.


TERMINAL_STATES = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT, State.WORKER_GONE}
)


LIVE_STATES = frozenset(set(State) - TERMINAL_STATES)
# in the enum's order, so that ``orch finish --state`` lists them the same way every time


WORKER_END_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT)


class WorkspaceStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    REMOVED = "removed"
    ARCHIVED = "archived"
    REUSED = "reused"
    SKIPPED_IN_WORKTREE = "skipped-in-worktree"
    SKIPPED_NOT_GIT = "skipped-not-git"
    PENDING = "pending"  # waiting for a worker host to provision it in its own clone

    @property
    def ready_to_run(self) -> bool:
        """A worker can start on the attempt where its workspace is: a worktree made or
        reused, or provisioning skipped (a ``pending`` one is provisioned by its claimant)."""
        return self in READY_TO_RUN

    @property
    def holds_worktree(self) -> bool:
        """A worktree orch made (or reused) is there for the attempt: cleanup removes it,
        doctor checks it is still on disk."""
        return self in HOLDS_WORKTREE

    @property
    def occupies_worktree(self) -> bool:
        """The worktree's path is taken: it is being made, or it is there."""
        return self in OCCUPIES_WORKTREE

    @property
    def cleaned_up(self) -> bool:
        """The worktree is gone for good (its work saved first when ``archived``)."""
        return self in CLEANED_UP


HOLDS_WORKTREE = frozenset({WorkspaceStatus.READY, WorkspaceStatus.REUSED})


OCCUPIES_WORKTREE = HOLDS_WORKTREE | {WorkspaceStatus.PROVISIONING}


READY_TO_RUN = HOLDS_WORKTREE | {
    WorkspaceStatus.SKIPPED_IN_WORKTREE,
    WorkspaceStatus.SKIPPED_NOT_GIT,
}


CLEANED_UP = frozenset({WorkspaceStatus.REMOVED, WorkspaceStatus.ARCHIVED})
