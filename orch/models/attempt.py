"""The attempt: its record as the store keeps it, what it changed and where it landed,
and what dispatch and the worker protocol hand the store to make and run one.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from orch.models.serial import plain
from orch.models.states import State, WorkspaceStatus
from orch.record import record


@record
class Attempt:
    """One attempt as the store records it: its task, base, branch, worktree, state, lease
    and worker, what it changed, where it landed, and its pull request."""

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


@record
class Landed:
    """A land as recorded: the target's new commit, the attempt's commit that landed,
    the target branch, the strategy, who."""

    commit: str
    tip: str
    into: str
    strategy: str
    by: str


@record
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


@record
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


@record
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


@record
class WorkerIdentity:
    """Who holds a lease: a worker name, and for a local process its pid and start time."""

    name: str
    host: str
    pid: int | None = None
    started_at: float | None = None  # process start time (seconds since the epoch)


@record
class Lease:
    """A claim on an attempt. ``token`` only grows; writes carrying an old one are refused."""

    attempt: Attempt
    token: int
    expires_at: dt.datetime


@record
class Finish:
    """How a worker says one attempt ended (``finish_many`` takes several at once)."""

    attempt_id: str
    token: int
    state: State
    exit_code: int | None = None
    summary: str | None = None


@record
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


@record
class TaskWorkspace:
    """The worktree and branch later phases of a task reuse (``--reuse-workspace``): those
    of the attempt ``attempt_id``, read from its row."""

    repository: str
    task_key: str
    branch_name: str
    worktree_path: str
    attempt_id: str
