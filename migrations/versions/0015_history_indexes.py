"""Indexes for the everyday paths, so that a year of ended attempts does not slow them.

Every query on a hot path reads through one of these instead of scanning the store:
``orch list`` pages newest first (``ix_attempts_listing``); the worker's escape watch, the
loop, the dashboard's snapshot, doctor and ``orch db prune`` read attempts by workspace
status and state, the ended ones by when they ended (``ix_attempts_workspace``: it also
counts cleanup's already-clean attempts without reading a row); doctor and cleanup
find an attempt by branch or worktree (``ix_attempts_branch``, ``ix_attempts_worktree``);
the snapshot counts events by kind (``ix_attempt_events_kind``). Nothing else changes.

Alembic revision 0015, after 0014 (2026-12-07).
"""

from alembic import op

revision, down_revision = "0015", "0014"

_INDEXES = (
    ("ix_attempts_listing", "attempts", ["created_at", "id"]),
    ("ix_attempts_workspace", "attempts", ["workspace_status", "state", "finished_at"]),
    ("ix_attempts_branch", "attempts", ["branch_name"]),
    ("ix_attempts_worktree", "attempts", ["worktree_path"]),
    ("ix_attempt_events_kind", "attempt_events", ["kind", "attempt_id"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
