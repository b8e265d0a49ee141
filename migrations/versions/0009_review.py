"""What an attempt changed, recorded; runs of kind ``check``.

``attempts`` gets the summary of its committed changes against ``base_commit``, counted
at ``changes_tip`` (commits ahead, files changed, lines added and removed, and when), so
that ``orch list`` reads it instead of asking git per attempt. ``attempt_runs`` gets a
``kind``: every run so far was an agent's (``agent``); a run of the repository's check
command is ``check``, with ``timed_out`` when its timeout killed it.

Alembic revision 0009, after 0008 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0009", "0008"

_CHANGES = (
    ("changes_tip", sa.String(64)),
    ("commits_ahead", sa.Integer()),
    ("files_changed", sa.Integer()),
    ("lines_added", sa.Integer()),
    ("lines_removed", sa.Integer()),
    ("changes_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, kind in _CHANGES:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("attempt_runs") as batch:
        # every existing run was an agent's; a server default fills them in one statement
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="agent"))
        batch.add_column(
            sa.Column("timed_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # the check runs go with their kind: to an older orch every run is an agent's
    op.execute("DELETE FROM attempt_runs WHERE kind <> 'agent'")
    with op.batch_alter_table("attempt_runs") as batch:
        batch.drop_column("timed_out")
        batch.drop_column("kind")
    with op.batch_alter_table("attempts") as batch:
        for name, _kind in reversed(_CHANGES):
            batch.drop_column(name)
