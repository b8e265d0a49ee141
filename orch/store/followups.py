"""Follow-up messages and the runs of an attempt's agent.

A message is queued for a live attempt and taken by its lease holder only, marked with the
run it was delivered to; a run is started by the lease holder, and its end is history, so
it is recorded even after the lease is gone. A message is never delivered to anyone but
the attempt's current lease holder.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select, update

from orch.errors import AttemptNotFound
from orch.models import Message, Run, State
from orch.store.base import StoreBase, to_message, to_run
from orch.store.fencing import current_row, lease_lost, live_row
from orch.store.tables import attempt_messages as _M
from orch.store.tables import attempt_runs as _R
from orch.store.tables import attempts as _T


class FollowUpOps(StoreBase):
    def add_message(self, attempt_id: str, body: str, actor: str) -> Message:
        with self._write() as conn:
            live_row(conn, attempt_id, "it takes no more messages")
            msg = conn.execute(
                insert(_M)
                .values(
                    attempt_id=attempt_id, body=body, actor=actor[:255], created_at=self.clock()
                )
                .returning(*_M.c)
            ).one()
            self._event(conn, attempt_id, "message_queued", actor, message=msg.id)
            return to_message(msg)

    def take_messages(self, attempt_id: str, token: int, run_number: int) -> list[Message]:
        """Mark every undelivered message delivered to ``run_number``; lease holder only."""
        with self._write() as conn:
            row = current_row(conn, attempt_id, lock=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise lease_lost(row, attempt_id, token)
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
            return [to_message(m) for m in msgs]

    def messages(self, attempt_id: str) -> list[Message]:
        with self._read() as conn:
            rows = conn.execute(select(_M).where(_M.c.attempt_id == attempt_id).order_by(_M.c.id))
            return [to_message(m) for m in rows]

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
            row = current_row(conn, attempt_id, lock=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise lease_lost(row, attempt_id, token)
            run = self._new_run(
                conn,
                attempt_id,
                prompt=prompt,
                command=list(command),
                log_path=log_path,
                pid=pid,
            )
            conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id)
                .values(agent_pid=pid, agent_started_at=pid_started_at)
            )
            self._event(conn, attempt_id, "run_started", f"lease {token}", run=run.number, pid=pid)
            return run

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
            return [to_run(r) for r in rows]
