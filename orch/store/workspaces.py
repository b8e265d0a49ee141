"""The registry of task workspaces: the worktree and branch later phases of a task reuse.

A unique constraint on (repository, branch) keeps two task keys from claiming one branch.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from orch.errors import Conflict, StoreError
from orch.models import TaskWorkspace
from orch.store.base import StoreBase
from orch.store.tables import TaskWorkspaceRow


class WorkspaceOps(StoreBase):
    def register_workspace(self, ws: TaskWorkspace) -> None:
        """Map the task to this workspace (replacing its previous mapping)."""
        try:
            with self._write() as s:
                row = s.scalars(
                    select(TaskWorkspaceRow).where(
                        TaskWorkspaceRow.repository == ws.repository,
                        TaskWorkspaceRow.task_key == ws.task_key,
                    )
                ).first()
                if row is None:
                    row = TaskWorkspaceRow(repository=ws.repository, task_key=ws.task_key)
                    s.add(row)
                row.branch_name = ws.branch_name
                row.worktree_path = ws.worktree_path
                row.attempt_id = ws.attempt_id
                row.updated_at = self.clock()
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(
                    f"branch {ws.branch_name} already belongs to another task's workspace"
                ) from exc
            raise

    def task_workspace(self, repository: str, task_key: str) -> TaskWorkspace | None:
        with self._read() as s:
            row = s.scalars(
                select(TaskWorkspaceRow).where(
                    TaskWorkspaceRow.repository == repository,
                    TaskWorkspaceRow.task_key == task_key,
                )
            ).first()
            if row is None:
                return None
            return TaskWorkspace(
                row.repository, row.task_key, row.branch_name, row.worktree_path, row.attempt_id
            )

    def release_workspace(self, task_key: str, repository: str | None = None) -> int:
        with self._write() as s:
            query = delete(TaskWorkspaceRow).where(TaskWorkspaceRow.task_key == task_key)
            if repository is not None:
                query = query.where(TaskWorkspaceRow.repository == repository)
            return int(s.execute(query).rowcount)  # type: ignore[attr-defined]
