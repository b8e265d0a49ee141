"""Task phases and the registry of each task's workspace.

Alembic revision 0004, after 0003 (2026-11-21).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("phase", sa.String(64), nullable=True))
    op.create_table(
        "task_workspaces",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("repository", sa.Text(), nullable=False),
        sa.Column("task_key", sa.String(128), nullable=False),
        sa.Column("branch_name", sa.String(255), nullable=False),
        sa.Column("worktree_path", sa.Text(), nullable=False),
        sa.Column("attempt_id", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("repository", "task_key", name="uq_task_workspace"),
        sa.UniqueConstraint("repository", "branch_name", name="uq_task_branch"),
    )


def downgrade() -> None:
    op.drop_table("task_workspaces")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("phase")
