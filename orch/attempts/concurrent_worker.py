"""``orch work --concurrency N``: one worker process running up to N attempts at once.

Each attempt is worked on exactly as ``orch work`` works on one (``WorkerRuntime``: its
worktree locked, its agent's runs and follow-ups, the check after a successful agent, the
escape watch, the changes recorded, the finish), in a thread of its own that mostly waits
on its agent. What the attempts share is what makes many agents cheap on one machine:

- one claim for all free slots (``Store.claim_many``: one statement, one transaction);
- one heartbeat thread that renews every held lease in one statement
  (``orch.attempts.heartbeat.Heartbeats``); a lease taken away stops its agent alone;
- one store call at a time (``SerialStore``), so that the process holds at most one
  server connection whatever N is, and none while idle (the worker's engine keeps none
  between transactions).

Signals mean what they mean to ``orch work``, for every attempt at once: the first
SIGTERM/SIGINT drains (no new claims; the running attempts run to their end and are
finished normally), a second one stops every agent and finishes each attempt as
``cancelled``. With ``once``, up to N attempts are claimed together, once, and the worker
exits when all of them have ended.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from orch.attempts.heartbeat import Heartbeats, HeldLease
from orch.attempts.lifecycle import reap
from orch.attempts.worker import WorkerRuntime
from orch.git import Git, Repository
from orch.models import Attempt, Lease

if TYPE_CHECKING:
    from orch.store import Store


class SerialStore:
    """The store, called by one thread at a time.

    A worker's engine opens a connection per transaction (no pool): N threads calling
    the store together would hold N server connections at once. Each call here waits for
    the one before it, so the process never holds more than one; store calls are short
    (a heartbeat, a run's start or end, a finish), agents are not."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._turn = threading.RLock()  # re-entrant: a call that leads to another

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._turn:
                return value(*args, **kwargs)

        return one_at_a_time


class ConcurrentWorker(WorkerRuntime):
    """Up to ``config.concurrency`` attempts at once, in one process (see the module's
    doc); made as a ``WorkerRuntime`` is, its store then called one call at a time."""

    def __init__(self, store: Store, *args: Any, **kwargs: Any) -> None:
        super().__init__(cast("Store", SerialStore(store)), *args, **kwargs)
        self._heartbeats = Heartbeats(self.store, self.settings.lease_ttl)
        self._slots: dict[str, threading.Thread] = {}  # attempt id -> the thread on it
        self._wake = threading.Event()  # an attempt ended, or a signal came
        self._fatal: BaseException | None = None  # what ends the worker once all ended

    def signal(self) -> None:
        super().signal()
        self._wake.set()

    def run(self) -> list[Attempt]:
        git = Git(self.settings.git_lock_timeout)
        clones = self._clones(git)
        self._heartbeats.start()
        try:
            try:
                self._claim_while_not_draining(clones, git)
            except BaseException as exc:  # the store gone past patience, say
                self._ends_with(exc)
            for thread in list(self._slots.values()):
                while thread.is_alive():  # in steps: a signal is handled between them
                    thread.join(0.5)
        finally:
            self._heartbeats.close()
        if self._fatal is not None:
            raise self._fatal
        return self.finished

    def _claim_while_not_draining(self, clones: dict[str, Repository], git: Git) -> None:
        """Fill the free slots with one claim each time one frees (or every idle poll)."""
        while True:
            self._wake.clear()  # before looking: a wake from now on ends the wait below
            self._slots = {a: t for a, t in self._slots.items() if t.is_alive()}
            if self.draining.is_set():
                return
            free = self.config.concurrency - len(self._slots)
            if free > 0:
                self._patiently(
                    "the liveness sweep",
                    lambda: reap(self.store, self.actor, host=self.settings.host_name),
                )
                # a claim whose answer was lost may have committed: those attempts are
                # held by nobody alive and end worker_gone when their leases expire
                leases = self._patiently(
                    "a claim",
                    self.store.claim_many,
                    self.config.identity,
                    self.settings.lease_ttl,
                    self.actor,
                    free,
                    self._clone_urls,
                )
                for lease in leases:
                    self._start(lease, clones, git)
            if self.config.once:
                return
            self._wake.wait(self.config.idle_poll)

    def _start(self, lease: Lease, clones: dict[str, Repository], git: Git) -> None:
        thread = threading.Thread(
            target=self._slot,
            args=(lease, clones, git),
            name=f"attempt-{lease.attempt.id}",
            daemon=True,
        )
        self._slots[lease.attempt.id] = thread
        thread.start()

    def _slot(self, lease: Lease, clones: dict[str, Repository], git: Git) -> None:
        """One attempt's thread: a failure that would end ``orch work`` (a store too new,
        a bug) ends this worker too, once the other attempts have ended: no new claims."""
        try:
            self._attend(lease, clones, git)
        except BaseException as exc:
            self._ends_with(exc)
        finally:
            self._wake.set()

    def _ends_with(self, exc: BaseException) -> None:
        """End the worker with ``exc`` (the first such), once every started attempt has
        ended: an agent is never left running without its worker."""
        if self._fatal is None:
            self._fatal = exc
        self.draining.set()

    def _beat(self, lease: Lease, lost: threading.Event) -> HeldLease:
        """The lease joins the beats of every attempt this worker holds."""
        return self._heartbeats.hold(lease, lost)
