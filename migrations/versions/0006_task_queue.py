"""The task queue: tasks submitted with ``orch submit`` that ``orch serve`` dispatches.

Alembic revision 0006, after 0005 (2026-11-21).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0006", "0005"


def upgrade() -> None:
    op.create_table(
        "queued_tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task_key", sa.String(128), nullable=False),
        sa.Column("repository", sa.Text(), nullable=False),
        sa.Column("base_ref", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt_id", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queued_tasks_state", "queued_tasks", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_queued_tasks_state", table_name="queued_tasks")
    op.drop_table("queued_tasks")
