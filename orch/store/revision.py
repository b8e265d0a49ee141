"""Which schema revision a store is at, and bringing it to the packaged head.

The normal path never imports Alembic: it reads ``alembic_version`` with one query and
compares it with ``HEAD``. Alembic is imported only to create or migrate a store, under a
lock so that two processes doing it at once do not collide.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from orch.errors import StoreBehind, StoreError, StoreTooNew
from orch.fslock import file_lock
from orch.store.engine import is_sqlite, translate_errors

# Every revision this orch knows, oldest first. A test keeps this equal to Alembic's history.
REVISIONS: tuple[str, ...] = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
    "0013",
    "0014",
    "0015",
    "0016",
    "0017",
    "0018",
)
HEAD = REVISIONS[-1]
_PG_MIGRATION_LOCK = 0x6F726368  # "orch": the advisory lock key for migrations


def migrations_dir() -> Path:
    spec = find_spec("orch.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("orch is installed without its migrations (orch.migrations)")
    return Path(next(iter(spec.submodule_search_locations)))


def current_revision(engine: Engine) -> str | None:
    with translate_errors(str(engine.url)), engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except DBAPIError:
            conn.rollback()
            if not inspect(conn).has_table("alembic_version"):
                return None
            # another process making the store created the table since the read failed
            # (16 dispatches at once into a new home): read it again
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return row[0] if row else None


def check(engine: Engine, url: str) -> str | None:
    """Return the store's revision if it is HEAD; raise if it is newer than this orch."""
    rev = current_revision(engine)
    if rev is not None and rev not in REVISIONS:
        raise StoreTooNew(
            f"the attempt store is at schema revision {rev}, which this orch ({HEAD}) does "
            "not know: it was written by a newer orch; upgrade orch"
        )
    return rev


def ensure_head(engine: Engine, url: str, lock_dir: Path, auto_migrate: bool) -> None:
    """Bring the store to HEAD, creating it on first use when ``auto_migrate``."""
    rev = check(engine, url)
    if rev == HEAD:
        return
    if not auto_migrate:
        raise StoreBehind(
            f"the attempt store is at revision {rev or 'none'}, orch needs {HEAD}: "
            "run 'orch db upgrade'"
        )
    upgrade(engine, url, lock_dir)


def upgrade(engine: Engine, url: str, lock_dir: Path) -> str:
    """Migrate to HEAD under a lock; safe when several processes do it at once."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with translate_errors(url):
        if is_sqlite(url):
            with file_lock(lock_dir / "store-migrate.lock", 300, "store migration"):
                if check(engine, url) != HEAD:
                    # BEGIN IMMEDIATE: alembic reads before it writes, and a read lock
                    # that must become a write lock is where SQLite gives up at once
                    with engine.execution_options(orch_write=True).begin() as conn:
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
        else:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    return check(engine, url) or "none"
