"""Alembic environment: runs on the connection orch passes in (never its own URL)."""

from __future__ import annotations

from alembic import context

from orch.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("orch migrations run through 'orch db upgrade', not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
