"""Domain objects: the attempt, its events, and the words for their states.

Frozen dataclasses only; the store builds them from rows and nothing outside the store
ever sees an ORM object. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable
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


def plain(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict for JSON: ``dataclasses.asdict``, with each datetime
    field as its ISO 8601 text."""
    out = dataclasses.asdict(record)
    for key, value in out.items():
        if isinstance(value, dt.datetime):
            out[key] = value.isoformat()
    return out


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
    archive_path: str | None = None
    phase: str | None = None
    target_host: str | None = None  # "any" or a host name: provisioned by the claiming host
    workspace_host: str | None = None  # the host whose disk holds the worktree
    repository_url: str | None = None  # the repository's identity across clones
    # how the worktree was checked out: cone-mode sparse paths (None: everything),
    # submodules initialised (None: the repository has none), LFS smudge skipped
    sparse_paths: tuple[str, ...] | None = None
    submodules: bool | None = None
    lfs_skip_smudge: bool | None = None
    lease_token: int = 0
    lease_expires_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None
    lease_holder: str | None = None  # the worker name that claimed it (``worker`` is who should)
    # the process that holds the lease; cleared with it
    worker_host: str | None = None
    worker_pid: int | None = None
    worker_started_at: float | None = None
    # the dispatch process, while it provisions the workspace; cleared when that ends
    dispatcher_host: str | None = None
    dispatcher_pid: int | None = None
    dispatcher_started_at: float | None = None
    agent_pid: int | None = None
    agent_started_at: float | None = None
    exit_code: int | None = None
    summary: str | None = None
    finished_at: dt.datetime | None = None
    # the committed changes against base_commit, counted at changes_tip (None: not yet)
    changes_tip: str | None = None
    commits_ahead: int | None = None
    files_changed: int | None = None
    lines_added: int | None = None
    lines_removed: int | None = None
    changes_at: dt.datetime | None = None
    # the land that took its work into a target branch (None: not landed)
    landed_commit: str | None = None  # the target's commit after the land
    landed_tip: str | None = None  # the attempt's commit that landed
    landed_into: str | None = None  # the target branch
    landed_strategy: str | None = None  # squash, rebase, merge or ff-only
    landed_by: str | None = None
    landed_at: dt.datetime | None = None
    # a land in progress: the result the target will move to, and the rest of its intent
    landing_commit: str | None = None
    landing: dict[str, Any] | None = None
    # the pull request opened for it (orch pr; None: none) and its state there
    pr_url: str | None = None
    pr_number: int | None = None
    pr_state: str | None = None  # open, merged or closed

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def landed(self) -> bool:
        """Its work was taken into a target branch (``orch land``)."""
        return self.landed_commit is not None

    @property
    def changes(self) -> ChangeSummary | None:
        """The recorded summary of the attempt's committed changes, if one was recorded."""
        if (
            self.changes_tip is None
            or self.commits_ahead is None
            or self.files_changed is None
            or self.lines_added is None
            or self.lines_removed is None
        ):
            return None
        return ChangeSummary(
            self.changes_tip,
            self.commits_ahead,
            self.files_changed,
            self.lines_added,
            self.lines_removed,
        )

    @property
    def provisioner(self) -> tuple[str, int] | None:
        """The host and pid of the process provisioning the workspace: the lease holder
        of an attempt provisioned on its worker's host, else the dispatch that recorded it
        (None once provisioning has ended, or when nobody said)."""
        if self.state == State.RUNNING:
            host, pid = self.worker_host, self.worker_pid
        else:
            host, pid = self.dispatcher_host, self.dispatcher_pid
        return (host, pid) if host is not None and pid is not None else None

    @property
    def checkout(self) -> CheckoutSpec:
        return CheckoutSpec(
            sparse_paths=self.sparse_paths or (),
            submodules=self.submodules,
            lfs_skip_smudge=bool(self.lfs_skip_smudge),
        )

    @property
    def worker_label(self) -> str:
        """Who works on the attempt, in the words ``orch show`` and the dashboard share: the
        worker holding (or last holding) its lease, else the worker or kind it was sent to."""
        return self.lease_holder or self.worker or "(any)"

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        out["state"] = str(self.state)
        out["workspace_status"] = str(self.workspace_status)
        out["worker_label"] = self.worker_label
        return out


@dataclasses.dataclass(frozen=True)
class Landed:
    """A land as recorded: the target's new commit, the attempt's commit that landed,
    the target branch, the strategy, who."""

    commit: str
    tip: str
    into: str
    strategy: str
    by: str


@dataclasses.dataclass(frozen=True)
class ChangeSummary:
    """What an attempt changed against its base_commit: at ``tip`` (a commit), or in its
    worktree as it is (``tip`` is then its HEAD, and uncommitted work counts too)."""

    tip: str
    commits_ahead: int
    files_changed: int
    lines_added: int  # binary files count no lines
    lines_removed: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


@dataclasses.dataclass(frozen=True)
class AttemptEvent:
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


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True)
class NewAttempt:
    """What dispatch knows before the store assigns the attempt number."""

    id: str
    task_key: str
    repository: str
    base_ref: str
    base_commit: str | None  # None only when provisioning is skipped outside git
    branch_name: str | None
    worktree_path: str | None  # None while it waits for a worker host (target_host)
    worker: str | None
    prompt: str
    # the dispatching process, recorded while it provisions (for doctor)
    dispatcher: WorkerIdentity | None = None
    phase: str | None = None
    target_host: str | None = None
    workspace_host: str | None = None
    repository_url: str | None = None
    checkout: CheckoutSpec | None = None


@dataclasses.dataclass(frozen=True)
class CheckoutSpec:
    """How a new worktree is checked out (recorded in the attempt and told to the worker)."""

    sparse_paths: tuple[str, ...] = ()  # empty: the whole tree
    submodules: bool | None = None  # None: the repository has no submodules
    lfs_skip_smudge: bool = False

    @property
    def poolable(self) -> bool:
        """Warm pool members are full checkouts without submodules (see orch.workspace.pool); a
        sparse one or one with submodules is always made fresh."""
        return not self.sparse_paths and not self.submodules

    @property
    def flavour(self) -> str:
        """The pool a member for this checkout comes from (members differ in these)."""
        parts = ["full"]
        if self.submodules is False:
            parts.append("nosub")
        if self.lfs_skip_smudge:
            parts.append("lfsskip")
        return "-".join(parts)


@dataclasses.dataclass(frozen=True)
class WorkerIdentity:
    """Who holds a lease: a worker name, and for a local process its pid and start time."""

    name: str
    host: str
    pid: int | None = None
    started_at: float | None = None  # process start time (seconds since the epoch)


@dataclasses.dataclass(frozen=True)
class Lease:
    """A claim on an attempt. ``token`` only grows; writes carrying an old one are refused."""

    attempt: Attempt
    token: int
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Finish:
    """How a worker says one attempt ended (``finish_many`` takes several at once)."""

    attempt_id: str
    token: int
    state: State
    exit_code: int | None = None
    summary: str | None = None


@dataclasses.dataclass(frozen=True)
class Message:
    """A follow-up instruction queued for an attempt."""

    id: int
    attempt_id: str
    body: str
    actor: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    run_number: int | None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclasses.dataclass(frozen=True)
class Usage:
    """What a run's agent says it consumed, as the agent itself reported it. A field the
    agent did not report is None, never 0: unknown is not free.

    ``input_tokens`` counts every token the model read, cached ones included;
    ``cached_tokens`` is the part of them read from the provider's cache; ``output_tokens``
    includes reasoning. ``model``: the model names, most used first, comma-separated."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None

    @property
    def known(self) -> bool:
        """Whether the agent reported anything at all."""
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    @classmethod
    def total(cls, usages: Iterable[Usage | None]) -> Usage | None:
        """The sum of what is known (a field nobody reported stays None); the models named
        once each, in order of first mention. None when nothing was reported."""
        known = [u for u in usages if u is not None and u.known]
        if not known:
            return None

        def add(values: list[Any]) -> Any:
            present = [v for v in values if v is not None]
            return sum(present) if present else None

        models = list(
            dict.fromkeys(m.strip() for u in known for m in (u.model or "").split(",") if m.strip())
        )
        return cls(
            input_tokens=add([u.input_tokens for u in known]),
            output_tokens=add([u.output_tokens for u in known]),
            cached_tokens=add([u.cached_tokens for u in known]),
            cost_usd=add([u.cost_usd for u in known]),
            model=", ".join(models) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RunKind(enum.StrEnum):
    AGENT = "agent"  # the agent's command (the first run, or a follow-up)
    CHECK = "check"  # the repository's check command (``[review] check``)


@dataclasses.dataclass(frozen=True)
class Run:
    """One process run inside an attempt's worktree: the agent (the first run, or a
    follow-up), or the repository's check command."""

    attempt_id: str
    number: int
    prompt: str
    command: tuple[str, ...]
    log_path: str | None
    pid: int | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    exit_code: int | None
    kind: RunKind = RunKind.AGENT
    timed_out: bool = False  # killed by its timeout (a check's ``check_timeout``)
    # what the agent reported it consumed (``orch.attempts.usage``); None: nothing known
    usage: Usage | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while it runs (or if its end was never heard)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def result(self) -> str:
        """``passed``, ``failed``, ``timed out``, ``interrupted`` (whoever waited for it
        was stopped), or ``unfinished`` (still running, or its end was never heard)."""
        if self.timed_out:
            return "timed out"
        if self.ended_at is None:
            return "unfinished"
        if self.exit_code is None:
            return "interrupted"
        return "passed" if self.exit_code == 0 else "failed"

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        out["command"] = list(self.command)
        out["kind"] = str(self.kind)
        out["duration"] = self.duration
        out["result"] = self.result
        return out


@dataclasses.dataclass(frozen=True)
class PortBundle:
    """A contiguous block of ports leased to one attempt, with named slots in it."""

    start: int
    size: int
    slots: dict[str, int]  # slot name -> offset in the block

    @property
    def ports(self) -> dict[str, int]:
        """Slot name -> port, plus ``base`` (the block's first port)."""
        return {"base": self.start, **{name: self.start + off for name, off in self.slots.items()}}

    @property
    def end(self) -> int:
        return self.start + self.size - 1


@dataclasses.dataclass(frozen=True)
class TaskWorkspace:
    """The worktree and branch later phases of a task reuse (``--reuse-workspace``): those
    of the attempt ``attempt_id``, read from its row."""

    repository: str
    task_key: str
    branch_name: str
    worktree_path: str
    attempt_id: str


class TaskState(enum.StrEnum):
    """Where a submitted task is in the queue ``orch serve`` works through."""

    READY = "ready"  # waiting to be dispatched
    DISPATCHING = "dispatching"  # the loop is creating its attempt right now
    DISPATCHED = "dispatched"  # an attempt exists; a lost worker's attempt is retried
    DONE = "done"  # its latest attempt ended (not as worker_gone) or cannot be retried
    FAILED = "failed"  # dispatching it failed (the reason says why)


@dataclasses.dataclass(frozen=True)
class QueuedTask:
    """A task submitted with ``orch submit``: recorded, not provisioned."""

    id: int
    task_key: str
    repository: str
    base_ref: str | None
    prompt: str
    worker: str | None
    state: TaskState
    attempt_id: str | None
    reason: str | None
    actor: str
    created_at: dt.datetime
    updated_at: dt.datetime

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
        return self in (LandQueueState.QUEUED, LandQueueState.LANDING)


@dataclasses.dataclass(frozen=True)
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
