"""The pull request opened for an attempt, and what the CI loop forwarded from it.

``attempts`` gets ``pr_url``, ``pr_number`` and ``pr_state`` (open, merged, closed),
written by ``orch pr`` and the loop of ``orch serve`` / ``orch loop``, and ``pr_watch``:
the check runs and review comments already forwarded to the agent, the number of CI
follow-ups sent and when the next may go, so that a restarted loop never repeats a
follow-up. Every existing attempt has no pull request: the new columns are empty.

Alembic revision 0014, after 0013 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0014", "0013"

_PR = (
    ("pr_url", sa.Text()),
    ("pr_number", sa.Integer()),
    ("pr_state", sa.String(16)),
    ("pr_watch", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, kind in _PR:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, _kind in reversed(_PR):
            batch.drop_column(name)
