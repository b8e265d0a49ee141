"""The land queue of ``orch serve``: lands queued with ``orch land --queue`` (or the
dashboard's Land button), landed by the loop in order, each with its result.

A table of its own, not ``queued_tasks``: a queued land names an attempt and how to land
it, and keeps what happened (the landed commit, a conflict's paths, the one line of a
refusal). Each entry names the host whose loop lands it (the one it was queued on: its
repository's path is a path there). Nothing existing changes.

Alembic revision 0013, after 0012 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0013", "0012"


def upgrade() -> None:
    op.create_table(
        "land_queue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "attempt_id",
            sa.String(16),
            sa.ForeignKey("attempts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("repository", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("into_branch", sa.String(255), nullable=True),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("run_check", sa.Boolean(), nullable=False),
        sa.Column("keep", sa.Boolean(), nullable=False),
        sa.Column("resolve", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("landed_commit", sa.String(64), nullable=True),
        sa.Column("paths", sa.JSON(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_land_queue_attempt_id", "land_queue", ["attempt_id"])
    op.create_index("ix_land_queue_state", "land_queue", ["state", "id"])


def downgrade() -> None:
    op.drop_index("ix_land_queue_state", table_name="land_queue")
    op.drop_index("ix_land_queue_attempt_id", table_name="land_queue")
    op.drop_table("land_queue")
