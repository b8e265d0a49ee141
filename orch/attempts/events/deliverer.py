"""The deliverer: each configured sink is given the events it subscribes to, once.

A pass plans the deliveries of new events for every sink (the user config's sinks get
every repository's events, a repository's ``orch.toml`` sinks that repository's; a sink
gets only events made after its config file last changed, never the history), then
each sink (in a thread of its own, so a slow one holds no other back) claims its due
deliveries one at a time, oldest first, and hands each to the sink. A failure worth
another try waits ``event_retry_base`` seconds, doubling each time, up to
``event_max_tries`` tries; then, or at once for a refusal (a webhook's 4xx), the delivery
has failed for good and shows in ``orch events --failed`` and ``orch doctor``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.events.document import document, hook_environment, notification
from orch.attempts.events.kick import take_lock
from orch.config import Settings
from orch.errors import ConfigError, OrchError
from orch.models import Attempt, DeliveryState
from orch.repo_config import load_repo_config
from orch.sinks import EVERY_EVENT, Sink
from orch.store.outbox import Claimed, SinkScope
from orch.system import delivery

if TYPE_CHECKING:
    from orch.store import Store

CLAIM_MARGIN = 5.0  # seconds a claim outlasts its sink's timeout
MAX_PAUSE = 3600.0  # the longest wait between two tries
IDLE_WAIT = 5.0  # how long the loop's deliverer sleeps when nothing is due

Log = Callable[[str], None]


def _mtime(path: Path | None) -> dt.datetime | None:
    if path is None:
        return None
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return None


def scope_of(sink: Sink) -> SinkScope:
    return SinkScope(
        name=sink.name,
        kinds=None if EVERY_EVENT in sink.on else sink.on,
        repository=sink.scope,
        since=_mtime(sink.source),
    )


class Deliverer:
    def __init__(self, store: Store, settings: Settings, env: Mapping[str, str], log: Log) -> None:
        self.store, self.settings, self.env, self.log = store, settings, env, log
        self._repo_sinks: dict[str, tuple[object, tuple[Sink, ...]]] = {}
        self.stop = threading.Event()

    # -- which sinks ---------------------------------------------------------------------------

    def sinks(self) -> list[Sink]:
        """Every sink: the user config's, then each repository's whose name the user
        config does not use (those get only their repository's events)."""
        found = list(self.settings.sinks)
        taken = {s.name for s in found}
        for repository in self.store.repositories():
            found.extend(s for s in self._of_repository(repository) if s.name not in taken)
        return found

    def _of_repository(self, repository: str) -> tuple[Sink, ...]:
        root = Path(repository)
        stamp = tuple(_mtime(root / name) for name in ("orch.toml", "pyproject.toml"))
        cached = self._repo_sinks.get(repository)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        sinks: tuple[Sink, ...] = ()
        if root.is_dir():
            try:
                sinks = load_repo_config(root, self.settings.cache_dir).sinks
            except ConfigError as exc:
                self.log(f"sinks of {repository} not read: {exc.message}")
        self._repo_sinks[repository] = (stamp, sinks)
        return sinks

    # -- passes ----------------------------------------------------------------------------

    def pass_once(self) -> list[Sink]:
        """Plan and deliver everything due now; the sinks it knew."""
        sinks = self.sinks()
        for sink in sinks:
            self.store.plan(scope_of(sink))
        names = sorted({s.name for s in sinks})
        if len(names) == 1:
            self._drain(names[0], sinks)
        elif names:
            with concurrent.futures.ThreadPoolExecutor(min(len(names), 4)) as pool:
                for done in [pool.submit(self._drain, n, sinks) for n in names]:
                    done.result()
        return sinks

    def has_work(self) -> bool:
        """Something is left for a deliverer: an event not planned, or a pending delivery."""
        sinks = self.sinks()
        if any(self.store.has_unplanned(scope_of(s)) for s in sinks):
            return True
        return self.store.next_due([s.name for s in sinks]) is not None

    def run(self, forever: bool) -> None:
        """Deliver until nothing is pending (``forever``: until ``stop``), sleeping on the
        store's change watcher between passes."""
        watcher = self.store.change_watcher(events=True)
        try:
            while not self.stop.is_set():
                sinks = self.pass_once()
                due = self.store.next_due([s.name for s in sinks])
                if due is None and not forever:
                    return
                pause = IDLE_WAIT
                if due is not None:
                    pause = min(pause, (due - self.store.clock()).total_seconds())
                if pause > 0:
                    watcher.wait(pause)
        finally:
            watcher.close()

    # -- one delivery ----------------------------------------------------------------------------

    def _drain(self, name: str, sinks: list[Sink]) -> None:
        mine = [s for s in sinks if s.name == name]
        lease = max(s.timeout for s in mine) + CLAIM_MARGIN
        while not self.stop.is_set():
            claimed = self.store.claim_delivery(name, lease)
            if claimed is None:
                return
            self._deliver(claimed, mine)

    def _deliver(self, claimed: Claimed, mine: list[Sink]) -> None:
        attempt = self.store.get(claimed.event.attempt_id)
        sink = next((s for s in mine if s.scope == attempt.repository), None) or next(
            (s for s in mine if s.scope is None), None
        )
        if sink is None:  # configured for another repository only: not this one's to send
            self.store.end_delivery(claimed, DeliveryState.PENDING, "no such sink", MAX_PAUSE)
            return
        outcome = self._send(sink, claimed, attempt)
        tries = claimed.delivery.tries + 1
        key = claimed.delivery.key
        if outcome.delivered:
            self.store.end_delivery(claimed, DeliveryState.DELIVERED)
        elif outcome.skipped:
            self.store.end_delivery(claimed, DeliveryState.SKIPPED, outcome.error)
        elif outcome.retry and tries < self.settings.event_max_tries:
            pause = min(self.settings.event_retry_base * 2 ** (tries - 1), MAX_PAUSE)
            self.store.end_delivery(claimed, DeliveryState.PENDING, outcome.error, pause)
            self.log(f"delivery {key} failed (try {tries}), again in {pause:g}s: {outcome.error}")
        else:
            self.store.end_delivery(claimed, DeliveryState.FAILED, outcome.error)
            self.log(f"delivery {key} failed for good after {tries} tries: {outcome.error}")

    def _send(self, sink: Sink, claimed: Claimed, attempt: Attempt) -> delivery.Outcome:
        doc = document(claimed.event, attempt)
        body = delivery.encode(doc)
        key = claimed.delivery.key
        if sink.kind == "hook":
            assert sink.command is not None
            root = Path(attempt.repository)
            env = {**self.env, **hook_environment(doc, key)}
            log_path = self.settings.logs_dir / "events" / f"{sink.name}.log"
            cwd = root if root.is_dir() else self.settings.home
            return delivery.run_hook(sink.command, body, env, cwd, log_path, sink.timeout)
        if sink.kind == "webhook":
            assert sink.url is not None
            secret = sink.secret
            if sink.secret_env is not None:
                secret = self.env.get(sink.secret_env)
                if not secret:
                    return delivery.Outcome(
                        False, f"the environment variable {sink.secret_env} is not set"
                    )
            return delivery.post_webhook(
                sink.url, body, secret, key, claimed.event.kind, sink.timeout
            )
        title, message = notification(doc)
        return delivery.notify(title, message, sink.timeout)


def deliver_forever(store: Store, settings: Settings, log: Log, stop: threading.Event) -> None:
    """The loop's deliverer (``orch serve`` / ``orch loop``): holds the deliver lock while
    it runs, so that no command starts another; waits while a detached one holds it."""
    deliverer = Deliverer(store, settings, os.environ, log)
    deliverer.stop = stop
    while not stop.is_set():
        held = take_lock(settings)
        if held is None:
            stop.wait(1.0)
            continue
        try:
            deliverer.run(forever=True)
        except OrchError as exc:  # an outage of the store: say so, and go on
            log(f"event delivery: {exc.message}")
            stop.wait(1.0)
        finally:
            held.release()


def deliver_once(store: Store, settings: Settings, log: Log) -> None:
    """One pass (``orch loop --once``), unless another deliverer holds the lock."""
    held = take_lock(settings)
    if held is None:
        return
    try:
        Deliverer(store, settings, os.environ, log).pass_once()
    finally:
        held.release()
