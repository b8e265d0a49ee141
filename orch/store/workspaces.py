"""The registry of task workspaces: which attempt's worktree and branch later phases reuse.

A row names the attempt, never its branch or path: those are read from the attempt's row,
so they cannot drift from it. The row is written by ``finish_provisioning``, in the
transaction that makes a fresh workspace ready (``map_task_workspace``), and read back
only while that attempt still holds its workspace. This module never writes an attempt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from orch.models import HOLDS_WORKTREE, TaskWorkspace, WorkspaceStatus
from orch.store.base import StoreBase
from orch.store.dialects import upsert
from orch.store.tables import attempts as _T
from orch.store.tables import task_workspaces as _W


def map_task_workspace(conn: Connection, row: Any, now: Any) -> None:
    """Within the caller's transaction: the task of the attempt ``row`` (just made ready)
    reuses its workspace from now on, replacing the task's previous one.

    Only a fresh workspace of this host counts: an attempt in an existing place has no
    worktree of its own, and one provisioned for another host is not on this disk."""
    if (
        row.workspace_status != WorkspaceStatus.READY
        or not row.branch_name
        or not row.worktree_path
        or row.target_host is not None
    ):
        return
    # one statement that inserts or replaces: parallel dispatches of one task never fail
    # on each other's row (the later one wins)
    statement = upsert(conn, _W).values(
        repository=row.repository, task_key=row.task_key, attempt_id=row.id, updated_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[_W.c.repository, _W.c.task_key],
            set_={"attempt_id": row.id, "updated_at": now},
        )
    )


class WorkspaceOps(StoreBase):
    def task_workspace(self, repository: str, task_key: str) -> TaskWorkspace | None:
        """The task's workspace, or None if it has none or its attempt no longer holds it
        (cleaned up, returned to the pool, found deleted)."""
        query = (
            select(_W.c.repository, _W.c.task_key, _T.c.branch_name, _T.c.worktree_path, _T.c.id)
            .join(_T, _T.c.id == _W.c.attempt_id)
            .where(
                _W.c.repository == repository,
                _W.c.task_key == task_key,
                _T.c.workspace_status.in_(sorted(HOLDS_WORKTREE)),
            )
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None or not row.branch_name or not row.worktree_path:
            return None
        return TaskWorkspace(
            row.repository, row.task_key, row.branch_name, row.worktree_path, row.id
        )

    def release_workspace(self, task_key: str, repository: str | None = None) -> int:
        with self._write() as conn:
            query = delete(_W).where(_W.c.task_key == task_key)
            if repository is not None:
                query = query.where(_W.c.repository == repository)
            return int(conn.execute(query).rowcount)
