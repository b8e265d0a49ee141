"""Which databases the attempt store runs on, and the URL SQLAlchemy is given for each.

SQLite is built in; PostgreSQL goes through psycopg 3, which only the ``[postgres]``
extra installs. ``postgres://`` and ``postgresql://`` (as most tools write them) mean
PostgreSQL through psycopg. Any other database, another PostgreSQL driver, or PostgreSQL
without psycopg is one ``StoreError`` line (exit 6) here, before SQLAlchemy would end in
a driver's ``ModuleNotFoundError``. Never opens a connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from orch.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Table

POSTGRES_EXTRA = "pip install 'orch-worktrees[postgres]'"
_POSTGRES_NAMES = ("postgres", "postgresql")
_SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")


def engine_url(url: str) -> str:
    """The URL to build the engine from; raise ``StoreError`` for a store orch cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # the engine's own error names what is wrong with it
    name = parsed.drivername
    if name in _SQLITE_DRIVERS:
        return url
    backend, _, driver = name.partition("+")
    if backend not in _POSTGRES_NAMES:
        raise StoreError(
            f"the store URL {_shown(parsed)} names the database {backend!r}, which orch does "
            "not support: use sqlite:///PATH or postgresql://…"
        )
    if driver not in ("", "psycopg"):
        raise StoreError(
            f"the store URL {_shown(parsed)} names the driver {driver!r}: orch speaks to "
            "PostgreSQL through psycopg 3 (write postgresql://…)"
        )
    _require_psycopg(parsed)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _require_psycopg(parsed: URL) -> None:
    try:
        import psycopg  # noqa: F401  (the engine imports it next: this costs nothing extra)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "psycopg":
            raise StoreError(f"psycopg cannot be loaded: {exc}") from exc
        raise StoreError(
            f"the store URL {_shown(parsed)} is PostgreSQL, whose driver is not installed: "
            f"{POSTGRES_EXTRA}"
        ) from exc
    except ImportError as exc:  # installed but broken (libpq missing, for one)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"psycopg cannot be loaded: {detail}") from exc


def _shown(parsed: URL) -> str:
    return parsed.render_as_string(hide_password=True)


def upsert(conn: Connection, table: Table) -> Any:
    """The INSERT of the connection's database that takes ``ON CONFLICT`` clauses, its
    dialect imported only now: SQLAlchemy's postgresql package imports asyncio and every
    PostgreSQL driver (about 50 ms), which a command on SQLite never needs."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
