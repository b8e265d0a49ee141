"""The attempt store: the only package that imports SQLAlchemy and Alembic.

ORM rows never leave it; callers get frozen ``orch.models`` objects. Driver errors are
translated into typed ``StoreError``s at this edge (``engine.translate_errors``:
``StoreUnavailable``, ``StoreConflict``, ``AttemptIdTaken``). SQLite (embedded default)
and PostgreSQL run the same code.
"""

from __future__ import annotations

from orch.store.api import Store, open_store, store_revision, upgrade_store

__all__ = ["Store", "open_store", "store_revision", "upgrade_store"]
