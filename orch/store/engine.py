"""Engines for the attempt store, and the translation of driver errors.

SQLite runs in WAL mode with a busy timeout; every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent orch processes queue for the write lock at the
start instead of failing with "database is locked" on upgrade from a read lock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, PrimaryKeyConstraint, UniqueConstraint, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool

from orch import private
from orch.errors import (
    AttemptIdTaken,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    describe_os_error,
)
from orch.store.dialects import engine_url
from orch.store.tables import metadata

SQLITE_BUSY_TIMEOUT_MS = 60_000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


SYNCHRONOUS_MODES = ("FULL", "NORMAL")


def make_engine(url: str, synchronous: str = "NORMAL") -> Engine:
    url = engine_url(url)  # a database or driver orch cannot use: one line, exit 6
    try:
        if is_sqlite(url):
            path = sqlite_path(url)
            if path is not None:
                try:
                    _private_files(path)
                except OSError as exc:
                    raise StoreError(
                        f"cannot open the attempt store {path}: {describe_os_error(exc)}"
                    ) from exc
            engine = create_engine(
                url,
                poolclass=QueuePool,
                pool_size=2,
                max_overflow=8,
                connect_args={
                    "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                    "check_same_thread": False,
                },
            )
            _configure_sqlite(engine, synchronous)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StoreError(f"cannot use the store URL {_redact(url)}: {exc}") from exc


def _private_files(path: Path) -> None:
    """The store file is made 0600 before SQLite opens it (SQLite gives its -wal and -shm
    the store file's mode); files an older orch made 0644 are fixed."""
    private.make_dir(path.parent, fix_existing=False)
    # never open an existing store file here: closing any descriptor of it would drop the
    # POSIX locks of every SQLite connection to it in this process
    private.create_empty(path)  # an empty file is an empty SQLite database
    for suffix in ("", "-wal", "-shm"):
        private.fix(path.with_name(path.name + suffix))


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous not in SYNCHRONOUS_MODES:
        raise StoreError(f"sqlite_synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (the driver's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit survives any crash of orch (kill -9) and is fsynced at
        # checkpoints; FULL also survives power loss at ~1 fsync per commit.
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("orch_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver errors into one-line ``StoreError``s; bugs in orch keep their traceback.

    The kind is decided here, once, so that callers catch types and never look at the
    driver's exception: a broken uniqueness rule is ``StoreConflict`` (``AttemptIdTaken``
    for the attempts' primary key), a store that cannot be reached now is
    ``StoreUnavailable``; anything else stays a plain ``StoreError``."""
    try:
        yield
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        message = f"attempt store {_redact(url)}: {detail}"
        if isinstance(exc, IntegrityError):
            constraint = _constraint_name(exc)
            kind = AttemptIdTaken if constraint == ATTEMPT_ID_CONSTRAINT else StoreConflict
            raise kind(message, constraint) from exc
        # OperationalError: the server went away, refused or ended the connection (psycopg),
        # or the database is locked or cannot be opened (sqlite3); InterfaceError: the
        # connection was already closed
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            raise StoreUnavailable(message) from exc
        raise StoreError(message) from exc
    except PoolTimeout as exc:
        raise StoreUnavailable(
            f"attempt store {_redact(url)}: every connection of the pool is busy"
        ) from exc


def _unique_rules() -> dict[tuple[str, frozenset[str]], str]:
    """(table, its columns) -> the name PostgreSQL gives that uniqueness rule."""
    rules: dict[tuple[str, frozenset[str]], str] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if not isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
                continue
            columns = frozenset(c.name for c in constraint.columns)
            if isinstance(constraint, PrimaryKeyConstraint):
                default = f"{table.name}_pkey"
            else:
                default = f"{table.name}_{'_'.join(sorted(columns))}_key"
            rules[table.name, columns] = str(constraint.name or default)
        for column in table.columns:
            if column.unique:
                rules[table.name, frozenset({column.name})] = f"{table.name}_{column.name}_key"
    return rules


_UNIQUE_RULES = _unique_rules()
ATTEMPT_ID_CONSTRAINT = _UNIQUE_RULES["attempts", frozenset({"id"})]
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def _constraint_name(exc: IntegrityError) -> str | None:
    """The broken rule's name: PostgreSQL says it; SQLite names the columns instead."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if name:
        return str(name)
    found = _SQLITE_UNIQUE.search(str(exc.orig))
    if found is None:
        return None
    qualified = [part.strip().split(".", 1) for part in found.group(1).split(",")]
    if any(len(part) != 2 for part in qualified):
        return None
    tables = {table for table, _ in qualified}
    columns = frozenset(column for _, column in qualified)
    return _UNIQUE_RULES.get((tables.pop(), columns)) if len(tables) == 1 else None
