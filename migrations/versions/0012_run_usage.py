"""What each run's agent reported it consumed.

``attempt_runs`` gets ``input_tokens``, ``output_tokens``, ``cached_tokens``,
``cost_usd`` and ``model``, read by ``orch work`` from the agent's own machine-readable
output (``orch.attempts.usage``). NULL is "not reported", never zero: every existing run
stays NULL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_USAGE = (
    ("input_tokens", sa.BigInteger()),
    ("output_tokens", sa.BigInteger()),
    ("cached_tokens", sa.BigInteger()),
    ("cost_usd", sa.Float()),
    ("model", sa.String(255)),
)


def upgrade() -> None:
    with op.batch_alter_table("attempt_runs") as batch:
        for name, kind in _USAGE:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempt_runs") as batch:
        for name, _kind in reversed(_USAGE):
            batch.drop_column(name)
