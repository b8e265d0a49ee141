"""Claims: a worker takes a queued attempt, with the next lease token.

What may be claimed is ``orch.claim_rule``; this module compiles its terms into the SQL of
the claim statements once, at import, and explains a refused claim with the same terms.
On PostgreSQL the pick locks its row with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimants pass each other instead of waiting on, or taking, the same row. It never adds
a condition of its own to what is claimable: one written here and not in the rule would
make the SQL and the explanation disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update

from orch import claim_rule
from orch.claim_rule import Claimant, Term, Way
from orch.errors import AttemptNotFound, NotClaimable
from orch.models import Lease, State, WorkerIdentity
from orch.store.base import StoreBase, _aware, to_attempt
from orch.store.engine import is_sqlite
from orch.store.fencing import current_row
from orch.store.tables import attempts as _T

# the bound parameter each claimant field is given as
_CLAIMANT_PARAMS = {"worker": "b_worker", "host": "b_host", "repository_urls": "b_urls"}


def term_sql(term: Term) -> ColumnElement[bool]:
    """The SQL condition of one term of the claim rule."""
    column = _T.c[term.column]
    parts: list[ColumnElement[bool]] = []
    if None in term.allowed:
        parts.append(column.is_(None))
    literals = [str(v) for v in term.allowed if v is not None]
    if len(literals) == 1:
        parts.append(column == literals[0])
    elif literals:
        parts.append(column.in_(literals))
    if term.of_claimant is not None:
        param = _CLAIMANT_PARAMS[term.of_claimant]
        if term.of_claimant in claim_rule.SEQUENCE_FIELDS:
            parts.append(column.in_(bindparam(param, expanding=True)))
        else:
            parts.append(column == bindparam(param))
    return parts[0] if len(parts) == 1 else or_(*parts)


def way_sql(way: Way) -> ColumnElement[bool]:
    """Every attempt ``claim`` may give the claimant by this way of the rule."""
    return and_(*(term_sql(t) for t in (*claim_rule.COMMON, *way.terms)))


# Statements of the hot paths are built once: building SQLAlchemy expressions per call
# cost more than executing them. One pick per way of the rule, in the rule's order.
_PICKS = tuple(
    select(_T.c.id).where(way_sql(way)).order_by(_T.c.created_at, _T.c.id).limit(1)
    for way in claim_rule.WAYS
)
_STILL_QUEUED = term_sql(claim_rule.QUEUED)
_CLAIM_SPECIFIC = select(*(_T.c[c] for c in claim_rule.COLUMNS)).where(
    _STILL_QUEUED, _T.c.id == bindparam("b_id")
)
_CLAIM_SPECIFIC_LOCKING = _CLAIM_SPECIFIC.with_for_update(skip_locked=True)
# what taking an attempt writes: the next lease token and its holder
_TAKE = {
    "state": str(State.RUNNING),
    "lease_token": _T.c.lease_token + 1,
    "lease_expires_at": bindparam("b_expires"),
    "heartbeat_at": bindparam("b_now"),
    "lease_holder": bindparam("b_holder"),
    "worker_host": bindparam("b_host"),
    "worker_pid": bindparam("b_pid"),
    "worker_started_at": bindparam("b_started"),
    "agent_pid": None,
    "agent_started_at": None,
    "updated_at": bindparam("b_now"),
}


def _take(which: Any) -> Any:
    """One statement that picks and takes an attempt; the pick (a scalar subquery) locks
    its row with ``SKIP LOCKED`` on PostgreSQL, so concurrent claimants pass each other."""
    query = update(_T).where(_STILL_QUEUED)
    if which is not None:
        query = query.where(_T.c.id == which)
    return query.values(**_TAKE).returning(*_T.c)


def _picks(repository_urls: Sequence[str]) -> tuple[Any, ...]:
    """The picks worth running: a worker without clones cannot provision anything."""
    return _PICKS if repository_urls else _PICKS[:1]


_TAKE_PICKED = tuple(_take(pick.scalar_subquery()) for pick in _PICKS)
_TAKE_PICKED_LOCKING = tuple(
    _take(pick.with_for_update(skip_locked=True).scalar_subquery()) for pick in _PICKS
)
_TAKE_SPECIFIC = _take(bindparam("b_id"))
_TAKE_MANY = _take(None)  # the where clause is given per call: ``id IN (the oldest n)``


class ClaimOps(StoreBase):
    def claim(
        self,
        worker: WorkerIdentity,
        ttl: float,
        actor: str,
        attempt_id: str | None = None,
        repository_urls: Sequence[str] = (),
    ) -> Lease | None:
        """Take a queued attempt (this one, or the oldest one for ``worker.name``).

        Only attempts whose worktree is on ``worker.host`` (or nowhere yet) are taken; with
        ``repository_urls`` (the clones this worker has) also attempts dispatched for any
        host or this one, which the worker then provisions (``workspace_status=pending``).

        Returns None when nothing is claimable for the worker; raises ``NotClaimable`` when
        a specific attempt cannot be claimed, saying why. On PostgreSQL the candidate is
        read with ``FOR UPDATE SKIP LOCKED`` so concurrent claimants never wait on, or
        take, the same row.
        """
        with self._write() as conn:
            taken = self._claim_in(conn, worker, ttl, actor, attempt_id, repository_urls)
        return to_lease(taken)

    def claim_many(
        self,
        worker: WorkerIdentity,
        ttl: float,
        actor: str,
        limit: int,
        repository_urls: Sequence[str] = (),
    ) -> list[Lease]:
        """Take up to ``limit`` of the oldest attempts ``claim`` would give this worker, in
        one statement and one transaction (for a worker that runs several at once)."""
        if limit < 1:
            return []
        locking = not is_sqlite(self.url)
        now = self.clock()
        expires = now + dt.timedelta(seconds=ttl)
        params = self._take_params(worker, now, expires, repository_urls)
        leases: list[Any] = []
        with self._write() as conn:
            for pick in _picks(repository_urls):
                if len(leases) >= limit:
                    break
                ids = pick.limit(limit - len(leases))
                if locking:
                    ids = ids.with_for_update(skip_locked=True)
                # a CTE, evaluated once: PostgreSQL may run an IN subquery again while it
                # updates, and with SKIP LOCKED a second run picks other rows
                picked = ids.cte("picked")
                take = _TAKE_MANY.where(_T.c.id.in_(select(picked.c.id)))
                rows = conn.execute(take, params).all()
                leases.extend(rows)
            if leases:
                self._events(
                    conn,
                    "claimed",
                    actor,
                    [
                        (
                            row.id,
                            {
                                "worker": worker.name,
                                "host": worker.host,
                                "pid": worker.pid,
                                "lease": row.lease_token,
                            },
                        )
                        for row in leases
                    ],
                )
        leases.sort(key=lambda r: (_aware(r.created_at), r.id))
        return [Lease(to_attempt(r), r.lease_token, expires) for r in leases]

    def _take_params(
        self,
        worker: WorkerIdentity,
        now: dt.datetime,
        expires: dt.datetime,
        repository_urls: Sequence[str],
    ) -> dict[str, Any]:
        return {
            "b_worker": worker.name,
            "b_host": worker.host,
            "b_urls": list(repository_urls),
            "b_expires": expires,
            "b_now": now,
            "b_holder": worker.name[:128],
            "b_pid": worker.pid,
            "b_started": worker.started_at,
        }

    def _claim_in(
        self,
        conn: Connection,
        worker: WorkerIdentity,
        ttl: float,
        actor: str,
        attempt_id: str | None,
        repository_urls: Sequence[str],
    ) -> tuple[Any, dt.datetime] | None:
        locking = not is_sqlite(self.url)
        now = self.clock()
        expires = now + dt.timedelta(seconds=ttl)
        params = self._take_params(worker, now, expires, repository_urls)
        if attempt_id is not None:
            query = _CLAIM_SPECIFIC_LOCKING if locking else _CLAIM_SPECIFIC
            candidate = conn.execute(query, {"b_id": attempt_id}).first()
            claimant = Claimant(worker.name, worker.host, tuple(repository_urls))
            if candidate is None:
                raise self._why_not_claimable(conn, attempt_id, claimant)
            why = claim_rule.why_not(candidate, claimant)
            if why is not None:
                raise NotClaimable(why)
            row = conn.execute(_TAKE_SPECIFIC, {**params, "b_id": attempt_id}).first()
        else:
            row = None
            takes = _TAKE_PICKED_LOCKING if locking else _TAKE_PICKED
            for take in takes[: len(_picks(repository_urls))]:
                row = conn.execute(take, params).first()
                if row is not None:
                    break
        if row is None:
            return None  # nothing claimable (or another claimant won the specific one)
        self._event(
            conn,
            row.id,
            "claimed",
            actor,
            worker=worker.name,
            host=worker.host,
            pid=worker.pid,
            lease=row.lease_token,
        )
        return row, expires

    def _why_not_claimable(
        self, conn: Connection, attempt_id: str, claimant: Claimant
    ) -> NotClaimable | AttemptNotFound:
        """A specific claim found no queued row it could lock: say why, by the rule."""
        row = current_row(conn, attempt_id)
        if row is None:
            return AttemptNotFound(f"no attempt {attempt_id!r} in the store")
        why = claim_rule.why_not(row, claimant)
        if why is None:  # another claimant holds its row this very moment
            why = claim_rule.WAYS[0].terms[0].explain(row, claimant)
        return NotClaimable(why)


def to_lease(taken: tuple[Any, dt.datetime] | None) -> Lease | None:
    if taken is None:
        return None
    row, expires = taken
    return Lease(attempt=to_attempt(row), token=row.lease_token, expires_at=expires)
