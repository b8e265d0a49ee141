"""Reading the event stream (``orch events``), following it, and the deliveries that
failed for good: listed, and tried again by hand."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.attempts.events.deliverer import Deliverer
from orch.attempts.events.document import document
from orch.attempts.events.kick import start_deliverer
from orch.config import Settings
from orch.errors import InvalidInput, NotFound, OrchError
from orch.git import Git
from orch.models import AttemptEvent, DeliveryState, EventDelivery

if TYPE_CHECKING:
    from orch.store import Store

FOLLOW_WAIT = 1.0  # seconds between looks when the change watcher says nothing


def recent(store: Store, attempt_id: str | None, limit: int) -> list[AttemptEvent]:
    return store.latest_events(limit, attempt_id)


def documents(store: Store, events: list[AttemptEvent]) -> list[dict[str, Any]]:
    """The event documents (version 1) of ``events``, each with its attempt as it is now."""
    attempts = {a.id: a for a in store.get_many(sorted({e.attempt_id for e in events}))}
    return [document(e, attempts.get(e.attempt_id)) for e in events]


def follow(store: Store, attempt_id: str | None, after: int) -> Iterator[list[AttemptEvent]]:
    """Each batch of events newer than ``after`` as it is committed, until interrupted."""
    watcher = store.change_watcher(events=True)
    try:
        while True:
            batch = store.events_after(after, attempt_id)
            if batch:
                after = batch[-1].id
                yield batch
            watcher.wait(FOLLOW_WAIT)
    finally:
        watcher.close()


def failed(store: Store) -> list[EventDelivery]:
    return store.deliveries([DeliveryState.FAILED])


def retry(
    store: Store, settings: Settings, env: Mapping[str, str], event_id: int | None
) -> list[EventDelivery]:
    """Failed deliveries (of ``event_id``, or every one) made pending with fresh tries, and
    a deliverer started for them (unless one runs)."""
    again = store.retry_deliveries(event_id)
    if not again:
        if event_id is not None:
            found = store.events_after(event_id - 1, limit=1)
            if not found or found[0].id != event_id:
                raise NotFound(f"no event {event_id} ('orch events' lists them)")
        which = f"event {event_id} has" if event_id is not None else "there are"
        raise InvalidInput(f"{which} no failed deliveries to try again ('orch events --failed')")
    start_deliverer(settings, env)
    return again


def secrets_in_git(store: Store, settings: Settings, git: Git) -> list[str]:
    """A warning per webhook whose secret is written in a config file that git tracks
    (``orch.toml`` is usually committed: ``secret_env`` keeps it out)."""
    deliverer = Deliverer(store, settings, os.environ, lambda line: None)
    warned: list[str] = []
    tracked: dict[Path, bool] = {}
    for sink in deliverer.sinks():
        if sink.secret is None or sink.source is None:
            continue
        if sink.source not in tracked:
            try:
                tracked[sink.source] = git.tracks(sink.source)
            except OrchError:  # no git, or the file's directory is gone
                tracked[sink.source] = False
        if tracked[sink.source]:
            warned.append(
                f"the secret of webhook {sink.name} is written in {sink.source}, which git "
                "tracks: anyone with the repository can sign events; use secret_env"
            )
    return warned
