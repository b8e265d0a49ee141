"""How an attempt's worktree was checked out: sparse paths, submodules, LFS smudging.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("sparse_paths", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("submodules", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("lfs_skip_smudge", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("lfs_skip_smudge")
        batch.drop_column("submodules")
        batch.drop_column("sparse_paths")
