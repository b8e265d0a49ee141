"""How an attempt's worktree was checked out: sparse paths, submodules, LFS smudging.

Alembic revision 0007, after 0006 (2026-11-21).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0007", "0006"


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
