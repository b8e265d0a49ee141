"""The reference worker runtime behind ``orch work``: its protocol with the store.

Claims attempts (or provisions one dispatched for this host), locks each attempt's
worktree, heartbeats from a thread while the agent runs, hands the runs themselves to
``orch.attempts.agent_runs`` (the agent started, supervised and recorded; follow-ups
delivered as further runs), runs the check when configured, and finishes the attempt from
the last run's exit status (going on, it claims the next one in the same transaction). One
agent per worktree is enforced by a lock whose file descriptor the agent inherits: it stays
held while the agent lives, even if this worker is killed, and is free again once both
are gone.

Signals: the first SIGTERM/SIGINT drains (no new claims; the current attempt runs to its
end and is finished normally); a second one stops the agent (SIGTERM, then SIGKILL after
the grace period) and finishes the attempt as ``cancelled``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from orch.attempts.agent_command import (
    AGENT_TEMPLATES,
    RESUME_TEMPLATES,
    agent_command,
    agent_environment,
    render,
    resume_command,
    with_history,
)
from orch.attempts.agent_runs import AgentRuns
from orch.attempts.changes import record_changes
from orch.attempts.check import check_after_agent
from orch.attempts.dispatch.another_host import provision_claimed
from orch.attempts.heartbeat import Heartbeat, HeldLease
from orch.attempts.lifecycle import reap
from orch.attempts.occupant import worktree_lock_path
from orch.attempts.push import push_branch
from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import (
    LeaseLost,
    OrchError,
    StoreBehind,
    StoreError,
    StoreTooNew,
    StoreUnavailable,
)
from orch.fslock import HeldLock, lock_owner, try_lock
from orch.git import Git, Repository
from orch.models import Attempt, Lease, State, WorkerIdentity, WorkspaceStatus
from orch.outage import STORE_PATIENCE, Patience, ride_out
from orch.record import record
from orch.system import processes
from orch.workspace import escape

if TYPE_CHECKING:
    from orch.store import Store

_T = TypeVar("_T")
# what callers imported from here before the templates and the heartbeat had modules
__all__ = [
    "AGENT_TEMPLATES",
    "RESUME_TEMPLATES",
    "WorkerConfig",
    "WorkerRuntime",
    "agent_command",
    "agent_environment",
    "render",
    "resume_command",
    "with_history",
    "worktree_lock_path",
]


@record
class WorkerConfig:
    identity: WorkerIdentity
    command: tuple[str, ...]
    # the command for a follow-up run, when the agent can resume its session (None: the
    # command itself, given the prompt history)
    resume_command: tuple[str, ...] | None = None
    once: bool = False
    attempt_ref: str | None = None
    concurrency: int = 1  # attempts at once (``orch.attempts.concurrent_worker`` above 1)
    idle_poll: float = 1.0
    lock_wait: float = 30.0
    clones: tuple[Path, ...] = ()  # this host's clones: it provisions attempts sent to it
    # how long, and how often, a store that cannot be reached (a dropped connection, a
    # restarting PostgreSQL, a locked SQLite past its busy timeout) is tried again
    store_patience: Patience = STORE_PATIENCE


class WorkerRuntime:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        config: WorkerConfig,
        actor: str,
        environ: Mapping[str, str] | None = None,
        say: Callable[[str], None] | None = None,
        progress: Callable[[str], None] | None = None,
        report: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.store, self.settings, self.config, self.actor = store, settings, config, actor
        # say: trouble (always shown); progress: a line per claim and run end;
        # report: each attempt as it is finished (the command's result)
        self.say = say or (lambda _line: None)
        self.progress = progress or (lambda _line: None)
        self.report = report or (lambda _attempt: None)
        self.environ = dict(os.environ if environ is None else environ)
        self.draining = threading.Event()
        self.stop_now = threading.Event()
        self.finished: list[Attempt] = []
        # the next attempt, claimed in the same transaction as the previous finish
        self._next: Lease | None = None
        self._clone_urls: tuple[str, ...] = ()
        # per attempt worked on: the branch tip last recorded by this worker
        self._tips: dict[str, str | None] = {}

    def signal(self) -> None:
        """First call drains, second stops at once (wired to SIGTERM/SIGINT by the CLI)."""
        if self.draining.is_set():
            self.stop_now.set()
        self.draining.set()

    def run(self) -> list[Attempt]:
        attempt_id = None
        if self.config.attempt_ref is not None:
            attempt_id = find_attempt(self.store, self.config.attempt_ref).id
        git = Git(self.settings.git_lock_timeout)
        clones = self._clones(git)
        going_on = not self.config.once and attempt_id is None
        while not self.draining.is_set():
            self._patiently(
                "the liveness sweep",
                lambda: reap(self.store, self.actor, host=self.settings.host_name),
            )
            lease, self._next = self._next, None
            if lease is None:
                # a claim whose answer was lost may have committed: that attempt is held
                # by nobody alive and ends worker_gone when its lease expires
                lease = self._patiently(
                    "a claim",
                    lambda: self.store.claim(
                        self.config.identity,
                        self.settings.lease_ttl,
                        self.actor,
                        attempt_id,
                        repository_urls=self._clone_urls,
                    ),
                )
            if lease is None:
                if self.config.once:
                    break
                self.draining.wait(self.config.idle_poll)
                continue
            self._attend(lease, clones, git, going_on)
            if not going_on:
                break
        if self._next is not None:  # claimed with the last finish, then told to drain
            with contextlib.suppress(LeaseLost):
                self.store.release(
                    self._next.attempt.id,
                    self._next.token,
                    "the worker drained before starting it",
                    self.actor,
                )
            self._next = None
        return self.finished

    def _clones(self, git: Git) -> dict[str, Repository]:
        """This host's clones (``--repo``) by repository URL: attempts dispatched for any
        host, or this one, are provisioned in them."""
        clones = {}
        for path in self.config.clones:
            repo = git.discover(path)
            clones[git.repository_url(repo)] = repo
        self._clone_urls = tuple(clones)
        return clones

    def _attend(
        self, lease: Lease, clones: dict[str, Repository], git: Git, going_on: bool = False
    ) -> None:
        """One claimed attempt, from its claim to its end: provisioned here when it was
        sent to this host, then worked on (``_work_on``)."""
        claimed = lease.attempt
        self.progress(
            f"orch work: claimed {claimed.id} (task {claimed.task_key}, "
            f"attempt {claimed.attempt_number})"
        )
        if lease.attempt.workspace_status == WorkspaceStatus.PENDING:
            provisioned = self._provision_here(lease, clones, git)
            if provisioned is None:
                return
            lease = provisioned
        try:
            self._work_on(lease, going_on)
        except (StoreTooNew, StoreBehind):
            raise
        except StoreError as exc:
            # the agent was stopped; nobody writes for this attempt any more, so its
            # lease expires and it ends worker_gone (then retry per policy)
            self.say(
                f"orch work: lost the store while working on {lease.attempt.id} "
                f"({exc.message}); it ends worker_gone when its lease expires"
            )
            self._next = None

    def _provision_here(
        self, lease: Lease, clones: dict[str, Repository], git: Git
    ) -> Lease | None:
        """Create the branch and worktree of an attempt sent to this host, in its clone."""
        attempt = lease.attempt
        repo = clones[attempt.repository_url or ""]
        try:
            ready = provision_claimed(lease, repo, self.settings, git, self.store, self.actor)
        except OrchError as exc:
            # provision rolled back and marked the attempt failed; say so in the log
            processes.append_log(
                self.settings.logs_dir / f"{attempt.id}.log",
                f"=== orch: provisioning on {self.settings.host_name} failed: {exc.message}\n",
            )
            with contextlib.suppress(OrchError):
                self._finish(lease, State.FAILED, None, exc.message)
            return None
        return dataclasses.replace(lease, attempt=ready)

    def _work_on(self, lease: Lease, going_on: bool = False) -> None:
        self._tips[lease.attempt.id] = lease.attempt.changes_tip
        try:
            self._work_in_worktree(lease, going_on)
        finally:
            del self._tips[lease.attempt.id]

    def _work_in_worktree(self, lease: Lease, going_on: bool) -> None:
        attempt = lease.attempt
        runs = AgentRuns(
            self.store,
            self.settings,
            self.config.command,
            self.config.resume_command,
            self.environ,
            self.stop_now,
            self._patiently,
            self.progress,
            self._record_changes,
        )
        worktree = Path(attempt.worktree_path or ".")
        if not worktree.is_dir():
            self._finish(lease, State.FAILED, None, f"worktree {worktree} does not exist")
            return
        lock = self._lock_worktree(lease, worktree)
        if lock is None:
            return
        lost = threading.Event()
        beat = self._beat(lease, lost)
        git = Git(self.settings.git_lock_timeout)
        before = escape.snapshot(git, escape.watched(self.store, attempt))
        try:
            code = runs.run(lease, worktree, lock, lost)
            if code == 0 and not lost.is_set() and not self.stop_now.is_set():
                self._check_after_agent(attempt, worktree, lock)
        finally:
            beat.stop()
            lock.release()
        if beat.failed is not None:
            raise beat.failed  # the agent was stopped: nobody can vouch for the attempt
        with contextlib.suppress(OrchError):
            escape.check(self.store, git, attempt, before, self.actor)
        self._record_changes(attempt, lease.token)
        if not lost.is_set():
            warning = push_branch(self.store, self.settings, git, attempt, self.actor)
            if warning is not None:
                self.say(f"Warning: {warning}")
        if lost.is_set():
            # fenced out: someone else owns the attempt now; write nothing
            self.progress(
                f"orch work: {attempt.id} was taken away (cancelled, reassigned or expired)"
            )
            return
        if self.stop_now.is_set():
            self._finish(lease, State.CANCELLED, code, "stopped: the worker was told to stop")
        else:
            state = State.SUCCEEDED if code == 0 else State.FAILED
            self._finish(lease, state, code, runs.summary(attempt, code), going_on)

    def _beat(self, lease: Lease, lost: threading.Event) -> Heartbeat | HeldLease:
        """The lease's heartbeat while its agent runs: a thread of its own."""
        beat = Heartbeat(self.store, lease, self.settings.lease_ttl, lost)
        beat.start()
        return beat

    def _lock_worktree(self, lease: Lease, worktree: Path) -> HeldLock | None:
        path = worktree_lock_path(worktree, self.settings)
        owner = f"{self.actor} attempt {lease.attempt.id}"
        lock = try_lock(path, owner)
        waited = 0.0
        while lock is None and waited < self.config.lock_wait and not self.stop_now.is_set():
            self.stop_now.wait(0.2)
            waited += 0.2
            try:
                self.store.heartbeat(lease.attempt.id, lease.token, self.settings.lease_ttl)
            except LeaseLost:
                return None
            lock = try_lock(path, owner)
        if lock is None:
            holder = lock_owner(path) or "another process"
            self.store.release(
                lease.attempt.id,
                lease.token,
                f"worktree {worktree} is in use by {holder}",
                self.actor,
            )
        return lock

    def _record_changes(self, attempt: Attempt, token: int) -> None:
        """Record the attempt's committed changes if its branch moved (``orch list`` reads
        them), fenced by the lease like every write of a worker; a failure costs only the
        record, never the attempt."""
        with contextlib.suppress(OrchError):
            recorded = record_changes(
                self.store,
                Git(self.settings.git_lock_timeout),
                attempt,
                self._tips.get(attempt.id),
                token,
            )
            if recorded is not None:
                self._tips[attempt.id] = recorded.tip

    def _check_after_agent(self, attempt: Attempt, worktree: Path, lock: HeldLock) -> None:
        """The check, when configured to follow the agent (``orch.attempts.check``); a
        broken config or a failing store costs only the check, never the agent's end."""
        try:
            ran = check_after_agent(
                self.store, self.settings, attempt, worktree, lock, self.actor, self.environ
            )
        except OrchError as exc:
            self.say(f"orch work: no check of {attempt.id}: {exc.message}")
            return
        if ran is not None:
            self.say(f"orch work: check of {attempt.id} {ran.result} (exit {ran.exit_code})")

    def _finish(
        self,
        lease: Lease,
        state: State,
        code: int | None,
        summary: str,
        claim_next: bool = False,
    ) -> None:
        """Report the end; going on to the next attempt, claim it in the same transaction.

        A finish that fails on the store is tried again on its own (a finish tried again
        after it committed is accepted as the same finish), never chained to a claim."""
        with contextlib.suppress(LeaseLost):  # fenced: the attempt ended or moved meanwhile
            if claim_next and not self.draining.is_set():
                try:
                    ended, self._next = self.store.finish_and_claim(
                        lease.attempt.id,
                        lease.token,
                        state,
                        self.actor,
                        code,
                        summary,
                        self.config.identity,
                        self.settings.lease_ttl,
                        self._clone_urls,
                    )
                    self._ended(ended)
                    return
                except StoreUnavailable as exc:
                    self.say(f"orch work: finishing {lease.attempt.id} failed: {exc.message}")
            self._ended(
                self._patiently(
                    f"finishing {lease.attempt.id}",
                    lambda: self.store.finish(
                        lease.attempt.id, lease.token, state, self.actor, code, summary
                    ),
                )
            )

    def _ended(self, attempt: Attempt) -> None:
        self.finished.append(attempt)
        self.report(attempt)

    def _patiently(self, what: str, call: Callable[..., _T], *args: Any) -> _T:
        """Run a store call, riding out an outage of the store (``orch.outage``) for up to
        ``store_patience`` (or until told to stop), with a line on stderr before each pause."""

        def say(exc: StoreUnavailable, pause: float) -> None:
            if not self.stop_now.is_set():
                self.say(f"orch work: {what} failed ({exc.message}); trying again in {pause:.1f} s")

        return ride_out(
            lambda: call(*args), self.config.store_patience, on_retry=say, sleep=self.stop_now.wait
        )
