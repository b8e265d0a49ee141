"""What a land recorded on the attempt, and the intent of one in progress.

``attempts`` gets the land that took its work into a target branch (``landed_commit``:
the target's new commit; ``landed_tip``: the attempt's commit that landed, which cleanup
counts as saved even after a squash; ``landed_into``, ``landed_strategy``, ``landed_by``,
``landed_at``) and the intent of a land in progress (``landing_commit``: the result the
target will move to, written before it moves; ``landing``: the rest of the intent), so
that ``orch doctor --fix`` completes or clears a land killed half-way. Every existing
attempt is unlanded: the new columns are empty.

Alembic revision 0011, after 0010 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0011", "0010"

_LAND = (
    ("landed_commit", sa.String(64)),
    ("landed_tip", sa.String(64)),
    ("landed_into", sa.String(255)),
    ("landed_strategy", sa.String(16)),
    ("landed_by", sa.String(255)),
    ("landed_at", sa.DateTime(timezone=True)),
    ("landing_commit", sa.String(64)),
    ("landing", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, kind in _LAND:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, _kind in reversed(_LAND):
            batch.drop_column(name)
