"""The store's foundation: transactions, row conversion, events, numbering runs.

One short transaction per operation; writes on SQLite start with ``BEGIN IMMEDIATE``
(see ``engine``). Every change appends an event in the same transaction as the change:
the outbox that sinks are fed from (``outbox``). After a transaction that wrote events
commits, ``on_events`` (set by whoever opened the store) is called with the attempts and
the kinds of the events written (each event's kind and the state it moved its attempt
into: the names a sink subscribes with), so that delivery can start for a sink that wants
them without a query; it never runs for a transaction that rolled back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Self

from sqlalchemy import Connection, Engine, func, insert, select

from orch.fslock import WriterLock
from orch.models import (
    Attempt,
    AttemptEvent,
    Message,
    Run,
    RunKind,
    State,
    WorkspaceStatus,
    event_state,
)
from orch.store.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite, sqlite_path, translate_errors
from orch.store.tables import attempt_events, attempt_runs

_INSERT_EVENT = insert(attempt_events)
_WROTE_EVENTS = "orch_wrote_events"  # a key of the connection's info: events to announce

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """UTC, whatever the backend hands back: SQLite naive (orch writes UTC only),
    PostgreSQL in the session's TimeZone."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _stamp(value: dt.datetime | None) -> dt.datetime:
    """A timestamp its column never leaves empty (``created_at``, ``started_at``), in UTC."""
    aware = _aware(value)
    assert aware is not None
    return aware


def to_attempt(row: Any) -> Attempt:
    """Build an ``Attempt`` from a row of the attempts table."""
    return Attempt(
        id=row.id,
        task_key=row.task_key,
        attempt_number=row.attempt_number,
        state=State(row.state),
        workspace_status=WorkspaceStatus(row.workspace_status),
        repository=row.repository,
        base_ref=row.base_ref,
        base_commit=row.base_commit,
        branch_name=row.branch_name,
        worktree_path=row.worktree_path,
        worker=row.worker,
        payload_path=row.payload_path,
        prompt=row.prompt,
        reason=row.reason,
        created_at=_stamp(row.created_at),
        updated_at=_stamp(row.updated_at),
        archive_path=row.archive_path,
        phase=row.phase,
        target_host=row.target_host,
        workspace_host=row.workspace_host,
        repository_url=row.repository_url,
        sparse_paths=tuple(row.sparse_paths) if row.sparse_paths is not None else None,
        submodules=row.submodules,
        lfs_skip_smudge=row.lfs_skip_smudge,
        lease_token=row.lease_token,
        lease_expires_at=_aware(row.lease_expires_at),
        heartbeat_at=_aware(row.heartbeat_at),
        lease_holder=row.lease_holder,
        worker_host=row.worker_host,
        worker_pid=row.worker_pid,
        worker_started_at=row.worker_started_at,
        dispatcher_host=row.dispatcher_host,
        dispatcher_pid=row.dispatcher_pid,
        dispatcher_started_at=row.dispatcher_started_at,
        agent_pid=row.agent_pid,
        agent_started_at=row.agent_started_at,
        exit_code=row.exit_code,
        summary=row.summary,
        finished_at=_aware(row.finished_at),
        changes_tip=row.changes_tip,
        commits_ahead=row.commits_ahead,
        files_changed=row.files_changed,
        lines_added=row.lines_added,
        lines_removed=row.lines_removed,
        changes_at=_aware(row.changes_at),
        landed_commit=row.landed_commit,
        landed_tip=row.landed_tip,
        landed_into=row.landed_into,
        landed_strategy=row.landed_strategy,
        landed_by=row.landed_by,
        landed_at=_aware(row.landed_at),
        landing_commit=row.landing_commit,
        landing=dict(row.landing) if row.landing is not None else None,
        pr_url=row.pr_url,
        pr_number=row.pr_number,
        pr_state=row.pr_state,
    )


def to_event(row: Any) -> AttemptEvent:
    return AttemptEvent(
        id=row.id,
        attempt_id=row.attempt_id,
        kind=row.kind,
        actor=row.actor,
        detail=dict(row.detail or {}),
        created_at=_stamp(row.created_at),
        state=State(row.state) if row.state else None,
    )


def to_message(row: Any) -> Message:
    return Message(
        id=row.id,
        attempt_id=row.attempt_id,
        body=row.body,
        actor=row.actor,
        created_at=_stamp(row.created_at),
        delivered_at=_aware(row.delivered_at),
        run_number=row.run_number,
    )


def to_run(row: Any) -> Run:
    return Run(
        attempt_id=row.attempt_id,
        number=row.number,
        prompt=row.prompt,
        command=tuple(row.command),
        log_path=row.log_path,
        pid=row.pid,
        started_at=_stamp(row.started_at),
        ended_at=_aware(row.ended_at),
        exit_code=row.exit_code,
        kind=RunKind(row.kind),
        timed_out=bool(row.timed_out),
    )


class StoreBase:
    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.url = str(engine.url)
        self._clock = clock
        # called after a write transaction that appended events has committed: attempt id
        # -> the kinds (and states) of its events written
        self.on_events: Callable[[dict[str, frozenset[str]]], None] | None = None
        self._writer = engine.execution_options(orch_write=True)
        path = sqlite_path(self.url) if is_sqlite(self.url) else None
        self._write_lock = (
            WriterLock(path.with_name(path.name + ".write-lock"), SQLITE_BUSY_TIMEOUT_MS / 1000)
            if path is not None
            else None
        )

    def clock(self) -> dt.datetime:
        """Now, in UTC (SQLite keeps wall time without its offset, so only UTC is written)."""
        return self._clock().astimezone(dt.UTC)

    def close(self) -> None:
        """Release the store's connections (PostgreSQL pools hold them open)."""
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (SQLite: behind the writer lock, ``BEGIN IMMEDIATE``)."""
        with self._writer_lock(), translate_errors(self.url), self._writer.begin() as conn:
            try:
                yield conn
            finally:  # the info lives with the pooled connection: never left for the next
                # (one the server dropped is invalid: touching its info would raise over
                # the error that matters, and the pool throws it away, info and all)
                wrote = None if conn.invalidated else conn.info.pop(_WROTE_EVENTS, None)
        if wrote and self.on_events is not None:
            self.on_events({attempt_id: frozenset(kinds) for attempt_id, kinds in wrote.items()})

    def _writer_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._write_lock.held() if self._write_lock else contextlib.nullcontext()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(self.url), self.engine.begin() as conn:
            yield conn

    def record_event(self, attempt_id: str, kind: str, actor: str, **detail: Any) -> None:
        """Append an event that goes with no state change (what set-up did, a warning)."""
        with self._write() as conn:
            self._event(conn, attempt_id, kind, actor, **detail)

    def _event(
        self, conn: Connection, attempt_id: str, kind: str, actor: str, **detail: Any
    ) -> None:
        self._events(conn, kind, actor, [(attempt_id, detail)])

    def _new_run(self, conn: Connection, attempt_id: str, **values: Any) -> Run:
        """Record a run of the attempt (an agent's or a check's) as started now, numbered
        after every earlier run of the attempt: the highest number, not a count, so that
        a number is never given twice."""
        latest = select(func.max(attempt_runs.c.number)).where(
            attempt_runs.c.attempt_id == attempt_id
        )
        number = (conn.scalar(latest) or 0) + 1
        run = conn.execute(
            insert(attempt_runs)
            .values(attempt_id=attempt_id, number=number, started_at=self.clock(), **values)
            .returning(*attempt_runs.c)
        ).one()
        return to_run(run)

    def _events(
        self, conn: Connection, kind: str, actor: str, details: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """One event per (attempt id, detail), inserted in one statement."""
        now = self.clock()
        rows = [
            {
                "attempt_id": attempt_id,
                "kind": kind,
                "actor": actor[:255],
                "detail": detail,
                "created_at": now,
                "state": _state_text(kind, detail),
            }
            for attempt_id, detail in details
        ]
        wrote = conn.info.setdefault(_WROTE_EVENTS, {})
        for row in rows:
            names = wrote.setdefault(row["attempt_id"], set())
            names.add(kind)
            if row["state"] is not None:
                names.add(row["state"])
        if len(rows) == 1:  # the common case, through the prebuilt statement
            conn.execute(_INSERT_EVENT, rows[0])
        elif rows:
            # one multi-row INSERT (an executemany would be a statement per row on PostgreSQL)
            conn.execute(_INSERT_EVENT.values(rows))


def _state_text(kind: str, detail: dict[str, Any]) -> str | None:
    state = event_state(kind, detail)
    return str(state) if state is not None else None
