"""The outbox: events read back in order, and their deliveries to sinks.

Events are written by every change, in the change's own transaction (``base._events``);
this module never writes one. A delivery row is made per event and subscribing sink
(``plan``), claimed by one deliverer at a time (``claim``: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) with a claim that expires, so a deliverer
killed mid-delivery is followed by another that delivers again under the same
idempotency key. A delivery waits while an earlier event of the same attempt is still
pending for the same sink (in order per attempt); one failed for good does not hold the
later ones back. Results are written only under the claim's token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select, update

from orch.models import AttemptEvent, DeliveryState, EventDelivery, TaskState
from orch.record import record
from orch.store.base import StoreBase, _aware, to_event
from orch.store.dialects import upsert
from orch.store.engine import is_sqlite
from orch.store.tables import attempt_events as _E
from orch.store.tables import attempts as _T
from orch.store.tables import event_deliveries as _D
from orch.store.tables import queued_tasks as _Q

PLAN_BATCH = 500
# an event id below the newest one planned this long ago is known planned: a transaction
# that inserted an event with a lower id and had not committed by then would have had to
# stay open this long (PostgreSQL hands ids out before commit; SQLite writes one at a time)
_SETTLED = dt.timedelta(seconds=60)
_PENDING = str(DeliveryState.PENDING)


@record
class SinkScope:
    """Which events a sink is given: ``kinds`` (None: every kind) of the attempts of
    ``repository`` (None: every repository) made at or after ``since``."""

    name: str
    kinds: frozenset[str] | None
    repository: str | None
    since: dt.datetime | None


@record
class Claimed:
    """A delivery claimed for one deliverer, with its event."""

    delivery: EventDelivery
    token: int
    event: AttemptEvent


def _to_delivery(row: Any) -> EventDelivery:
    created, next_try = _aware(row.created_at), _aware(row.next_try_at)
    assert created is not None and next_try is not None
    return EventDelivery(
        id=row.id,
        event_id=row.event_id,
        attempt_id=row.attempt_id,
        sink=row.sink,
        state=DeliveryState(row.state),
        tries=row.tries,
        next_try_at=next_try,
        delivered_at=_aware(row.delivered_at),
        last_error=row.last_error,
        created_at=created,
        kind=getattr(row, "kind", "") or "",
    )


def _unplanned(scope: SinkScope, now: dt.datetime) -> Any:
    """The events ``scope`` is given that have no delivery to it yet, oldest first."""
    settled = (
        select(func.max(_D.c.event_id))
        .where(_D.c.sink == scope.name, _D.c.created_at < now - _SETTLED)
        .scalar_subquery()
    )
    query = select(_E.c.id, _E.c.attempt_id).where(
        _E.c.id > func.coalesce(settled, 0),
        ~exists().where(_D.c.event_id == _E.c.id, _D.c.sink == scope.name),
    )
    if scope.since is not None:
        query = query.where(_E.c.created_at >= scope.since)
    if scope.kinds is not None:
        kinds = sorted(scope.kinds)
        query = query.where(or_(_E.c.kind.in_(kinds), _E.c.state.in_(kinds)))
    if scope.repository is not None:
        query = query.join(_T, _T.c.id == _E.c.attempt_id).where(
            _T.c.repository == scope.repository
        )
    return query.order_by(_E.c.id)


def _first_in_order() -> ColumnElement[bool]:
    """A pending delivery with no earlier event of its attempt pending for its sink."""
    earlier = _D.alias("earlier")
    return and_(
        _D.c.state == _PENDING,
        ~exists().where(
            earlier.c.attempt_id == _D.c.attempt_id,
            earlier.c.sink == _D.c.sink,
            earlier.c.state == _PENDING,
            earlier.c.event_id < _D.c.event_id,
        ),
    )


def _claimable(sink: str, now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        _D.c.sink == sink,
        _D.c.next_try_at <= now,
        or_(_D.c.claimed_until.is_(None), _D.c.claimed_until < now),
        _first_in_order(),
    )


def _pick(sink: str, now: dt.datetime) -> Any:
    # never correlated with the UPDATE it feeds: it picks one row of the whole table
    query = select(_D.c.id).where(_claimable(sink, now)).order_by(_D.c.event_id).limit(1)
    return query.correlate(None)


class OutboxOps(StoreBase):
    # -- reading events ------------------------------------------------------------------

    def events_after(
        self, after: int = 0, attempt_id: str | None = None, limit: int | None = None
    ) -> list[AttemptEvent]:
        """Events with an id above ``after``, oldest first."""
        query = select(_E).where(_E.c.id > after).order_by(_E.c.id)
        if attempt_id is not None:
            query = query.where(_E.c.attempt_id == attempt_id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [to_event(r) for r in conn.execute(query)]

    def latest_events(self, limit: int, attempt_id: str | None = None) -> list[AttemptEvent]:
        """The newest ``limit`` events, oldest first."""
        query = select(_E).order_by(_E.c.id.desc()).limit(limit)
        if attempt_id is not None:
            query = query.where(_E.c.attempt_id == attempt_id)
        with self._read() as conn:
            return [to_event(r) for r in reversed(conn.execute(query).all())]

    def change_mark(self) -> tuple[Any, ...]:
        """A mark that moves when anything the dashboard shows changes in the store: the
        newest event (every change of an attempt writes one), the task queue, and how many
        deliveries failed for good. First item: the newest event's id (0: none).

        The queue's part reads the newest task and the unfinished ones only (through the
        state index): a task changes only by moving state, so a new task moves the first,
        and any move the count or the newest change of the unfinished ones; the finished
        ones, a year of them, are never read."""
        failed = str(DeliveryState.FAILED)
        unfinished = _Q.c.state.in_([str(st) for st in TaskState if not st.finished])
        query = select(
            select(func.coalesce(func.max(_E.c.id), 0)).scalar_subquery(),
            select(func.max(_Q.c.id)).scalar_subquery(),
            select(func.count()).select_from(_Q).where(unfinished).scalar_subquery(),
            select(func.max(_Q.c.updated_at)).where(unfinished).scalar_subquery(),
            select(func.count()).select_from(_D).where(_D.c.state == failed).scalar_subquery(),
        )
        with self._read() as conn:
            row = conn.execute(query).one()
        return tuple(row)

    def repositories_of(self, attempt_ids: Iterable[str]) -> dict[str, str]:
        """Attempt id -> its repository, for those of ``attempt_ids`` that exist."""
        ids = sorted(set(attempt_ids))
        if not ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(select(_T.c.id, _T.c.repository).where(_T.c.id.in_(ids)))
            return {attempt_id: repository for attempt_id, repository in rows}

    # -- planning and claiming deliveries ----------------------------------------------------

    def plan(self, scope: SinkScope) -> int:
        """Make the pending deliveries of the events ``scope`` is given; how many."""
        made = 0
        # looked for in a read first: a deliverer sleeps on the store's change watcher, and
        # a write of its own each pass would wake it again and again
        while self.has_unplanned(scope):
            with self._write() as conn:
                now = self.clock()
                rows = conn.execute(_unplanned(scope, now).limit(PLAN_BATCH)).all()
                if rows:
                    self._insert_deliveries(conn, scope.name, rows, now)
            made += len(rows)
            if len(rows) < PLAN_BATCH:
                break
        return made

    def _insert_deliveries(
        self, conn: Connection, sink: str, rows: Sequence[Any], now: dt.datetime
    ) -> None:
        values = [
            {
                "event_id": r.id,
                "attempt_id": r.attempt_id,
                "sink": sink,
                "state": _PENDING,
                "tries": 0,
                "next_try_at": now,
                "claim_token": 0,
                "created_at": now,
            }
            for r in rows
        ]
        # another deliverer planning the same events at once: its rows stand, not an error
        conn.execute(
            upsert(conn, _D)
            .values(values)
            .on_conflict_do_nothing(index_elements=[_D.c.event_id, _D.c.sink])
        )

    def has_unplanned(self, scope: SinkScope) -> bool:
        with self._read() as conn:
            return conn.execute(_unplanned(scope, self.clock()).limit(1)).first() is not None

    def claim_delivery(self, sink: str, lease: float) -> Claimed | None:
        """Take the oldest delivery to ``sink`` that is due and first in its attempt's
        order, for ``lease`` seconds; None when there is none."""
        with self._read() as conn:  # a read first, as in ``plan``
            if conn.execute(_pick(sink, self.clock())).first() is None:
                return None
        with self._write() as conn:
            now = self.clock()
            pick = _pick(sink, now)
            if not is_sqlite(self.url):
                pick = pick.with_for_update(skip_locked=True, of=_D)
            row = conn.execute(
                update(_D)
                .where(
                    _D.c.id == pick.scalar_subquery(),
                    # again on the row as it is now (READ COMMITTED: another claim may have
                    # committed since the statement's snapshot)
                    _D.c.state == _PENDING,
                    or_(_D.c.claimed_until.is_(None), _D.c.claimed_until < now),
                )
                .values(
                    claimed_until=now + dt.timedelta(seconds=lease),
                    claim_token=_D.c.claim_token + 1,
                )
                .returning(*_D.c)
            ).first()
            if row is None:
                return None
            event = conn.execute(select(_E).where(_E.c.id == row.event_id)).one()
        return Claimed(_to_delivery(row), row.claim_token, to_event(event))

    def end_delivery(
        self,
        claimed: Claimed,
        state: DeliveryState,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> bool:
        """Record a try under its claim: delivered, skipped, failed for good, or (with
        ``retry_in``) pending again. False when the claim had expired and was taken."""
        with self._write() as conn:
            now = self.clock()
            values: dict[str, Any] = {
                "tries": _D.c.tries + 1,
                "claimed_until": None,
                "last_error": error[:2000] if error else None,
            }
            if state == DeliveryState.PENDING:
                values["next_try_at"] = now + dt.timedelta(seconds=retry_in or 0)
            else:
                values["state"] = str(state)
            if state in (DeliveryState.DELIVERED, DeliveryState.SKIPPED):
                values["delivered_at"] = now
            result = conn.execute(
                update(_D)
                .where(
                    _D.c.id == claimed.delivery.id,
                    _D.c.claim_token == claimed.token,
                    _D.c.state == _PENDING,
                )
                .values(**values)
            )
            return bool(result.rowcount == 1)

    def next_due(self, sinks: Sequence[str]) -> dt.datetime | None:
        """When the next pending delivery to one of ``sinks`` that is first in its
        attempt's order is due (or its claim ends); None when none is pending."""
        if not sinks:
            return None
        # a claim is taken at or after next_try_at: while it holds, it is what is awaited
        due = func.coalesce(_D.c.claimed_until, _D.c.next_try_at)
        with self._read() as conn:
            when = conn.scalar(
                select(func.min(due)).where(_D.c.sink.in_(sorted(sinks)), _first_in_order())
            )
        return _aware(when)

    # -- what failed, and trying again ---------------------------------------------------------

    def deliveries(
        self,
        states: Iterable[DeliveryState] = (),
        event_id: int | None = None,
        attempt_id: str | None = None,
    ) -> list[EventDelivery]:
        query = (
            select(*_D.c, _E.c.kind)
            .join(_E, _E.c.id == _D.c.event_id)
            .order_by(_D.c.event_id, _D.c.sink)
        )
        wanted = [str(s) for s in states]
        if wanted:
            query = query.where(_D.c.state.in_(wanted))
        if event_id is not None:
            query = query.where(_D.c.event_id == event_id)
        if attempt_id is not None:
            query = query.where(_D.c.attempt_id == attempt_id)
        with self._read() as conn:
            return [_to_delivery(r) for r in conn.execute(query)]

    def retry_deliveries(self, event_id: int | None) -> list[EventDelivery]:
        """Failed deliveries (of ``event_id``, or all) pending again with fresh tries."""
        with self._write() as conn:
            query = update(_D).where(_D.c.state == str(DeliveryState.FAILED))
            if event_id is not None:
                query = query.where(_D.c.event_id == event_id)
            rows = conn.execute(
                query.values(
                    state=_PENDING, tries=0, next_try_at=self.clock(), claimed_until=None
                ).returning(*_D.c)
            ).all()
        return [_to_delivery(r) for r in rows]
