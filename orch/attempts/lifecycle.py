"""Lifecycle use cases: noticing lost workers, waiting, cancelling, reassigning, follow-ups.

Lost workers are noticed by whatever orch process looks (``reap`` runs in wait, list,
show and the worker runtime), not only by a daemon: a lease past its expiry, or a local
worker whose pid is gone or now belongs to a process started at another time, ends the
attempt as ``worker_gone``. No SQL or subprocess here: the store and ``processes`` do it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.intent import record_intent
from orch.attempts.queries import CONTINUES, find_attempt, prompt_history
from orch.config import Settings
from orch.errors import Conflict, InvalidInput
from orch.models import (
    Attempt,
    Lease,
    Message,
    NewAttempt,
    State,
    WorkerIdentity,
    WorkspaceStatus,
)
from orch.outage import ride_out
from orch.record import record
from orch.system import inbox, processes
from orch.workspace.reuse import finish_in_place, refuse_if_busy

if TYPE_CHECKING:
    from orch.store import Store

REAP_INTERVAL = 1.0  # seconds between liveness sweeps while waiting


def lost_reason(attempt: Attempt, now: dt.datetime, host: str) -> str | None:
    """Why this running attempt's worker counts as gone, or None while it is alive."""
    if attempt.state != State.RUNNING:
        return None
    if attempt.lease_expires_at is not None and attempt.lease_expires_at <= now:
        since = attempt.heartbeat_at.isoformat(timespec="seconds") if attempt.heartbeat_at else "?"
        return f"lease expired (last heartbeat {since})"
    local = attempt.worker_host == host and attempt.worker_pid is not None
    if local and not processes.is_alive(attempt.worker_pid or 0, attempt.worker_started_at):
        return f"worker process {attempt.worker_pid} on {host} is gone"
    return None


def reap(store: Store, actor: str, grace: float = 5.0, host: str | None = None) -> list[Attempt]:
    """End the attempts whose worker is gone; stop an orphaned local agent left behind.

    ``host`` is this machine's name for orch (``host_name``): only attempts whose worker
    ran here are judged by their pid."""
    host = host or processes.hostname()
    now = store.clock()
    ended = []
    for attempt in store.running_attempts():
        reason = lost_reason(attempt, now, host)
        if reason is None:
            continue
        gone = store.end_lost_worker(attempt.id, attempt.lease_token, reason, actor)
        if gone is None:
            continue  # a fresher write won (heartbeat, finish): nothing to do
        ended.append(gone)
        store.release_ports(attempt.id, actor, "worker gone")
        if attempt.worker_host == host and attempt.agent_pid is not None:
            # never leave an agent running in a worktree whose attempt has ended
            processes.terminate(attempt.agent_pid, attempt.agent_started_at, grace)
    return ended


# -- the worker protocol, as plain calls ----------------------------------------------------


def local_worker(name: str, pid: int | None, host: str | None = None) -> WorkerIdentity:
    started = processes.start_time(pid) if pid is not None else None
    if pid is not None and started is None:
        raise InvalidInput(f"no running process with pid {pid}")
    return WorkerIdentity(name=name, host=host or processes.hostname(), pid=pid, started_at=started)


def claim(
    store: Store, worker: WorkerIdentity, ttl: float, actor: str, ref: str | None = None
) -> Lease | None:
    reap(store, actor, host=worker.host)
    attempt_id = find_attempt(store, ref).id if ref is not None else None
    return store.claim(worker, ttl, actor, attempt_id)


# -- wait -----------------------------------------------------------------------------------


@record
class WaitOutcome:
    attempts: tuple[Attempt, ...]
    timed_out: bool

    @property
    def all_succeeded(self) -> bool:
        return not self.timed_out and all(a.state == State.SUCCEEDED for a in self.attempts)


def wait(
    store: Store,
    refs: Sequence[str],
    timeout: float | None,
    actor: str,
    monotonic: Callable[[], float] = time.monotonic,
    host: str | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> WaitOutcome:
    """Block until every named attempt is terminal, or ``timeout`` seconds pass.

    Between looks it sleeps on the store's change watcher (SQLite ``data_version``,
    PostgreSQL LISTEN/NOTIFY), so a state change is seen within milliseconds without
    keeping a core busy; lost workers are swept for every second. A store that cannot
    be reached (its server restarting) is ridden out (``orch.outage``), never past the
    timeout, before its error is raised.
    """
    ids = list(dict.fromkeys(find_attempt(store, ref).id for ref in refs))
    deadline = None if timeout is None else monotonic() + timeout
    watcher = store.change_watcher()
    next_reap = 0.0

    def look() -> list[Attempt]:
        nonlocal next_reap
        if monotonic() >= next_reap:
            reap(store, actor, host=host)
            next_reap = monotonic() + REAP_INTERVAL
        return store.get_many(ids)

    try:
        while True:
            current = ride_out(look, until=deadline, clock=monotonic, sleep=sleep)
            if all(a.terminal for a in current):
                return WaitOutcome(tuple(current), timed_out=False)
            now = monotonic()
            if deadline is not None and now >= deadline:
                return WaitOutcome(tuple(current), timed_out=True)
            until = next_reap if deadline is None else min(next_reap, deadline)
            watcher.wait(max(0.0, until - now))
    finally:
        watcher.close()


# -- operator actions -----------------------------------------------------------------------


@record
class CancelOutcome:
    attempt: Attempt
    changed: bool
    signalled: str | None  # what happened to a local agent, if any
    dropped: tuple[Message, ...] = ()  # follow-ups that were waiting and never run now


def cancel(
    store: Store, ref: str, actor: str, grace: float, reason: str | None, host: str | None = None
) -> CancelOutcome:
    """End a live attempt as cancelled and stop its local agent (SIGTERM, then SIGKILL)."""
    attempt = find_attempt(store, ref)
    after, changed = store.cancel(attempt.id, reason or "cancelled by the operator", actor)
    signalled = None
    if changed and attempt.state == State.RUNNING:
        signalled = _stop_local_agent(attempt, grace, host)
    # a message left undelivered by the cancel stays so: the attempt is terminal now
    dropped = tuple(m for m in store.messages(attempt.id) if m.delivered_at is None)
    return CancelOutcome(
        attempt=after, changed=changed, signalled=signalled, dropped=dropped if changed else ()
    )


def _stop_local_agent(attempt: Attempt, grace: float, host: str | None = None) -> str | None:
    """Stop the attempt's agent if it runs on this host; never the worker that claimed it.

    The claimant (``orch work`` between runs, a script that claimed with ``--pid $$``) is
    fenced by its lease: it learns at its next heartbeat or finish and goes on to its next
    attempt. Only the agent, recorded by the run that started it, is signalled."""
    if attempt.worker_host != (host or processes.hostname()):
        return None  # a remote worker learns from its next heartbeat
    if attempt.agent_pid is not None:
        return processes.terminate(attempt.agent_pid, attempt.agent_started_at, grace)
    return None


def reassign(
    store: Store, ref: str, worker: str, settings: Settings, actor: str, grace: float
) -> tuple[Attempt, str | None]:
    """Move a live attempt to ``worker``; the old holder is fenced out, its agent stopped."""
    if not worker.strip():
        raise InvalidInput("--worker must not be empty")
    attempt = find_attempt(store, ref)
    before, after = store.reassign(attempt.id, worker, actor)
    running = before.state == State.RUNNING
    signalled = _stop_local_agent(before, grace, settings.host_name) if running else None
    rewrite_payload(after, settings, store)
    return after, signalled


def rewrite_payload(
    attempt: Attempt,
    settings: Settings,
    store: Store | None = None,
    history: Sequence[str] | None = None,
) -> None:
    """Write the payload again from the store's record (with its port bundle and the
    attempt's prompt history; ``history``: as a worker knows it, before its run starts)."""
    if attempt.payload_path:
        if history is None and store is not None:
            history = prompt_history(store, attempt)
        bundle = store.port_bundle(attempt.id) if store is not None else None
        payload = inbox.build_payload(
            attempt,
            orch_home=settings.home,
            lease_ttl=settings.lease_ttl,
            ports=bundle.ports if bundle else None,
            prompt_history=history,
        )
        inbox.write_payload(Path(attempt.payload_path), payload)


def send(store: Store, ref: str, body: str, actor: str, settings: Settings) -> SendOutcome:
    """Queue a follow-up for an attempt, delivered in the same worktree.

    A live attempt gets the message queued; its worker runs it when the current run ends.
    An attempt that has ended gets a continuation: a new attempt of the same task (number
    + 1) that reuses the worktree and branch (``workspace_status=reused``) with the message
    as its prompt, for any worker to claim.
    """
    if not body.strip():
        raise InvalidInput("the message is empty")
    attempt = find_attempt(store, ref)
    if not attempt.terminal:
        return SendOutcome(message=store.add_message(attempt.id, body, actor), continuation=None)
    return SendOutcome(message=None, continuation=_continue(store, attempt, body, actor, settings))


@record
class SendOutcome:
    message: Message | None
    continuation: Attempt | None


def _continue(store: Store, attempt: Attempt, body: str, actor: str, settings: Settings) -> Attempt:
    worktree = Path(attempt.worktree_path) if attempt.worktree_path else None
    usable = attempt.workspace_status.holds_worktree
    if worktree is None or not usable or not worktree.is_dir():
        raise Conflict(
            f"attempt {attempt.id} has ended and its worktree is gone "
            f"({attempt.workspace_status}): use 'orch retry {attempt.id} --prompt ...'"
        )
    for live in store.live_attempts(attempt.repository, attempt.task_key):
        if live.worktree_path == attempt.worktree_path:
            raise Conflict(
                f"attempt {live.id} ({live.state}) already works in {worktree}: "
                f"send the message to it with 'orch send {live.id} ...'"
            )
    refuse_if_busy(store, worktree)
    new = NewAttempt(
        id=naming.new_attempt_id(),
        task_key=attempt.task_key,
        repository=attempt.repository,
        base_ref=attempt.base_ref,
        base_commit=attempt.base_commit or "",
        branch_name=attempt.branch_name or "",
        worktree_path=str(worktree),
        worker=attempt.worker,
        prompt=body,
    )
    created = record_intent(store, new, actor)
    # the agent goes on with what it was told before (orch.attempts.worker reads the link)
    store.record_event(created.id, CONTINUES, actor, attempt=attempt.id)
    history = [*prompt_history(store, attempt), body]
    return finish_in_place(
        store, settings, created, WorkspaceStatus.REUSED, actor, prompt_history=history
    )
