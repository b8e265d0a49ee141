"""Several hosts: the host an attempt is for, the host its workspace is on, and the
repository's identity across clones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("target_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("workspace_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("repository_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("repository_url")
        batch.drop_column("workspace_host")
        batch.drop_column("target_host")
