"""Notify listeners when an attempt's state or workspace changes (PostgreSQL only).

``orch wait`` on PostgreSQL LISTENs on the ``orch_attempts`` channel instead of polling.
Heartbeats do not set these columns, so they do not wake anyone.

Alembic revision 0002, after 0001 (2026-11-21).
"""

from alembic import op

revision, down_revision = "0002", "0001"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION orch_notify_attempt() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('orch_attempts', NEW.id);
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER orch_attempts_notify
        AFTER INSERT OR UPDATE OF state, workspace_status ON attempts
        FOR EACH ROW EXECUTE FUNCTION orch_notify_attempt()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS orch_attempts_notify ON attempts")
    op.execute("DROP FUNCTION IF EXISTS orch_notify_attempt()")
