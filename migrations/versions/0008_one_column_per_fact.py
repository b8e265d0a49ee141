"""One column per fact: the dispatcher's own columns; task workspaces name their attempt.

``worker_host``/``worker_pid``/``worker_started_at`` held the dispatch process while an
attempt was provisioning and the lease holder afterwards; the dispatch process moves to
``dispatcher_*``. ``task_workspaces`` copied the attempt's branch and path; it keeps only
the attempt's id (a foreign key), and the branch and path are read from the attempt.

Alembic revision 0008, after 0007 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0008", "0007"

_FK = "fk_task_workspaces_attempt_id"
_IX = "ix_task_workspaces_attempt_id"
# a queued attempt still provisioning: its worker_* columns named the dispatch process
# (a running one provisioning on its worker's host names the lease holder, and stays)
_DISPATCHING = "state = 'queued' AND workspace_status = 'provisioning'"


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("dispatcher_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("dispatcher_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dispatcher_started_at", sa.Float(), nullable=True))
    op.execute(
        "UPDATE attempts SET dispatcher_host = worker_host, dispatcher_pid = worker_pid, "
        "dispatcher_started_at = worker_started_at, worker_host = NULL, worker_pid = NULL, "
        f"worker_started_at = NULL WHERE {_DISPATCHING}"
    )
    # a mapping whose attempt is gone, or whose copy no longer matches the attempt, would
    # now lead somewhere it never led: the task gets a fresh workspace instead
    op.execute(
        "DELETE FROM task_workspaces WHERE NOT EXISTS (SELECT 1 FROM attempts a "
        "WHERE a.id = task_workspaces.attempt_id "
        "AND a.branch_name = task_workspaces.branch_name "
        "AND a.worktree_path = task_workspaces.worktree_path)"
    )
    with op.batch_alter_table("task_workspaces") as batch:
        batch.drop_constraint("uq_task_branch", type_="unique")
        batch.drop_column("branch_name")
        batch.drop_column("worktree_path")
        batch.create_foreign_key(_FK, "attempts", ["attempt_id"], ["id"], ondelete="CASCADE")
        batch.create_index(_IX, ["attempt_id"])


def downgrade() -> None:
    with op.batch_alter_table("task_workspaces") as batch:
        batch.drop_index(_IX)
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.add_column(sa.Column("branch_name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("worktree_path", sa.Text(), nullable=True))
    for column in ("branch_name", "worktree_path"):
        op.execute(
            f"UPDATE task_workspaces SET {column} = (SELECT a.{column} FROM attempts a "
            "WHERE a.id = task_workspaces.attempt_id)"
        )
    op.execute("DELETE FROM task_workspaces WHERE branch_name IS NULL OR worktree_path IS NULL")
    with op.batch_alter_table("task_workspaces") as batch:
        batch.alter_column("branch_name", existing_type=sa.String(255), nullable=False)
        batch.alter_column("worktree_path", existing_type=sa.Text(), nullable=False)
        batch.create_unique_constraint("uq_task_branch", ["repository", "branch_name"])
    op.execute(
        "UPDATE attempts SET worker_host = dispatcher_host, worker_pid = dispatcher_pid, "
        "worker_started_at = dispatcher_started_at WHERE dispatcher_pid IS NOT NULL"
    )
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("dispatcher_started_at")
        batch.drop_column("dispatcher_pid")
        batch.drop_column("dispatcher_host")
