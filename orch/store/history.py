"""The store's history: its size, and removing the rows of attempts long ended and cleaned.

Pruning deletes an attempt with every row that hangs off it (events, the deliveries of
its events, runs, messages, its port lease, a task workspace naming it), one small batch
per write transaction, so that the write lock is never held longer than one batch takes:
a worker claiming meanwhile waits for at most that. Only attempts that ended and whose
workspace was cleaned up (removed or archived) are ever pruned; their archives on disk
are not touched here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, Table, delete, func, select, text

from orch.models import CLEANED_UP, TERMINAL_STATES, Attempt, State, WorkspaceStatus
from orch.record import record
from orch.store.base import StoreBase, to_attempt
from orch.store.engine import is_sqlite, sqlite_path
from orch.store.tables import (
    attempt_events,
    attempt_messages,
    attempt_runs,
    attempts,
    event_deliveries,
    metadata,
    port_leases,
    task_workspaces,
)

# what hangs off an attempt, deleted before it (children first: SQLite may run with its
# foreign keys unenforced, so nothing is left to a cascade)
_CHILDREN: tuple[Table, ...] = (
    event_deliveries,
    attempt_events,
    attempt_runs,
    attempt_messages,
    port_leases,
    task_workspaces,
)


@record
class StoreStats:
    """``orch db stats``: the store's size on disk (None: unknown), rows per table, and
    attempts per state and per workspace status."""

    backend: str
    size_bytes: int | None
    rows: dict[str, int]
    states: dict[str, int]
    workspaces: dict[str, int]


class HistoryOps(StoreBase):
    def prunable(
        self,
        cutoff: dt.datetime,
        limit: int,
        workspace_status: WorkspaceStatus,
        state: State,
        after: Attempt | None = None,
    ) -> list[Attempt]:
        """Up to ``limit`` attempts in ``state`` whose workspace is ``workspace_status``
        and that ended before ``cutoff``, oldest first; ``after``: those after it in that
        order (the next batch). One status and state at a time, so that the index
        ``ix_attempts_workspace`` gives the order and the read stops at ``limit``."""
        if workspace_status not in CLEANED_UP or state not in TERMINAL_STATES:
            return []  # only ended attempts whose workspace was cleaned up are pruned
        query = (
            select(attempts)
            .where(attempts.c.workspace_status == str(workspace_status))
            .where(attempts.c.state == str(state))
            .where(attempts.c.finished_at < cutoff)
            .order_by(attempts.c.finished_at, attempts.c.id)
            .limit(limit)
        )
        if after is not None and after.finished_at is not None:
            query = query.where(
                (attempts.c.finished_at > after.finished_at)
                | ((attempts.c.finished_at == after.finished_at) & (attempts.c.id > after.id))
            )
        with self._read() as conn:
            return [to_attempt(r) for r in conn.execute(query)]

    def count_rows_of(self, ids: Sequence[str]) -> dict[str, int]:
        """How many rows of each table belong to these attempts (a dry run's count)."""
        with self._read() as conn:
            return _rows_of(conn, ids)

    def prune(self, ids: Sequence[str]) -> dict[str, int]:
        """Delete these attempts and their rows in one write transaction; the rows
        deleted per table. An attempt that is no longer pruneable (it cannot become
        live again, but is checked all the same) is left."""
        with self._write() as conn:
            still = list(
                conn.scalars(
                    select(attempts.c.id)
                    .where(attempts.c.id.in_(list(ids)))
                    .where(attempts.c.workspace_status.in_(sorted(str(w) for w in CLEANED_UP)))
                    .where(attempts.c.state.in_(sorted(str(s) for s in TERMINAL_STATES)))
                )
            )
            counts = _rows_of(conn, still)
            for table in _CHILDREN:
                conn.execute(delete(table).where(table.c.attempt_id.in_(still)))
            conn.execute(delete(attempts).where(attempts.c.id.in_(still)))
            return counts

    def refresh_statistics(self) -> None:
        """After a large prune on PostgreSQL, let the planner see the tables as they are
        now (``ANALYZE`` of the pruned tables: it samples them and takes no lock that
        stops a worker's reads or writes); autovacuum would, a minute or more later.
        SQLite keeps no statistics orch relies on (its plans hold without them, and a
        full ``ANALYZE`` would hold the write lock for a whole scan): nothing there."""
        if is_sqlite(self.url):
            return
        names = ", ".join(table.name for table in (*_CHILDREN, attempts))
        with self._write() as conn:
            conn.execute(text(f"ANALYZE {names}"))

    def stats(self) -> StoreStats:
        with self._read() as conn:
            rows = {
                name: int(conn.scalar(select(func.count()).select_from(table)) or 0)
                for name, table in sorted(metadata.tables.items())
            }
            states = {
                str(state): int(n)
                for state, n in conn.execute(
                    select(attempts.c.state, func.count()).group_by(attempts.c.state)
                )
            }
            workspaces = {
                str(status): int(n)
                for status, n in conn.execute(
                    select(attempts.c.workspace_status, func.count()).group_by(
                        attempts.c.workspace_status
                    )
                )
            }
            if is_sqlite(self.url):
                size = _sqlite_size(self.url)
            else:
                size = conn.scalar(text("SELECT pg_database_size(current_database())"))
        backend = "sqlite" if is_sqlite(self.url) else "postgresql"
        known = int(size) if size is not None else None
        return StoreStats(backend, known, rows, states, workspaces)


def _rows_of(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    counts = {"attempts": len(ids)}
    for table in _CHILDREN:
        counts[table.name] = int(
            conn.scalar(
                select(func.count()).select_from(table).where(table.c.attempt_id.in_(list(ids)))
            )
            or 0
        )
    return counts


def _sqlite_size(url: str) -> int | None:
    """The database file and its write-ahead log, as they are on disk."""
    path = sqlite_path(url)
    if path is None:
        return None
    total = 0
    for part in (path, path.with_name(path.name + "-wal")):
        try:
            total += part.stat().st_size
        except OSError:
            continue
    return total
