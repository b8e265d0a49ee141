"""What each run's agent reported it consumed.

``attempt_runs`` gets ``input_tokens``, ``output_tokens``, ``cached_tokens``,
``cost_usd`` and ``model``, read by ``orch work`` from the agent's own machine-readable
output (``orch.attempts.usage``). NULL is "not reported", never zero: every existing run
stays NULL.

Alembic revision 0012, after 0011 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0012", "0011"

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
