"""The outbox's delivery bookkeeping: one row per event and sink that subscribes to it.

``attempt_events`` gets ``state``: the state the event moved its attempt into (older
events keep None; they are never delivered, since a sink only receives the events made
after its config file was last written). ``event_deliveries`` records each delivery of an
event to a sink: pending with its tries and next try, delivered once, or failed for good.
On PostgreSQL a statement trigger notifies ``orch_events`` when events are inserted (once
per transaction: PostgreSQL folds equal notifications, so a batch of events costs one),
so a deliverer or ``orch events --follow`` blocks on its socket instead of polling.

Alembic revision 0010, after 0009 (2026-12-07).
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0010", "0009"


def upgrade() -> None:
    with op.batch_alter_table("attempt_events") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=True))
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.Integer(),
            sa.ForeignKey("attempt_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "attempt_id",
            sa.String(16),
            sa.ForeignKey("attempts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sink", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", "sink", name="uq_event_delivery"),
    )
    op.create_index("ix_event_deliveries_due", "event_deliveries", ["sink", "state", "next_try_at"])
    op.create_index(
        "ix_event_deliveries_order", "event_deliveries", ["attempt_id", "sink", "event_id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION orch_notify_event() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('orch_events', '');
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER orch_events_notify
            AFTER INSERT ON attempt_events
            FOR EACH STATEMENT EXECUTE FUNCTION orch_notify_event()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS orch_events_notify ON attempt_events")
        op.execute("DROP FUNCTION IF EXISTS orch_notify_event()")
    op.drop_index("ix_event_deliveries_order", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_due", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    with op.batch_alter_table("attempt_events") as batch:
        batch.drop_column("state")
