"""The land queue of ``orch serve``: lands queued with ``orch land --queue`` and the
result of each, once the loop landed it.

Every change of a queued land is a compare-and-set on its state, so a loop that died
half-way, or two loops by mistake, never land one entry twice; an attempt waits in the
queue once at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update

from orch.errors import Conflict, NotFound
from orch.models import LAND_WAITING_STATES, LandQueueState, QueuedLand
from orch.store.base import StoreBase, _stamp
from orch.store.tables import land_queue as _L

WAITING = sorted(str(s) for s in LAND_WAITING_STATES)


def _to_land(row: Any) -> QueuedLand:
    return QueuedLand(
        id=row.id,
        attempt_id=row.attempt_id,
        repository=row.repository,
        host=row.host,
        into_branch=row.into_branch,
        strategy=row.strategy,
        message=row.message,
        run_check=bool(row.run_check),
        keep=bool(row.keep),
        resolve=bool(row.resolve),
        state=LandQueueState(row.state),
        result=row.result,
        target=row.target,
        landed_commit=row.landed_commit,
        paths=list(row.paths) if row.paths is not None else None,
        exit_code=row.exit_code,
        reason=row.reason,
        actor=row.actor,
        created_at=_stamp(row.created_at),
        updated_at=_stamp(row.updated_at),
    )


class LandQueueOps(StoreBase):
    def queue_land(
        self,
        attempt_id: str,
        repository: str,
        host: str,
        into_branch: str | None,
        strategy: str,
        message: str | None,
        run_check: bool,
        keep: bool,
        resolve: bool,
        actor: str,
    ) -> QueuedLand:
        """Queue a land of the attempt (a ``land_queued`` event); refused while the attempt
        already waits in the queue."""
        with self._write() as conn:
            waiting = conn.execute(
                select(_L.c.id).where(_L.c.attempt_id == attempt_id, _L.c.state.in_(WAITING))
            ).first()
            if waiting is not None:
                raise Conflict(
                    f"attempt {attempt_id} already waits in the land queue (entry {waiting.id})"
                )
            now = self.clock()
            row = conn.execute(
                insert(_L)
                .values(
                    attempt_id=attempt_id,
                    repository=repository,
                    host=host[:255],
                    into_branch=into_branch,
                    strategy=strategy,
                    message=message,
                    run_check=run_check,
                    keep=keep,
                    resolve=resolve,
                    state=str(LandQueueState.QUEUED),
                    actor=actor[:255],
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_L.c)
            ).one()
            self._event(
                conn,
                attempt_id,
                "land_queued",
                actor,
                entry=row.id,
                strategy=strategy,
                into=into_branch,
            )
        return _to_land(row)

    def queued_lands(
        self,
        states: Iterable[LandQueueState] = (),
        limit: int | None = None,
        host: str | None = None,
    ) -> list[QueuedLand]:
        """Queued lands (``host``: those its loop lands), oldest first (the order the loop
        lands them in); with ``limit``, the newest ``limit`` of them, still oldest first."""
        wanted = [str(st) for st in states]
        query = select(_L)
        if wanted:
            query = query.where(_L.c.state.in_(wanted))
        if host is not None:
            query = query.where(_L.c.host == host)
        if limit is not None:
            query = query.order_by(_L.c.id.desc()).limit(limit)
        with self._read() as conn:
            found = [_to_land(r) for r in conn.execute(query.order_by(_L.c.id))]
        return sorted(found, key=lambda e: e.id)

    def move_land(
        self,
        entry_id: int,
        expected: LandQueueState,
        state: LandQueueState,
        **result: Any,
    ) -> QueuedLand | None:
        """``expected`` -> ``state`` with the result's columns (``result``, ``target``,
        ``landed_commit``, ``paths``, ``exit_code``, ``reason``); None when the entry was
        no longer ``expected``."""
        unknown = set(result) - {
            "result",
            "target",
            "landed_commit",
            "paths",
            "exit_code",
            "reason",
        }
        if unknown:
            raise ValueError(f"not a result column: {sorted(unknown)}")
        with self._write() as conn:
            row = conn.execute(
                update(_L)
                .where(_L.c.id == entry_id, _L.c.state == str(expected))
                .values(state=str(state), updated_at=self.clock(), **result)
                .returning(*_L.c)
            ).first()
        return None if row is None else _to_land(row)

    def drop_land(self, entry_id: int, actor: str) -> QueuedLand:
        """Take a waiting entry out of the queue before the loop lands it (``failed``,
        result ``dropped``; a ``land_dropped`` event): a compare-and-set on ``queued``, so
        an entry the loop has begun landing is refused, never cut off."""
        with self._write() as conn:
            row = conn.execute(
                update(_L)
                .where(_L.c.id == entry_id, _L.c.state == str(LandQueueState.QUEUED))
                .values(
                    state=str(LandQueueState.FAILED),
                    result="dropped",
                    reason=f"dropped from the queue by {actor}",
                    updated_at=self.clock(),
                )
                .returning(*_L.c)
            ).first()
            if row is not None:
                self._event(conn, row.attempt_id, "land_dropped", actor, entry=entry_id)
                return _to_land(row)
            found = conn.execute(select(_L).where(_L.c.id == entry_id)).first()
        if found is None:
            raise NotFound(f"the land queue has no entry {entry_id}")
        entry = _to_land(found)
        if entry.state == LandQueueState.LANDING:
            raise Conflict(f"entry {entry_id} (attempt {entry.attempt_id}) is being landed now")
        raise Conflict(
            f"entry {entry_id} (attempt {entry.attempt_id}) has already ended: {entry.result}"
        )
