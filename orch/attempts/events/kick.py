"""Starting delivery after a change, never making the change slower.

One deliverer runs per store on this machine: the one holding the deliver lock (the
loop of ``orch serve`` / ``orch loop``, or ``orch events deliver`` in the background).
After a command commits a change that wrote events, ``Kicker`` looks whether any sink
could want them (the user config's sinks, or those of the changed attempts'
repositories) and, if so and the lock is free, takes the lock and starts
``orch events deliver`` detached (a session of its own) with the lock handed over to it:
the command then goes on at once. When the lock is busy, its holder delivers the change:
a deliverer looks for work again after it lets the lock go, and the event was committed
before the lock was found busy, so nothing falls between the two.
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
    from orch.store import Store


def lock_path(settings: Settings) -> Path:
    """The deliver lock of this store (one file per store URL under the locks directory)."""
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
    return settings.locks_dir / f"deliver-{digest}.lock"


def log_path(settings: Settings) -> Path:
    return settings.logs_dir / "events" / "deliver.log"


def take_lock(settings: Settings) -> fslock.HeldLock | None:
    return fslock.try_lock(lock_path(settings), f"event deliverer pid {os.getpid()}")


def start_deliverer(settings: Settings, env: Mapping[str, str]) -> int | None:
    """Start ``orch events deliver`` in the background holding the deliver lock; its pid,
    or None when a deliverer already holds the lock (it will see the change)."""
    held = take_lock(settings)
    if held is None:
        return None
    try:
        os.set_inheritable(held.fd, True)
        argv = [sys.executable, "-m", "orch", "events", "deliver", "--lock-fd", str(held.fd)]
        pid = processes.spawn_detached(argv, env, log_path(settings))
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
    """``Store.on_events`` for a command: starts a deliverer when a sink could want the
    events just committed, at the command's end (``flush``) or ``DELAY`` seconds after the
    change, whichever comes first: a short command (a dispatch, a cancel) starts one
    deliverer once its own work is done, so the two never compete for a core, and a long
    one (a worker) still has its events delivered while it runs. Never raises: the change
    is committed whatever happens here."""

    DELAY = 1.0

    def __init__(
        self,
        store: Store,
        settings: Settings,
        env: Mapping[str, str],
        start: Callable[[Settings, Mapping[str, str]], int | None] = start_deliverer,
    ) -> None:
        self.store, self.settings, self.env, self._start = store, settings, env, start
        self._repositories: dict[str, bool] = {}  # repository -> it has sinks
        self._attempts: dict[str, str] = {}  # attempt id -> its repository
        self._lock = threading.Lock()
        self._due = False
        self._timer: threading.Timer | None = None
        self.started: list[int] = []

    def __call__(self, attempt_ids: frozenset[str]) -> None:
        try:
            if not self._wanted(attempt_ids):
                return
        except (OrchError, OSError):
            return  # delivery starts with the next change, or with 'orch events deliver'
        with self._lock:
            self._due = True
            if self._timer is None:
                self._timer = threading.Timer(self.DELAY, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Start the deliverer now if a change asked for one (the command's end)."""
        with self._lock:
            due, self._due = self._due, False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not due:
            return
        try:
            pid = self._start(self.settings, self.env)
        except (OrchError, OSError):
            return
        if pid is not None:
            self.started.append(pid)

    def _wanted(self, attempt_ids: frozenset[str]) -> bool:
        if self.settings.sinks:
            return True
        with self._lock:
            unknown = attempt_ids - self._attempts.keys()
            if unknown:  # an attempt's repository never changes: asked once per process
                self._attempts.update(self.store.repositories_of(unknown))
            changed = {self._attempts[a] for a in attempt_ids if a in self._attempts}
            for repository in changed - self._repositories.keys():
                self._repositories[repository] = _has_sinks(Path(repository))
            return any(self._repositories[r] for r in changed)


def _has_sinks(root: Path) -> bool:
    if not root.is_dir():
        return False
    try:
        return bool(load_repo_config(root).sinks)
    except OrchError:
        return True  # a config that cannot be read now: the deliverer says why, in its log
