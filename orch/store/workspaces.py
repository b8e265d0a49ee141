"""The registry of task workspaces: the worktree and branch later phases of a task reuse.

A unique constraint on (repository, branch) keeps two task keys from claiming one branch.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from orch.errors import Conflict, StoreConflict
from orch.models import TaskWorkspace
from orch.store.base import StoreBase
from orch.store.tables import task_workspaces as _W


class WorkspaceOps(StoreBase):
    def register_workspace(self, ws: TaskWorkspace) -> None:
        """Map the task to this workspace (replacing its previous mapping)."""
        of_task = (_W.c.repository == ws.repository, _W.c.task_key == ws.task_key)
        values = {
            "branch_name": ws.branch_name,
            "worktree_path": ws.worktree_path,
            "attempt_id": ws.attempt_id,
            "updated_at": self.clock(),
        }
        for tries_left in (1, 0):
            try:
                with self._write() as conn:
                    if conn.execute(update(_W).where(*of_task).values(**values)).rowcount == 0:
                        conn.execute(
                            insert(_W).values(
                                repository=ws.repository, task_key=ws.task_key, **values
                            )
                        )
                return
            except StoreConflict as exc:
                # PostgreSQL: a dispatch of the same task inserted its mapping between our
                # update and insert; the update finds it now (the later dispatch wins)
                if tries_left and self.task_workspace(ws.repository, ws.task_key) is not None:
                    continue
                raise Conflict(
                    f"branch {ws.branch_name} already belongs to another task's workspace"
                ) from exc

    def task_workspace(self, repository: str, task_key: str) -> TaskWorkspace | None:
        with self._read() as conn:
            row = conn.execute(
                select(_W).where(_W.c.repository == repository, _W.c.task_key == task_key)
            ).first()
            if row is None:
                return None
            return TaskWorkspace(
                row.repository, row.task_key, row.branch_name, row.worktree_path, row.attempt_id
            )

    def release_workspace(self, task_key: str, repository: str | None = None) -> int:
        with self._write() as conn:
            query = delete(_W).where(_W.c.task_key == task_key)
            if repository is not None:
                query = query.where(_W.c.repository == repository)
            return int(conn.execute(query).rowcount)
