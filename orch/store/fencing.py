"""Fencing: the compare-and-set every write on a held attempt goes through.

A lease token only grows, so a worker whose lease was taken away (expiry, reassign,
cancel) can never write a late result: its writes match no row, and ``lease_lost`` says
what happened instead. Shared by claims, leases, operator actions, follow-ups and review
(with the one refusal of an attempt that does not exist, or has ended); it never commits
anything on its own (the caller's transaction does).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from orch.errors import AttemptNotFound, Conflict, LeaseLost
from orch.models import State
from orch.store.tables import attempts as _T

# An attempt nobody holds: the lease and every trace of its holder cleared.
NO_HOLDER: dict[str, Any] = {
    "lease_expires_at": None,
    "lease_holder": None,
    "worker_host": None,
    "worker_pid": None,
    "worker_started_at": None,
    "agent_pid": None,
    "agent_started_at": None,
}
# the attempt ``b_id`` is running and still held with lease ``b_token``
HOLDER = (
    (_T.c.id == bindparam("b_id"))
    & (_T.c.lease_token == bindparam("b_token"))
    & (_T.c.state == str(State.RUNNING))
)


def current_row(conn: Connection, attempt_id: str, lock: bool = False) -> Any:
    query = select(_T).where(_T.c.id == attempt_id)
    return conn.execute(query.with_for_update() if lock else query).first()


def existing_row(conn: Connection, attempt_id: str, lock: bool = False) -> Any:
    """The attempt's row (locked until the transaction ends when ``lock``), or
    ``AttemptNotFound``."""
    row = current_row(conn, attempt_id, lock)
    if row is None:
        raise AttemptNotFound(f"no attempt {attempt_id!r} in the store")
    return row


def live_row(conn: Connection, attempt_id: str, refused: str) -> Any:
    """The live attempt's row, locked until the transaction ends; ``AttemptNotFound``, or
    for an attempt that ended a ``Conflict`` saying so and that ``refused``."""
    row = existing_row(conn, attempt_id, lock=True)
    if State(row.state).terminal:
        raise Conflict(f"attempt {attempt_id} is {row.state}: {refused}")
    return row


def update_held(conn: Connection, attempt_id: str, token: int, *also: Any, **values: Any) -> Any:
    """Compare-and-set on a running attempt still held with lease ``token`` (and ``also``);
    the row as it is now, or None when the lease no longer holds."""
    query = update(_T).where(HOLDER, *also).values(**values).returning(*_T.c)
    return conn.execute(query, {"b_id": attempt_id, "b_token": token}).first()


def lease_lost(row: Any, attempt_id: str, token: int) -> LeaseLost:
    """The ``LeaseLost`` a write with ``token`` gets, saying what became of the attempt."""
    if row is None:
        return LeaseLost(f"attempt {attempt_id} no longer exists")
    if row.lease_token != token:
        return LeaseLost(
            f"lease {token} on attempt {attempt_id} was taken away (now lease {row.lease_token}, "
            f"state {row.state})"
        )
    return LeaseLost(f"attempt {attempt_id} is {row.state}: the lease no longer holds")
