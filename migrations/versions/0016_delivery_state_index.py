"""An index on the event deliveries by state, so that a year of delivered ones does not
slow the dashboard.

The dashboard's change feed counts the deliveries that failed for good every 0.5 s, and
its "needs attention" list reads them (as ``orch events --failed``); no index led with
the state (``ix_event_deliveries_due`` leads with the sink), so both passed over every
delivery, one per event per sink. ``ix_event_deliveries_state (state, event_id)`` reads
the failed ones alone, in the order they are listed. Nothing else changes.

Alembic revision 0016, after 0015 (2026-12-07).
"""

from alembic import op

revision, down_revision = "0016", "0015"


def upgrade() -> None:
    op.create_index("ix_event_deliveries_state", "event_deliveries", ["state", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_state", table_name="event_deliveries")
