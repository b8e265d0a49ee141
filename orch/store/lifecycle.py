"""Lifecycle operations: claims, leases, finishing, cancelling, follow-ups and runs.

Every write is a compare-and-set on the attempt's state and, for a worker's writes, on
its lease token (fencing): a token only grows, so a worker whose lease was taken away
(expiry, reassign, cancel) can never write a late result. Terminal states never change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, or_, select, update

from orch.errors import AttemptNotFound, Conflict, LeaseLost, NotClaimable
from orch.models import (
    TERMINAL_STATES,
    Attempt,
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
from orch.store.tables import AttemptEventRow, AttemptRow, MessageRow, RunRow

CLAIMABLE_WORKSPACES = (
    WorkspaceStatus.READY,
    WorkspaceStatus.REUSED,
    WorkspaceStatus.SKIPPED_IN_WORKTREE,
    WorkspaceStatus.SKIPPED_NOT_GIT,
)
WORKER_END_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.TIMED_OUT)
LIVE_STATES = (State.QUEUED, State.RUNNING)


_T = cast(Table, AttemptRow.__table__)
_E = cast(Table, AttemptEventRow.__table__)
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
_ON_THIS_HOST = or_(_T.c.workspace_host.is_(None), _T.c.workspace_host == bindparam("host"))
_FOR_WORKER = or_(_T.c.worker.is_(None), _T.c.worker == bindparam("worker"))
_CANDIDATE = select(_T.c.id, _T.c.lease_token, _T.c.worker, _T.c.workspace_status)
_CLAIM_NEXT = (
    _CANDIDATE.where(_T.c.state == str(State.QUEUED), _CLAIMABLE, _ON_THIS_HOST, _FOR_WORKER)
    .order_by(_T.c.created_at, _T.c.id)
    .limit(1)
)
_CLAIM_NEXT_LOCKING = _CLAIM_NEXT.with_for_update(skip_locked=True)
# attempts dispatched for any host (or this one) in a repository this worker has a clone of
_CLAIM_PENDING = (
    _CANDIDATE.where(
        _T.c.state == str(State.QUEUED),
        _T.c.workspace_status == str(WorkspaceStatus.PENDING),
        or_(_T.c.target_host == "any", _T.c.target_host == bindparam("host")),
        _T.c.repository_url.in_(bindparam("urls", expanding=True)),
        _FOR_WORKER,
    )
    .order_by(_T.c.created_at, _T.c.id)
    .limit(1)
)
_CLAIM_PENDING_LOCKING = _CLAIM_PENDING.with_for_update(skip_locked=True)
_CLAIM_SPECIFIC = _CANDIDATE.add_columns(
    _T.c.workspace_host, _T.c.target_host, _T.c.repository_url
).where(_T.c.state == str(State.QUEUED), _T.c.id == bindparam("attempt_id"))
_CLAIM_SPECIFIC_LOCKING = _CLAIM_SPECIFIC.with_for_update(skip_locked=True)
_CLAIM_UPDATE = (
    update(_T)
    .where(
        _T.c.id == bindparam("b_id"),
        _T.c.state == str(State.QUEUED),
        _T.c.lease_token == bindparam("b_old"),
    )
    .values(
        state=str(State.RUNNING),
        lease_token=bindparam("b_token"),
        lease_expires_at=bindparam("b_expires"),
        heartbeat_at=bindparam("b_now"),
        lease_holder=bindparam("b_holder"),
        worker_host=bindparam("b_host"),
        worker_pid=bindparam("b_pid"),
        worker_started_at=bindparam("b_started"),
        agent_pid=None,
        agent_started_at=None,
        updated_at=bindparam("b_now"),
    )
    .returning(*_T.c)
)
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


def _current(conn: Connection, attempt_id: str) -> Any:
    return conn.execute(select(_T).where(_T.c.id == attempt_id)).first()


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
    asked = {"state": str(state), "exit_code": exit_code, "summary": summary, "lease": token}
    return last == asked


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
        locking = not is_sqlite(self.url)
        params = {"worker": worker.name, "host": worker.host, "urls": list(repository_urls)}
        with self._write_conn() as conn:
            if attempt_id is not None:
                query = _CLAIM_SPECIFIC_LOCKING if locking else _CLAIM_SPECIFIC
                candidate = conn.execute(query, {"attempt_id": attempt_id}).first()
                if candidate is not None:
                    self._check_claimable(candidate, worker, repository_urls)
            else:
                query = _CLAIM_NEXT_LOCKING if locking else _CLAIM_NEXT
                candidate = conn.execute(query, params).first()
                if candidate is None and repository_urls:
                    query = _CLAIM_PENDING_LOCKING if locking else _CLAIM_PENDING
                    candidate = conn.execute(query, params).first()
            if candidate is None:
                if attempt_id is None:
                    return None
                raise self._why_not_claimable(conn, attempt_id)
            now = self.clock()
            token = candidate.lease_token + 1
            expires = now + dt.timedelta(seconds=ttl)
            row = conn.execute(
                _CLAIM_UPDATE,
                {
                    "b_id": candidate.id,
                    "b_old": candidate.lease_token,
                    "b_token": token,
                    "b_expires": expires,
                    "b_now": now,
                    "b_holder": worker.name[:128],
                    "b_host": worker.host,
                    "b_pid": worker.pid,
                    "b_started": worker.started_at,
                },
            ).first()
            if row is None:
                return None  # another claimant won between our read and write
            self._event_conn(
                conn,
                row.id,
                "claimed",
                actor,
                worker=worker.name,
                host=worker.host,
                pid=worker.pid,
                lease=token,
            )
            return Lease(attempt=to_attempt(row), token=token, expires_at=expires)

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
        row = conn.execute(select(_T).where(_T.c.id == attempt_id)).first()
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
        with self._write_conn() as conn:
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
        if state not in WORKER_END_STATES:
            raise Conflict(f"a worker cannot finish an attempt as {state}")
        with self._write_conn() as conn:
            now = self.clock()
            row = conn.execute(
                _FINISH,
                {
                    "b_id": attempt_id,
                    "b_token": token,
                    "b_state": str(state),
                    "b_exit": exit_code,
                    "b_summary": summary,
                    "b_now": now,
                },
            ).first()
            if row is None:
                current = _current(conn, attempt_id)
                if _finished_before(conn, current, token, state, exit_code, summary):
                    return to_attempt(current)  # tried again: the first answer was lost
                raise _lease_lost(current, attempt_id, token)
            self._event_conn(
                conn,
                attempt_id,
                "finished",
                actor,
                state=str(state),
                exit_code=exit_code,
                summary=summary,
                lease=token,
            )
            return to_attempt(row)

    def end_lost_worker(
        self, attempt_id: str, token: int, reason: str, actor: str
    ) -> Attempt | None:
        """running -> worker_gone, only if the lease is still the one that was judged lost."""
        with self._write() as s:
            now = self.clock()
            result = s.execute(
                update(AttemptRow)
                .where(
                    AttemptRow.id == attempt_id,
                    AttemptRow.lease_token == token,
                    AttemptRow.state == State.RUNNING,
                )
                .values(
                    state=State.WORKER_GONE,
                    reason=reason,
                    finished_at=now,
                    updated_at=now,
                    lease_token=token + 1,
                    lease_expires_at=None,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            self._event(s, attempt_id, "worker_gone", actor, reason=reason, lease=token)
            return to_attempt(s.get_one(AttemptRow, attempt_id))

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
        with self._write() as s:
            result = s.execute(
                update(AttemptRow)
                .where(
                    AttemptRow.id == attempt_id,
                    AttemptRow.lease_token == token,
                    AttemptRow.state == State.RUNNING,
                    AttemptRow.workspace_status == WorkspaceStatus.PENDING,
                )
                .values(
                    workspace_status=WorkspaceStatus.PROVISIONING,
                    repository=repository,
                    branch_name=branch_name,
                    worktree_path=worktree_path,
                    workspace_host=host,
                    updated_at=self.clock(),
                )
            )
            row = s.get(AttemptRow, attempt_id)
            if result.rowcount != 1 or row is None:  # type: ignore[attr-defined]
                raise _lease_lost(row, attempt_id, token)
            self._event(
                s,
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
        with self._write() as s:
            now = self.clock()
            result = s.execute(
                update(AttemptRow)
                .where(AttemptRow.id == attempt_id, AttemptRow.state == State.QUEUED)
                .values(
                    state=State.FAILED,
                    reason=reason,
                    finished_at=now,
                    updated_at=now,
                    lease_token=AttemptRow.lease_token + 1,
                )
            )
            row = s.get(AttemptRow, attempt_id)
            if result.rowcount != 1 or row is None:  # type: ignore[attr-defined]
                raise Conflict(f"attempt {attempt_id} is no longer queued")
            self._event(s, attempt_id, "failed_before_claim", actor, reason=reason)
            return to_attempt(row)

    def release(self, attempt_id: str, token: int, reason: str, actor: str) -> Attempt:
        """The lease holder gives a running attempt back (queued, old lease fenced)."""
        with self._write() as s:
            now = self.clock()
            result = s.execute(
                update(AttemptRow)
                .where(
                    AttemptRow.id == attempt_id,
                    AttemptRow.lease_token == token,
                    AttemptRow.state == State.RUNNING,
                )
                .values(
                    state=State.QUEUED,
                    lease_token=token + 1,
                    **_NO_HOLDER,
                    updated_at=now,
                )
            )
            row = s.get(AttemptRow, attempt_id)
            if result.rowcount != 1 or row is None:  # type: ignore[attr-defined]
                raise _lease_lost(row, attempt_id, token)
            self._event(s, attempt_id, "released", actor, reason=reason, lease=token)
            return to_attempt(row)

    def running_attempts(self) -> list[Attempt]:
        with self._read() as s:
            rows = s.scalars(select(AttemptRow).where(AttemptRow.state == State.RUNNING))
            return [to_attempt(r) for r in rows]

    # -- operator actions ------------------------------------------------------------------

    def cancel(self, attempt_id: str, reason: str, actor: str) -> tuple[Attempt, bool]:
        """End a live attempt as ``cancelled``; (attempt, False) if it had already ended."""
        with self._write() as s:
            row = s.get(AttemptRow, attempt_id, with_for_update=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                return to_attempt(row), False
            before = to_attempt(row)
            now = self.clock()
            s.execute(
                update(AttemptRow)
                .where(AttemptRow.id == attempt_id, AttemptRow.lease_token == row.lease_token)
                .values(
                    state=State.CANCELLED,
                    reason=reason,
                    finished_at=now,
                    updated_at=now,
                    lease_token=row.lease_token + 1,
                    lease_expires_at=None,
                )
            )
            self._event(s, attempt_id, "cancelled", actor, reason=reason, was=str(before.state))
            s.refresh(row)
            return to_attempt(row), True

    def reassign(self, attempt_id: str, worker: str, actor: str) -> tuple[Attempt, Attempt]:
        """Give a live attempt to ``worker``: back to queued, the old lease fenced out."""
        with self._write() as s:
            row = s.get(AttemptRow, attempt_id, with_for_update=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                raise Conflict(f"attempt {attempt_id} is {row.state}: it cannot be reassigned")
            before = to_attempt(row)
            now = self.clock()
            s.execute(
                update(AttemptRow)
                .where(AttemptRow.id == attempt_id, AttemptRow.lease_token == row.lease_token)
                .values(
                    state=State.QUEUED,
                    worker=worker,
                    lease_token=row.lease_token + 1,
                    heartbeat_at=None,
                    **_NO_HOLDER,
                    updated_at=now,
                )
            )
            self._event(
                s,
                attempt_id,
                "reassigned",
                actor,
                worker=worker,
                previous_worker=before.worker,
                was=str(before.state),
            )
            s.refresh(row)
            return before, to_attempt(row)

    # -- reading many ----------------------------------------------------------------------

    def get_many(self, attempt_ids: Sequence[str]) -> list[Attempt]:
        with self._read() as s:
            rows = {
                r.id: r for r in s.scalars(select(AttemptRow).where(AttemptRow.id.in_(attempt_ids)))
            }
            return [to_attempt(rows[i]) for i in attempt_ids if i in rows]

    def live_attempts(self, repository: str, task_key: str) -> list[Attempt]:
        with self._read() as s:
            rows = s.scalars(
                select(AttemptRow).where(
                    AttemptRow.repository == repository,
                    AttemptRow.task_key == task_key,
                    AttemptRow.state.in_([str(x) for x in LIVE_STATES]),
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
        with self._write() as s:
            row = s.get(AttemptRow, attempt_id, with_for_update=True)
            if row is None:
                raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
            if State(row.state) in TERMINAL_STATES:
                raise Conflict(f"attempt {attempt_id} is {row.state}: it takes no more messages")
            msg = MessageRow(
                attempt_id=attempt_id, body=body, actor=actor[:255], created_at=self.clock()
            )
            s.add(msg)
            s.flush()
            self._event(s, attempt_id, "message_queued", actor, message=msg.id)
            return _to_message(msg)

    def take_messages(self, attempt_id: str, token: int, run_number: int) -> list[Message]:
        """Mark every undelivered message delivered to ``run_number``; lease holder only."""
        with self._write() as s:
            row = s.get(AttemptRow, attempt_id, with_for_update=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise _lease_lost(row, attempt_id, token)
            msgs = list(
                s.scalars(
                    select(MessageRow)
                    .where(MessageRow.attempt_id == attempt_id, MessageRow.delivered_at.is_(None))
                    .order_by(MessageRow.id)
                )
            )
            now = self.clock()
            for m in msgs:
                m.delivered_at = now
                m.run_number = run_number
            if msgs:
                self._event(
                    s,
                    attempt_id,
                    "messages_delivered",
                    f"lease {token}",
                    messages=[m.id for m in msgs],
                    run=run_number,
                )
            return [_to_message(m) for m in msgs]

    def messages(self, attempt_id: str) -> list[Message]:
        with self._read() as s:
            rows = s.scalars(
                select(MessageRow)
                .where(MessageRow.attempt_id == attempt_id)
                .order_by(MessageRow.id)
            )
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
        with self._write() as s:
            row = s.get(AttemptRow, attempt_id, with_for_update=True)
            if row is None or row.lease_token != token or row.state != State.RUNNING:
                raise _lease_lost(row, attempt_id, token)
            number = (
                len(list(s.scalars(select(RunRow.id).where(RunRow.attempt_id == attempt_id)))) + 1
            )
            run = RunRow(
                attempt_id=attempt_id,
                number=number,
                prompt=prompt,
                command=list(command),
                log_path=log_path,
                pid=pid,
                started_at=self.clock(),
            )
            s.add(run)
            row.agent_pid = pid
            row.agent_started_at = pid_started_at
            s.flush()
            self._event(s, attempt_id, "run_started", f"lease {token}", run=number, pid=pid)
            return _to_run(run)

    def end_run(self, attempt_id: str, number: int, exit_code: int | None) -> None:
        """Record how a run ended; history, so allowed even after the lease is gone."""
        with self._write() as s:
            run = s.scalars(
                select(RunRow).where(RunRow.attempt_id == attempt_id, RunRow.number == number)
            ).one()
            run.ended_at = self.clock()
            run.exit_code = exit_code

    def runs(self, attempt_id: str) -> list[Run]:
        with self._read() as s:
            rows = s.scalars(
                select(RunRow).where(RunRow.attempt_id == attempt_id).order_by(RunRow.number)
            )
            return [_to_run(r) for r in rows]


def _to_message(m: MessageRow) -> Message:
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


def _to_run(r: RunRow) -> Run:
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
