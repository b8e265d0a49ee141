"""Lifecycle operations: claims, leases, finishing, cancelling, follow-ups and runs.

Every write is a compare-and-set on the attempt's state and, for a worker's writes, on
its lease token (fencing): a token only grows, so a worker whose lease was taken away
(expiry, reassign, cancel) can never write a late result. Terminal states never change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, tuple_, update

from orch.errors import AttemptNotFound, Conflict, LeaseLost, NotClaimable
from orch.models import (
    TERMINAL_STATES,
    Attempt,
    Finish,
    Lease,
    Message,
    Run,
    State,
    WorkerIdentity,
    WorkspaceStatus,
)
from orch.store.base import StoreBase, _aware, to_attempt
from orch.store.changes import ChangeWatcher, PostgresChangeWatcher, SqliteChangeWatcher
from orch.store.engine import is_sqlite
from orch.store.tables import attempt_events as _E
from orch.store.tables import attempt_messages as _M
from orch.store.tables import attempt_runs as _R
from orch.store.tables import attempts as _T

CLAIMABLE_WORKSPACES = (
    WorkspaceStatus.READY,
    WorkspaceStatus.REUSED,
    WorkspaceStatus.SKIPPED_IN_WORKTREE,
    WorkspaceStatus.SKIPPED_NOT_GIT,
)
WORKER_END_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT)
LIVE_STATES = (State.QUEUED, State.RUNNING)


# An attempt nobody holds: the lease and every trace of its holder cleared.
_NO_HOLDER: dict[str, Any] = {
    "lease_expires_at": None,
    "lease_holder": None,
    "worker_host": None,
    "worker_pid": None,
    "worker_started_at": None,
    "agent_pid": None,
    "agent_started_at": None,
}
_CLAIMABLE = _T.c.workspace_status.in_([str(w) for w in CLAIMABLE_WORKSPACES])
# Statements of the hot paths are built once: building SQLAlchemy expressions per call
# cost more than executing them.
_ON_THIS_HOST = or_(_T.c.workspace_host.is_(None), _T.c.workspace_host == bindparam("b_host"))
_FOR_WORKER = or_(_T.c.worker.is_(None), _T.c.worker == bindparam("b_worker"))
_NEXT_ID = (
    select(_T.c.id)
    .where(_T.c.state == str(State.QUEUED), _CLAIMABLE, _ON_THIS_HOST, _FOR_WORKER)
    .order_by(_T.c.created_at, _T.c.id)
    .limit(1)
)
# attempts dispatched for any host (or this one) in a repository this worker has a clone of
_PENDING_ID = (
    select(_T.c.id)
    .where(
        _T.c.state == str(State.QUEUED),
        _T.c.workspace_status == str(WorkspaceStatus.PENDING),
        or_(_T.c.target_host == "any", _T.c.target_host == bindparam("b_host")),
        _T.c.repository_url.in_(bindparam("b_urls", expanding=True)),
        _FOR_WORKER,
    )
    .order_by(_T.c.created_at, _T.c.id)
    .limit(1)
)
_CLAIM_SPECIFIC = select(
    _T.c.id,
    _T.c.worker,
    _T.c.workspace_status,
    _T.c.workspace_host,
    _T.c.target_host,
    _T.c.repository_url,
).where(_T.c.state == str(State.QUEUED), _T.c.id == bindparam("b_id"))
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
    query = update(_T).where(_T.c.state == str(State.QUEUED))
    if which is not None:
        query = query.where(_T.c.id == which)
    return query.values(**_TAKE).returning(*_T.c)


_TAKE_NEXT = _take(_NEXT_ID.scalar_subquery())
_TAKE_NEXT_LOCKING = _take(_NEXT_ID.with_for_update(skip_locked=True).scalar_subquery())
_TAKE_PENDING = _take(_PENDING_ID.scalar_subquery())
_TAKE_PENDING_LOCKING = _take(_PENDING_ID.with_for_update(skip_locked=True).scalar_subquery())
_TAKE_SPECIFIC = _take(bindparam("b_id"))
_TAKE_MANY = _take(None)  # the where clause is given per call: ``id IN (the oldest n)``
_HOLDER = (
    (_T.c.id == bindparam("b_id"))
    & (_T.c.lease_token == bindparam("b_token"))
    & (_T.c.state == str(State.RUNNING))
)
_HEARTBEAT = (
    update(_T)
    .where(_HOLDER)
    .values(lease_expires_at=bindparam("b_expires"), heartbeat_at=bindparam("b_now"))
    .returning(*_T.c)
)
_FINISH = (
    update(_T)
    .where(_HOLDER)
    .values(
        state=bindparam("b_state"),
        exit_code=bindparam("b_exit"),
        summary=bindparam("b_summary"),
        finished_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        lease_expires_at=None,
    )
    .returning(*_T.c)
)


def _current(conn: Connection, attempt_id: str, lock: bool = False) -> Any:
    query = select(_T).where(_T.c.id == attempt_id)
    return conn.execute(query.with_for_update() if lock else query).first()


def _update_held(conn: Connection, attempt_id: str, token: int, *also: Any, **values: Any) -> Any:
    """Compare-and-set on a running attempt still held with lease ``token`` (and ``also``);
    the row as it is now, or None when the lease no longer holds."""
    query = update(_T).where(_HOLDER, *also).values(**values).returning(*_T.c)
    return conn.execute(query, {"b_id": attempt_id, "b_token": token}).first()


def _finished_before(
    conn: Connection,
    row: Any,
    token: int,
    state: State,
    exit_code: int | None,
    summary: str | None,
) -> bool:
    """This very finish committed already, and the answer was lost with the connection.

    The lease is still the same (nobody fenced it since) and the finish it recorded is
    the one asked for now; any other outcome is not a retry and stays ``LeaseLost``."""
    if row is None or row.lease_token != token or row.state != str(state):
        return False
    last = conn.execute(
        select(_E.c.detail)
        .where(_E.c.attempt_id == row.id, _E.c.kind == "finished")
        .order_by(_E.c.id.desc())
        .limit(1)
    ).scalar()
    return last == _finish_detail(state, exit_code, summary, token)


def _finish_detail(
    state: State, exit_code: int | None, summary: str | None, token: int
) -> dict[str, Any]:
    """The "finished" event's detail; a finish tried again is recognised by it."""
    return {"state": str(state), "exit_code": exit_code, "summary": summary, "lease": token}


def _lease_lost(row: Any, attempt_id: str, token: int) -> LeaseLost:
    if row is None:
        return LeaseLost(f"attempt {attempt_id} no longer exists")
    if row.lease_token != token:
        return LeaseLost(
            f"lease {token} on attempt {attempt_id} was taken away (now lease {row.lease_token}, "
            f"state {row.state})"
        )
    return LeaseLost(f"attempt {attempt_id} is {row.state}: the lease no longer holds")


class LifecycleOps(StoreBase):
    # -- claims and leases -----------------------------------------------------------------

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
        return _to_lease(taken)

    def finish_and_claim(
        self,
        attempt_id: str,
        token: int,
        state: State,
        actor: str,
        exit_code: int | None,
        summary: str | None,
        worker: WorkerIdentity,
        ttl: float,
        repository_urls: Sequence[str] = (),
    ) -> tuple[Attempt, Lease | None]:
        """``finish`` this attempt and ``claim`` the worker's next one in one transaction.

        A worker that goes on to the next attempt saves a write transaction per attempt;
        if the finish is refused nothing is claimed."""
        with self._write() as conn:
            ended = self._finish_in(conn, attempt_id, token, state, actor, exit_code, summary)
            taken = self._claim_in(conn, worker, ttl, actor, None, repository_urls)
        return to_attempt(ended), _to_lease(taken)

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
            for pick in (_NEXT_ID, _PENDING_ID) if repository_urls else (_NEXT_ID,):
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

    def finish_many(self, finishes: Sequence[Finish], actor: str) -> list[Attempt | LeaseLost]:
        """``finish`` several attempts in one transaction; one statement per distinct outcome.

        Each item is judged on its own: the result holds, in the order given, the ended
        attempt or the ``LeaseLost`` that ``finish`` would have raised for it."""
        for item in finishes:
            if item.state not in WORKER_END_STATES:
                raise Conflict(f"a worker cannot finish an attempt as {item.state}")
        outcomes: dict[tuple[State, int | None, str | None], list[Finish]] = {}
        for item in finishes:
            outcomes.setdefault((item.state, item.exit_code, item.summary), []).append(item)
        ended: dict[str, Any] = {}
        refused: dict[str, LeaseLost] = {}
        with self._write() as conn:
            now = self.clock()
            for (state, exit_code, summary), items in outcomes.items():
                rows = conn.execute(
                    update(_T)
                    .where(
                        _T.c.state == str(State.RUNNING),
                        tuple_(_T.c.id, _T.c.lease_token).in_(
                            [(i.attempt_id, i.token) for i in items]
                        ),
                    )
                    .values(
                        state=str(state),
                        exit_code=exit_code,
                        summary=summary,
                        finished_at=now,
                        updated_at=now,
                        lease_expires_at=None,
                    )
                    .returning(*_T.c)
                ).all()
                ended.update((r.id, r) for r in rows)
                self._events(
                    conn,
                    "finished",
                    actor,
                    [
                        (r.id, _finish_detail(state, exit_code, summary, r.lease_token))
                        for r in rows
                    ],
                )
                for item in items:
                    if item.attempt_id in ended:
                        continue
                    current = _current(conn, item.attempt_id)
                    if _finished_before(conn, current, item.token, item.state, exit_code, summary):
                        ended[item.attempt_id] = current
                    else:
                        refused[item.attempt_id] = _lease_lost(current, item.attempt_id, item.token)
        return [
            to_attempt(ended[i.attempt_id]) if i.attempt_id in ended else refused[i.attempt_id]
            for i in finishes
        ]

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
            if candidate is None:
                raise self._why_not_claimable(conn, attempt_id)
            self._check_claimable(candidate, worker, repository_urls)
            row = conn.execute(_TAKE_SPECIFIC, {**params, "b_id": attempt_id}).first()
        else:
            row = conn.execute(_TAKE_NEXT_LOCKING if locking else _TAKE_NEXT, params).first()
            if row is None and repository_urls:
                take = _TAKE_PENDING_LOCKING if locking else _TAKE_PENDING
                row = conn.execute(take, params).first()
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

    @staticmethod
    def _check_claimable(candidate: Any, worker: WorkerIdentity, urls: Sequence[str]) -> None:
        attempt_id = candidate.id
        if candidate.worker not in (None, worker.name):
            raise NotClaimable(
                f"attempt {attempt_id} is assigned to worker {candidate.worker!r}, not "
                f"{worker.name!r}: use 'orch reassign {attempt_id} --worker {worker.name}'"
            )
        if candidate.workspace_status == WorkspaceStatus.PENDING:
            if candidate.target_host not in ("any", worker.host):
                raise NotClaimable(f"attempt {attempt_id} is for host {candidate.target_host}")
            if candidate.repository_url not in urls:
                raise NotClaimable(
                    f"attempt {attempt_id} needs a clone of {candidate.repository_url} "
                    "(orch work --repo PATH)"
                )
            return
        if candidate.workspace_status not in CLAIMABLE_WORKSPACES:
            raise NotClaimable(
                f"attempt {attempt_id} has workspace_status {candidate.workspace_status}: "
                "not ready to claim"
            )
        if candidate.workspace_host not in (None, worker.host):
            raise NotClaimable(
                f"attempt {attempt_id}'s worktree is on host {candidate.workspace_host}, "
                f"not {worker.host}"
            )

    def _why_not_claimable(
        self, conn: Connection, attempt_id: str
    ) -> NotClaimable | AttemptNotFound:
        row = _current(conn, attempt_id)
        if row is None:
            return AttemptNotFound(f"no attempt {attempt_id!r} in the store")
        if row.state != State.QUEUED:
            return NotClaimable(f"attempt {attempt_id} is {row.state}, not queued")
        return NotClaimable(
            f"attempt {attempt_id} has workspace_status {row.workspace_status}: not ready to claim"
        )

    def heartbeat(self, attempt_id: str, token: int, ttl: float) -> Lease:
        """Renew the lease; ``LeaseLost`` once it was taken away."""
        now = self.clock()
        expires = now + dt.timedelta(seconds=ttl)
        with self._write() as conn:
            if not is_sqlite(self.url):
                # a heartbeat lost in a server crash only shortens the lease: skip the fsync
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            row = conn.execute(
                _HEARTBEAT,
                {"b_id": attempt_id, "b_token": token, "b_expires": expires, "b_now": now},
            ).first()
            if row is None:
                raise _lease_lost(_current(conn, attempt_id), attempt_id, token)
        return Lease(attempt=to_attempt(row), token=token, expires_at=expires)

    def finish(
        self,
        attempt_id: str,
        token: int,
        state: State,
        actor: str,
        exit_code: int | None = None,
        summary: str | None = None,
    ) -> Attempt:
        """The worker reports how the attempt ended; only the lease holder may.

        The same finish tried again (its answer was lost with a dropped connection)
        returns the attempt as it ended; any other write after the end is ``LeaseLost``.
        """
        with self._write() as conn:
            row = self._finish_in(conn, attempt_id, token, state, actor, exit_code, summary)
        return to_attempt(row)

    def _finish_in(
        self,
        conn: Connection,
        attempt_id: str,
        token: int,
        state: State,
        actor: str,
        exit_code: int | None,
        summary: str | None,
    ) -> Any:
        if state not in WORKER_END_STATES:
            raise Conflict(f"a worker cannot finish an attempt as {state}")
        row = conn.execute(
            _FINISH,
            {
                "b_id": attempt_id,
                "b_token": token,
                "b_state": str(state),
                "b_exit": exit_code,
                "b_summary": summary,
                "b_now": self.clock(),
            },
        ).first()
        if row is None:
            current = _current(conn, attempt_id)
            if _finished_before(conn, current, token, state, exit_code, summary):
                return current  # tried again: the first answer was lost
            raise _lease_lost(current, attempt_id, token)
        self._event(
            conn, attempt_id, "finished", actor, **_finish_detail(state, exit_code, summary, token)
        )
        return row

    def end_lost_worker(
        self, attempt_id: str, token: int, reason: str, actor: str
    ) -> Attempt | None:
        """running -> worker_gone, only if the lease is still the one that was judged lost."""
        with self._write() as conn:
            now = self.clock()
            row = _update_held(
                conn,
                attempt_id,
                token,
                state=str(State.WORKER_GONE),
                reason=reason,
                finished_at=now,
                updated_at=now,
                lease_token=token + 1,
                lease_expires_at=None,
            )
            if row is None:
                return None
            self._event(conn, attempt_id, "worker_gone", actor, reason=reason, lease=token)
            return to_attempt(row)

    def begin_provisioning_here(
        self,
        attempt_id: str,
        token: int,
        repository: str,
        branch_name: str,
        worktree_path: str,
        host: str,
        actor: str,
    ) -> Attempt:
        """The lease holder of a pending attempt provisions it in its own clone."""
        with self._write() as conn:
            row = _update_held(
                conn,
                attempt_id,
                token,
                _T.c.workspace_status == str(WorkspaceStatus.PENDING),
                workspace_status=str(WorkspaceStatus.PROVISIONING),
                repository=repository,
                branch_name=branch_name,
                worktree_path=worktree_path,
                workspace_host=host,
                updated_at=self.clock(),
            )
            if row is None:
                raise _lease_lost(_current(conn, attempt_id), attempt_id, token)
            self._event(
                conn,
                attempt_id,
                "provisioning_on_host",
                actor,
                host=host,
                repository=repository,
                branch_name=branch_name,
                worktree_path=worktree_path,
            )
            return to_attempt(row)

    def fail_queued(self, attempt_id: str, reason: str, actor: str) -> Attempt:
        """queued -> failed before any worker took it (a set-up hook failed, say)."""
        with self._write() as conn:
            now = self.clock()
            row = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.state == str(State.QUEUED))
                .values(
                    state=str(State.FAILED),
                    reason=reason,
                    finished_at=now,
                    updated_at=now,
                    lease_token=_T.c.lease_token + 1,
                )
                .returning(*_T.c)
            ).first()
            if row is None:
                raise Conflict(f"attempt {attempt_id} is no longer queued")
            self._event(conn, attempt_id, "failed_before_claim", actor, reason=reason)
            return to_attempt(row)

    def release(self, attempt_id: str, token: int, reason: str, actor: str) -> Attempt:
        """The lease holder gives a running attempt back (queued, old lease fenced)."""
        with self._write() as conn:
            row = _update_held(
                conn,
                attempt_id,
                token,
                state=str(State.QUEUED),
                lease_token=token + 1,
                **_NO_HOLDER,
                updated_at=self.clock(),
            )
            if row is None:
                raise _lease_lost(_current(conn, attempt_id), attempt_id, token)
            self._event(conn, attempt_id, "released", actor, reason=reason, lease=token)
            return to_attempt(row)

    def running_attempts(self) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(select(_T).where(_T.c.state == str(State.RUNNING)))
            return [to_attempt(r) for r in rows]

    # -- operator actions ------------------------------------------------------------------

    def cancel(self, attempt_id: str, reason: str, actor: str) -> tuple[Attempt, bool]:
        """End a live attempt as ``cancelled``; (attempt, False) if it had already ended."""
        with self._write() as conn:
            row = _current(conn, attempt_id, lock=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                return to_attempt(row), False
            now = self.clock()
            after = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.lease_token == row.lease_token)
                .values(
                    state=str(State.CANCELLED),
                    reason=reason,
                    finished_at=now,
                    updated_at=now,
                    lease_token=row.lease_token + 1,
                    lease_expires_at=None,
                )
                .returning(*_T.c)
            ).one()
            self._event(conn, attempt_id, "cancelled", actor, reason=reason, was=row.state)
            return to_attempt(after), True

    def reassign(self, attempt_id: str, worker: str, actor: str) -> tuple[Attempt, Attempt]:
        """Give a live attempt to ``worker``: back to queued, the old lease fenced out."""
        with self._write() as conn:
            row = _current(conn, attempt_id, lock=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                raise Conflict(f"attempt {attempt_id} is {row.state}: it cannot be reassigned")
            after = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.lease_token == row.lease_token)
                .values(
                    state=str(State.QUEUED),
                    worker=worker,
                    lease_token=row.lease_token + 1,
                    heartbeat_at=None,
                    **_NO_HOLDER,
                    updated_at=self.clock(),
                )
                .returning(*_T.c)
            ).one()
            self._event(
                conn,
                attempt_id,
                "reassigned",
                actor,
                worker=worker,
                previous_worker=row.worker,
                was=row.state,
            )
            return to_attempt(row), to_attempt(after)

    # -- reading many ----------------------------------------------------------------------

    def get_many(self, attempt_ids: Sequence[str]) -> list[Attempt]:
        with self._read() as conn:
            rows = {r.id: r for r in conn.execute(select(_T).where(_T.c.id.in_(attempt_ids)))}
            return [to_attempt(rows[i]) for i in attempt_ids if i in rows]

    def live_attempts(self, repository: str, task_key: str) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(
                select(_T).where(
                    _T.c.repository == repository,
                    _T.c.task_key == task_key,
                    _T.c.state.in_([str(x) for x in LIVE_STATES]),
                )
            )
            return [to_attempt(r) for r in rows]

    def change_watcher(self) -> ChangeWatcher:
        """Something to sleep on until another process commits a change to attempts."""
        if is_sqlite(self.url):
            return SqliteChangeWatcher(self.engine)
        return PostgresChangeWatcher(self.url)

    # -- follow-ups and runs ---------------------------------------------------------------

    def add_message(self, attempt_id: str, body: str, actor: str) -> Message:
        with self._write() as conn:
            row = _current(conn, attempt_id, lock=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                raise Conflict(f"attempt {attempt_id} is {row.state}: it takes no more messages")
            msg = conn.execute(
                insert(_M)
                .values(
                    attempt_id=attempt_id, body=body, actor=actor[:255], created_at=self.clock()
                )
                .returning(*_M.c)
            ).one()
            self._event(conn, attempt_id, "message_queued", actor, message=msg.id)
            return _to_message(msg)

    def take_messages(self, attempt_id: str, token: int, run_number: int) -> list[Message]:
        """Mark every undelivered message delivered to ``run_number``; lease holder only."""
        with self._write() as conn:
            row = _current(conn, attempt_id, lock=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise _lease_lost(row, attempt_id, token)
            delivered = conn.execute(
                update(_M)
                .where(_M.c.attempt_id == attempt_id, _M.c.delivered_at.is_(None))
                .values(delivered_at=self.clock(), run_number=run_number)
                .returning(*_M.c)
            )
            msgs = sorted(delivered, key=lambda m: int(m.id))
            if msgs:
                self._event(
                    conn,
                    attempt_id,
                    "messages_delivered",
                    f"lease {token}",
                    messages=[m.id for m in msgs],
                    run=run_number,
                )
            return [_to_message(m) for m in msgs]

    def messages(self, attempt_id: str) -> list[Message]:
        with self._read() as conn:
            rows = conn.execute(select(_M).where(_M.c.attempt_id == attempt_id).order_by(_M.c.id))
            return [_to_message(m) for m in rows]

    def start_run(
        self,
        attempt_id: str,
        token: int,
        prompt: str,
        command: Iterable[str],
        log_path: str,
        pid: int | None,
        pid_started_at: float | None = None,
    ) -> Run:
        with self._write() as conn:
            row = _current(conn, attempt_id, lock=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise _lease_lost(row, attempt_id, token)
            number = (
                conn.scalar(select(func.count()).where(_R.c.attempt_id == attempt_id)) or 0
            ) + 1
            run = conn.execute(
                insert(_R)
                .values(
                    attempt_id=attempt_id,
                    number=number,
                    prompt=prompt,
                    command=list(command),
                    log_path=log_path,
                    pid=pid,
                    started_at=self.clock(),
                )
                .returning(*_R.c)
            ).one()
            conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id)
                .values(agent_pid=pid, agent_started_at=pid_started_at)
            )
            self._event(conn, attempt_id, "run_started", f"lease {token}", run=number, pid=pid)
            return _to_run(run)

    def end_run(self, attempt_id: str, number: int, exit_code: int | None) -> None:
        """Record how a run ended; history, so allowed even after the lease is gone."""
        with self._write() as conn:
            result = conn.execute(
                update(_R)
                .where(_R.c.attempt_id == attempt_id, _R.c.number == number)
                .values(ended_at=self.clock(), exit_code=exit_code)
            )
            if result.rowcount != 1:
                raise AttemptNotFound(f"attempt {attempt_id} has no run {number}")

    def runs(self, attempt_id: str) -> list[Run]:
        with self._read() as conn:
            rows = conn.execute(
                select(_R).where(_R.c.attempt_id == attempt_id).order_by(_R.c.number)
            )
            return [_to_run(r) for r in rows]


def _to_lease(taken: tuple[Any, dt.datetime] | None) -> Lease | None:
    if taken is None:
        return None
    row, expires = taken
    return Lease(attempt=to_attempt(row), token=row.lease_token, expires_at=expires)


def _to_message(m: Any) -> Message:
    created = _aware(m.created_at)
    assert created is not None
    return Message(
        id=m.id,
        attempt_id=m.attempt_id,
        body=m.body,
        actor=m.actor,
        created_at=created,
        delivered_at=_aware(m.delivered_at),
        run_number=m.run_number,
    )


def _to_run(r: Any) -> Run:
    started = _aware(r.started_at)
    assert started is not None
    return Run(
        attempt_id=r.attempt_id,
        number=r.number,
        prompt=r.prompt,
        command=tuple(r.command),
        log_path=r.log_path,
        pid=r.pid,
        started_at=started,
        ended_at=_aware(r.ended_at),
        exit_code=r.exit_code,
    )
