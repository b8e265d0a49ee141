"""Several hosts: the host an attempt is for, the host its workspace is on, and the
repository's identity across clones.

Alembic revision 0005, after 0004 (2026-11-21).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0005", "0004"


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
