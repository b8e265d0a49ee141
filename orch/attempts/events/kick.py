"""Starting delivery after a change, never making the change slower.

One deliverer runs per store on this machine: the one holding the deliver lock (the
loop of ``orch serve`` / ``orch loop``, or ``orch events deliver`` in the background).
After a command commits a change that wrote events, ``Kicker`` looks whether a sink
subscribes to their kinds (the user config's sinks, or those of the changed attempts'
repositories: the store says which kinds it wrote, so this costs no query when the user
config's sinks decide) and, if so and the lock is free, takes the lock and starts
``orch events deliver`` detached (a session of its own) with the lock handed over to it.
A command line starts it as its very last act (``Kicker.finish``), after its output and
its store are done with, and the deliverer waits until the command has ended before its
interpreter starts, so that its start-up never competes with the command's own end.
When the lock is busy, its holder delivers the change: a deliverer looks for work again
after it lets the lock go, and the event was committed before the lock was found busy,
so nothing falls between the two.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orch import fslock
from orch.config import Settings
from orch.errors import OrchError
from orch.repo_config import load_repo_config
from orch.system import processes

if TYPE_CHECKING:
    from orch.sinks import Sink
    from orch.store import Store


def lock_path(settings: Settings) -> Path:
    """The deliver lock of this store (one file per store URL under the locks directory)."""
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
    return settings.locks_dir / f"deliver-{digest}.lock"


def log_path(settings: Settings) -> Path:
    return settings.logs_dir / "events" / "deliver.log"


def take_lock(settings: Settings) -> fslock.HeldLock | None:
    return fslock.try_lock(lock_path(settings), f"event deliverer pid {os.getpid()}")


def start_deliverer(
    settings: Settings, env: Mapping[str, str], after_exit: bool = False
) -> int | None:
    """Start ``orch events deliver`` in the background holding the deliver lock; its pid,
    or None when a deliverer already holds the lock (it will see the change). With
    ``after_exit`` it runs once this process has ended (``processes.spawn_detached``)."""
    held = take_lock(settings)
    if held is None:
        return None
    try:
        os.set_inheritable(held.fd, True)
        argv = [sys.executable, "-m", "orch", "events", "deliver", "--lock-fd", str(held.fd)]
        pid = processes.spawn_detached(argv, env, log_path(settings), after_exit)
    except BaseException:
        held.release()
        raise
    held.hand_over()  # the child holds it now; unlocking here would unlock it for the child
    return pid


def deliver_until_idle(
    store: Store,
    settings: Settings,
    env: Mapping[str, str],
    log: Callable[[str], None],
    held: fslock.HeldLock | None = None,
) -> bool:
    """Deliver what is pending, holding the deliver lock; False when another deliverer
    holds it. After letting the lock go it looks once more, and goes on if work came."""
    from orch.attempts.events.deliverer import Deliverer  # the sinks' modules: only here

    held = held or take_lock(settings)
    if held is None:
        return False
    deliverer = Deliverer(store, settings, env, log)
    while held is not None:
        try:
            deliverer.run(forever=False)
        finally:
            held.release()
        if not deliverer.has_work():
            break
        held = take_lock(settings)  # None: another deliverer took it, and does the rest
    return True


class Kicker:
    """``Store.on_events`` for a command: starts a deliverer when a sink subscribes to the
    events just committed, at the command's end (``finish``) or ``DELAY`` seconds after
    the change (``flush``), whichever comes first: a short command (a dispatch, a cancel)
    starts one deliverer once its own work is done, so the two never compete for a core,
    and a long one (a worker) still has its events delivered while it runs. Never raises:
    the change is committed whatever happens here."""

    DELAY = 1.0

    def __init__(
        self,
        store: Store,
        settings: Settings,
        env: Mapping[str, str],
        start: Callable[[Settings, Mapping[str, str], bool], int | None] = start_deliverer,
    ) -> None:
        self.store, self.settings, self.env, self._start = store, settings, env, start
        self._repositories: dict[str, tuple[Sink, ...] | None] = {}  # None: unreadable
        self._attempts: dict[str, str] = {}  # attempt id -> its repository
        self._lock = threading.Lock()
        self._due = False
        self._timer: threading.Timer | None = None
        self.started: list[int] = []

    def __call__(self, events: Mapping[str, frozenset[str]]) -> None:
        try:
            if not self._wanted(events):
                return
        except (OrchError, OSError):
            return  # delivery starts with the next change, or with 'orch events deliver'
        with self._lock:
            self._due = True
            if self._timer is None:
                self._timer = threading.Timer(self.DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def finish(self, later: Callable[[Callable[[], None]], bool]) -> None:
        """The command's end: the deliverer a change asked for starts when ``later`` calls
        it (the command line's last act: ``orch.cli.startup.start_last``), or now when
        ``later`` declines (orch running in process: a test's runner)."""
        if self._take_due() and not later(self._start_after_exit):
            self._start_now()

    def flush(self) -> None:
        """Start the deliverer now if a change asked for one (the timer, a server's handler
        done with a request)."""
        if self._take_due():
            self._start_now()

    def _take_due(self) -> bool:
        with self._lock:
            due, self._due = self._due, False
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                # ended now, not while the command exits: a thread still alive then would
                # cost the exit without teardown (``orch.cli.startup.exit_now``)
                timer.join()
        return due

    def _start_after_exit(self) -> None:
        self._start_now(after_exit=True)

    def _start_now(self, after_exit: bool = False) -> None:
        try:
            pid = self._start(self.settings, self.env, after_exit)
        except (OrchError, OSError):
            return
        if pid is not None:
            self.started.append(pid)

    def _wanted(self, events: Mapping[str, frozenset[str]]) -> bool:
        kinds = frozenset().union(*events.values())
        if any(sink.subscribes(kinds) for sink in self.settings.sinks):
            return True
        with self._lock:
            unknown = events.keys() - self._attempts.keys()
            if unknown:  # an attempt's repository never changes: asked once per process
                self._attempts.update(self.store.repositories_of(unknown))
            for attempt_id, written in events.items():
                repository = self._attempts.get(attempt_id)
                if repository is None:
                    continue
                if repository not in self._repositories:
                    self._repositories[repository] = _sinks_of(
                        Path(repository), self.settings.cache_dir
                    )
                sinks = self._repositories[repository]
                if sinks is None or any(s.subscribes(written) for s in sinks):
                    return True
            return False


def _sinks_of(root: Path, kept_in: Path) -> tuple[Sink, ...] | None:
    """The repository's sinks; None when its config cannot be read now (the deliverer
    says why, in its log)."""
    if not root.is_dir():
        return ()
    try:
        return load_repo_config(root, kept_in).sinks
    except OrchError:
        return None
