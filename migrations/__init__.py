"""Alembic migrations of the attempt store (shipped in the wheel as ``orch.migrations``)."""
