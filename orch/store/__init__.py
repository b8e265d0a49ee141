"""The attempt store: the only package that imports SQLAlchemy and Alembic.

ORM rows never leave it; callers get frozen ``orch.models`` objects. Driver errors are
translated into typed ``StoreError``s at this edge (``engine.translate_errors``:
``StoreUnavailable``, ``StoreConflict``, ``AttemptIdTaken``). SQLite (embedded default)
and PostgreSQL run the same code.

The names below are loaded on first use, not when the package is imported: importing
``orch.store.glance`` (shell completion, standard library only) must not pay for
SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orch.store.api import Store, open_store, store_revision, upgrade_store
    from orch.store.engine import Connecting

__all__ = ["Connecting", "Store", "open_store", "store_revision", "upgrade_store"]


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from orch.store import api

    value = getattr(api, name)
    globals()[name] = value  # later lookups skip this function
    return value
