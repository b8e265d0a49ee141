"""Partial indexes on the attempts with a pull request and those with a land in progress,
so that a year of history does not slow every loop cycle and every doctor.

Each cycle of ``orch serve`` / ``orch loop`` reads the attempts whose pull request is open
(``pr_state = 'open'``) and ``orch doctor`` those with a land intent (``landing_commit IS
NOT NULL``); neither column was indexed, so both passed over every attempt ever made
(0.5 s and 0.3 s a call at a million ended attempts on SQLite). The indexes hold only the
rows where the column is set: the history, NULL there, costs them nothing.

Alembic revision 0017, after 0016 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0017", "0016"

_PARTIAL = {
    "ix_attempts_pr_state": "pr_state",
    "ix_attempts_landing": "landing_commit",
}


def upgrade() -> None:
    for name, column in _PARTIAL.items():
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "attempts", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="attempts")
