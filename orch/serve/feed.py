"""The dashboard's change feed: one thread watches the store and every open event stream
(``GET /api/changes``, server-sent events) is told when something the page shows changed.

One watcher for the whole server, not one per client: the thread sleeps on the store's
change watcher (``LISTEN orch_events`` on PostgreSQL, ``PRAGMA data_version`` on SQLite)
and, woken or every ``LOOK_EVERY`` seconds, compares the store's change mark (the newest
event, the task queue, the failed deliveries) and the loop's "needs attention" with what
it saw last. Only a moved mark is a change, so a heartbeat (a commit on SQLite) wakes the
thread but tells no page. The messages are small, a version and the attempts whose
events moved it; the page re-reads what it shows.

A stream holds one thread of the threading HTTP server, so streams are bounded
(``max_streams``; one more is refused and its page polls), each ends after ``lifetime``
(the browser's EventSource reconnects after ``retry``), a keep-alive comment every
``keepalive`` seconds finds a client that went away, and ``close`` ends every stream at
once (shutdown).
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.errors import OrchError
from orch.serve import runtime

if TYPE_CHECKING:
    from orch.store import Store

MAX_STREAMS = 32  # open event streams at most; a browser tab holds one
KEEPALIVE = 15.0  # seconds of quiet before a comment line, which finds a dead client
LIFETIME = 600.0  # seconds a stream lasts before the server ends it (the client reconnects)
RETRY_MS = 1000  # the reconnection delay a browser is told
LOOK_EVERY = 0.5  # seconds: the mark is compared this often even with no notification
HISTORY = 64  # recent versions whose attempts are remembered for a stream a little behind
MAX_IDS = 100  # attempts named in one message at most; more: "attempts": null (all)


class FeedFull(Exception):
    """Every stream is taken, or the server is stopping."""


def message(version: int, attempts: list[str] | None) -> bytes:
    data = json.dumps({"version": version, "attempts": attempts}, separators=(",", ":"))
    return f"id: {version}\nevent: changed\ndata: {data}\n\n".encode()


class ChangeFeed:
    def __init__(
        self,
        store: Store,
        home: Path,
        max_streams: int = MAX_STREAMS,
        keepalive: float = KEEPALIVE,
        lifetime: float = LIFETIME,
    ) -> None:
        self._store = store
        self._home = home
        self.max_streams = max_streams
        self.keepalive = keepalive
        self.lifetime = lifetime
        self._cond = threading.Condition()
        self._version = 0
        self._history: collections.deque[tuple[int, frozenset[str] | None]] = collections.deque(
            maxlen=HISTORY
        )
        self._streams = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- the streams -------------------------------------------------------------------------

    @property
    def streams(self) -> int:
        with self._cond:
            return self._streams

    @contextlib.contextmanager
    def stream(self) -> Iterator[Iterator[bytes]]:
        """One client's messages (raises ``FeedFull`` when none may open)."""
        with self._cond:
            if self._closed or self._streams >= self.max_streams:
                raise FeedFull
            self._streams += 1
            if self._thread is None:  # the first stream starts the watching thread
                self._thread = threading.Thread(target=self._watch, name="orch-feed", daemon=True)
                self._thread.start()
            seen = self._version
        try:
            yield self._messages(seen)
        finally:
            with self._cond:
                self._streams -= 1

    def _messages(self, seen: int) -> Iterator[bytes]:
        # at once: the reconnection delay and the current version, so that a page that
        # reconnects re-reads what changed while it was away
        yield f"retry: {RETRY_MS}\n\n".encode() + message(seen, None)
        end = time.monotonic() + self.lifetime
        while True:
            with self._cond:
                left = end - time.monotonic()
                self._cond.wait_for(
                    lambda seen=seen: self._closed or self._version != seen,  # type: ignore[misc]
                    timeout=max(0.0, min(self.keepalive, left)),
                )
                if self._closed:
                    return
                if self._version == seen:
                    if time.monotonic() >= end:
                        return
                    out = b": keep-alive\n\n"
                else:
                    out = message(self._version, self._touched_since(seen))
                    seen = self._version
            yield out

    def _touched_since(self, seen: int) -> list[str] | None:
        """The attempts changed after version ``seen``; None when not known (too far back)."""
        found: set[str] = set()
        newer = [(v, ids) for v, ids in self._history if v > seen]
        if not newer or newer[0][0] != seen + 1:
            return None
        for _, ids in newer:
            if ids is None:
                return None
            found |= ids
        return sorted(found)[:MAX_IDS] if len(found) <= MAX_IDS else None

    def close(self) -> None:
        """End every stream and the watching thread (the server is shutting down)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # -- the watching thread -----------------------------------------------------------------

    def _look(self) -> tuple[Any, ...]:
        snapshot = runtime.read_json(runtime.serve_dir(self._home) / "status.json") or {}
        attention = json.dumps(snapshot.get("attention"), sort_keys=True)
        return (*self._store.change_mark(), attention)

    def _publish(self, ids: frozenset[str] | None) -> None:
        with self._cond:
            self._version += 1
            self._history.append((self._version, ids))
            self._cond.notify_all()

    def _watch(self) -> None:
        watcher = None
        last: tuple[Any, ...] | None = None
        while not self._closed:
            try:
                if watcher is None:
                    watcher = self._store.change_watcher(events=True)
                if last is not None:
                    watcher.wait(LOOK_EVERY)
                    if self._closed:
                        break
                now = self._look()
                if last is None:
                    # the first look: a change made between a stream's first message and
                    # this look would be missed, so the streams open now re-read once
                    self._publish(None)
                elif now != last:
                    self._publish(self._attempts_between(last[0], now[0]))
                last = now
            except OrchError:
                time.sleep(LOOK_EVERY)  # the store is away: the next look tries again
            except Exception:  # a bug: keep it in the log and keep the feed alive
                traceback.print_exc(file=sys.stderr)
                time.sleep(LOOK_EVERY)
        if watcher is not None:
            watcher.close()

    def _attempts_between(self, before: int, after: int) -> frozenset[str] | None:
        if after == before:
            return frozenset()  # the queue or the deliveries moved, no attempt's events
        events = self._store.events_after(before, limit=MAX_IDS + 1)
        if len(events) > MAX_IDS:
            return None
        return frozenset(e.attempt_id for e in events if e.id <= after)
