"""Leases and ends: heartbeats, finishing, giving back, and the ends decided by others.

Every write is a compare-and-set on the attempt's state and on its lease token
(``orch.store.fencing``). Terminal states never change; a finish tried again after its
answer was lost is recognised by its event and accepted as the same finish. Nothing here
ever writes to an attempt held under another lease token than the caller's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from orch.errors import Conflict, LeaseLost
from orch.models import Attempt, Finish, Lease, State, WorkspaceStatus
from orch.store.base import StoreBase, to_attempt
from orch.store.engine import is_sqlite
from orch.store.fencing import HOLDER, NO_HOLDER, current_row, lease_lost, update_held
from orch.store.tables import attempt_events as _E
from orch.store.tables import attempts as _T

_HEARTBEAT = (
    update(_T)
    .where(HOLDER)
    .values(lease_expires_at=bindparam("b_expires"), heartbeat_at=bindparam("b_now"))
    .returning(*_T.c)
)
_FINISH = (
    update(_T)
    .where(HOLDER)
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


class LeaseOps(StoreBase):
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
                raise lease_lost(current_row(conn, attempt_id), attempt_id, token)
        return Lease(attempt=to_attempt(row), token=token, expires_at=expires)

    def heartbeat_many(
        self, held: Sequence[tuple[str, int]], ttl: float
    ) -> list[Lease | LeaseLost]:
        """Renew several leases, given as (attempt id, lease token), in one statement.

        A worker that runs several attempts at once beats them all with one short
        transaction instead of one each. Each lease is judged on its own: the result holds,
        in the order given, the renewed lease or the ``LeaseLost`` ``heartbeat`` would
        have raised for it."""
        keys = [(attempt_id, token) for attempt_id, token in held]
        if not keys:
            return []
        now = self.clock()
        expires = now + dt.timedelta(seconds=ttl)
        with self._write() as conn:
            if not is_sqlite(self.url):
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")  # as ``heartbeat``
            rows = conn.execute(
                update(_T)
                .where(
                    _T.c.state == str(State.RUNNING),
                    tuple_(_T.c.id, _T.c.lease_token).in_(keys),
                )
                .values(lease_expires_at=expires, heartbeat_at=now)
                .returning(*_T.c)
            ).all()
            renewed = {(r.id, r.lease_token): r for r in rows}
            lost = {
                key: lease_lost(current_row(conn, key[0]), *key)
                for key in keys
                if key not in renewed
            }
        return [
            Lease(to_attempt(renewed[key]), key[1], expires) if key in renewed else lost[key]
            for key in keys
        ]

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
        if not state.worker_end:
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
            current = current_row(conn, attempt_id)
            if _finished_before(conn, current, token, state, exit_code, summary):
                return current  # tried again: the first answer was lost
            raise lease_lost(current, attempt_id, token)
        self._event(
            conn, attempt_id, "finished", actor, **_finish_detail(state, exit_code, summary, token)
        )
        return row

    def finish_many(self, finishes: Sequence[Finish], actor: str) -> list[Attempt | LeaseLost]:
        """``finish`` several attempts in one transaction; one statement per distinct outcome.

        Each item is judged on its own: the result holds, in the order given, the ended
        attempt or the ``LeaseLost`` that ``finish`` would have raised for it."""
        for item in finishes:
            if not item.state.worker_end:
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
                    current = current_row(conn, item.attempt_id)
                    if _finished_before(conn, current, item.token, item.state, exit_code, summary):
                        ended[item.attempt_id] = current
                    else:
                        refused[item.attempt_id] = lease_lost(current, item.attempt_id, item.token)
        return [
            to_attempt(ended[i.attempt_id]) if i.attempt_id in ended else refused[i.attempt_id]
            for i in finishes
        ]

    def end_lost_worker(
        self, attempt_id: str, token: int, reason: str, actor: str
    ) -> Attempt | None:
        """running -> worker_gone, only if the lease is still the one that was judged lost."""
        with self._write() as conn:
            now = self.clock()
            row = update_held(
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
            row = update_held(
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
                raise lease_lost(current_row(conn, attempt_id), attempt_id, token)
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
            row = update_held(
                conn,
                attempt_id,
                token,
                state=str(State.QUEUED),
                lease_token=token + 1,
                **NO_HOLDER,
                updated_at=self.clock(),
            )
            if row is None:
                raise lease_lost(current_row(conn, attempt_id), attempt_id, token)
            self._event(conn, attempt_id, "released", actor, reason=reason, lease=token)
            return to_attempt(row)

    def running_attempts(self) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(select(_T).where(_T.c.state == str(State.RUNNING)))
            return [to_attempt(r) for r in rows]
