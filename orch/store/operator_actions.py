"""What an operator does to a live attempt in the store: cancel it, give it to another worker.

Both fence the current holder out (the lease token grows in the same statement), so a
worker that still runs learns of it at its next write; neither touches a terminal attempt.
A cancel records the follow-ups it leaves undelivered (``followups_dropped``): once the
attempt has ended nobody can take them any more.
"""

from __future__ import annotations

from sqlalchemy import select, update

from orch.models import Attempt, State
from orch.store.base import StoreBase, to_attempt
from orch.store.fencing import NO_HOLDER, existing_row, live_row
from orch.store.tables import attempt_messages as _M
from orch.store.tables import attempts as _T


class OperatorOps(StoreBase):
    def cancel(self, attempt_id: str, reason: str, actor: str) -> tuple[Attempt, bool]:
        """End a live attempt as ``cancelled``; (attempt, False) if it had already ended."""
        with self._write() as conn:
            row = existing_row(conn, attempt_id, lock=True)
            if State(row.state).terminal:
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
            dropped = conn.scalars(
                select(_M.c.id)
                .where(_M.c.attempt_id == attempt_id, _M.c.delivered_at.is_(None))
                .order_by(_M.c.id)
            ).all()
            if dropped:
                self._event(
                    conn,
                    attempt_id,
                    "followups_dropped",
                    actor,
                    messages=list(dropped),
                    count=len(dropped),
                )
            return to_attempt(after), True

    def reassign(self, attempt_id: str, worker: str, actor: str) -> tuple[Attempt, Attempt]:
        """Give a live attempt to ``worker``: back to queued, the old lease fenced out."""
        with self._write() as conn:
            row = live_row(conn, attempt_id, "it cannot be reassigned")
            after = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.lease_token == row.lease_token)
                .values(
                    state=str(State.QUEUED),
                    worker=worker,
                    lease_token=row.lease_token + 1,
                    heartbeat_at=None,
                    **NO_HOLDER,
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
