"""Waiting for changes to attempts without burning a core.

SQLite: ``PRAGMA data_version`` on one long-lived connection changes whenever another
connection commits; checking it is a local read, so it is polled every 2 ms, growing to
20 ms. PostgreSQL: ``LISTEN orch_attempts`` (a trigger notifies on every change of an
attempt's state or workspace) and block on the socket; if the notification connection
drops, fall back to polling and re-listen when the server is back. LISTEN needs a session
of its own on the server, which a transaction-mode pooler (PgBouncer) cannot give: behind
one, the watcher listens on ``listen_url`` (the server itself), and without it there is
only the caller's sweep (``SweepWatcher``), said once per process. Waiting for new
events listens on ``orch_events`` instead (a trigger notifies each inserted event).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

CHANNEL = "orch_attempts"
EVENTS_CHANNEL = "orch_events"  # every new event (migration 0010)
_log = logging.getLogger(__name__)
_said_no_listen: list[bool] = []  # the warning below, once per process


class ChangeWatcher(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if something (may have) changed."""

    def close(self) -> None: ...


class SqliteChangeWatcher:
    def __init__(self, engine: Engine, low: float = 0.002, high: float = 0.02) -> None:
        self._conn: Any = engine.raw_connection()
        self._low, self._high = low, high
        self._last = self._version()

    def _version(self) -> int:
        cur = self._conn.cursor()
        try:
            cur.execute("PRAGMA data_version")
            row = cur.fetchone()
            return int(row[0]) if row else 0
        finally:
            cur.close()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = self._low
        while True:
            version = self._version()
            if version != self._last:
                self._last = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, self._high)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SweepWatcher:
    """No notifications to wait for: sleep the whole timeout and let the caller look."""

    def __init__(self, sleep: Callable[[float], object] = time.sleep) -> None:
        self._sleep = sleep

    def wait(self, timeout: float) -> bool:
        self._sleep(timeout)
        return True

    def close(self) -> None:
        pass


def no_listen_url() -> SweepWatcher:
    """The watcher behind a transaction-mode pooler with no ``listen_url``: saying why
    waking up now takes a sweep, once."""
    if not _said_no_listen:
        _said_no_listen.append(True)
        _log.warning(
            "orch: the store is reached through a transaction-mode pooler (pooler = true) "
            "and listen_url is not set: LISTEN cannot work through it, so waiting for "
            "attempts wakes only on its sweep (up to a second late); set listen_url "
            "(ORCH_LISTEN_URL) to the PostgreSQL server's own URL"
        )
    return SweepWatcher()


class PostgresChangeWatcher:
    POLL = 0.25  # seconds between looks while the notification connection is down

    def __init__(
        self, url: str, channel: str = CHANNEL, application_name: str | None = None
    ) -> None:
        self._channel = channel
        parsed = make_url(url)
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        # a name in the URL wins, as on the store's own connections
        self._named: dict[str, Any] = (
            {"application_name": application_name}
            if application_name and "application_name" not in parsed.query
            else {}
        )
        self._conn: Any = None
        self.fallbacks = 0  # how often the notification connection was lost
        self._listen()

    def _listen(self) -> bool:
        import psycopg

        try:
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=5, **self._named
            )
            self._conn.execute(f"LISTEN {self._channel}")
        except psycopg.Error:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.close()
        self._conn = None

    def wait(self, timeout: float) -> bool:
        import psycopg

        if self._conn is None:
            if not self._listen():
                time.sleep(min(timeout, self.POLL))
            # polling, or listening again: either way the caller re-reads, since a change
            # committed while nobody listened was notified to no one
            return True
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error:
            self.fallbacks += 1
            self._drop()
            time.sleep(min(timeout, self.POLL))
            return True

    def close(self) -> None:
        self._drop()
