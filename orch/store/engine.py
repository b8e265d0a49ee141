"""Engines for the attempt store, and the translation of driver errors.

SQLite runs in WAL mode with a busy timeout; every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent orch processes queue for the write lock at the
start instead of failing with "database is locked" on upgrade from a read lock.

PostgreSQL connections name themselves (``application_name``), and how a process holds
them is its ``Connecting``: a long-lived, mostly idle process (``orch work``) keeps no
connection between transactions, and behind a transaction-mode pooler (PgBouncer,
configured or detected) no statement is prepared on the server, since the next
transaction may run on another server connection that never saw it.
"""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
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
from sqlalchemy.pool import NullPool, QueuePool

from orch import private
from orch.errors import (
    AttemptIdTaken,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    describe_os_error,
)
from orch.outage import Patience, ride_out
from orch.record import record
from orch.store.dialects import engine_url
from orch.store.tables import metadata

SQLITE_BUSY_TIMEOUT_MS = 60_000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


SYNCHRONOUS_MODES = ("FULL", "NORMAL")


@record
class Connecting:
    """How a process connects to a PostgreSQL store (SQLite ignores all of it)."""

    # what pg_stat_activity shows ("orch work buildhost"); one named in the URL wins
    application_name: str | None = None
    # a transaction-mode pooler sits in front: True configured, False configured absent,
    # None found out at the first connection (the server's port is not the one dialled)
    pooler: bool | None = None
    # the server itself, for LISTEN (which a transaction-mode pooler cannot carry)
    listen_url: str | None = None
    # False: no connection is held between transactions (a worker idle for hours)
    hold_idle: bool = True
    # a connection the server cannot give now (full: "too many clients", starting,
    # unreachable) is asked for again for this long; None: the first refusal is the error
    connect_patience: Patience | None = None
    on_connect_retry: Callable[[StoreUnavailable, float], None] | None = None


# execution options of the engine (arbitrary keys are SQLAlchemy's documented extension
# point) through which the store reads how it was opened
POOLER_OPTION = "orch_pooler"
POOLER_FOUND_OPTION = "orch_pooler_found"
LISTEN_URL_OPTION = "orch_listen_url"
APPLICATION_NAME_OPTION = "orch_application_name"
_APPLICATION_NAME_MAX = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)


def make_engine(
    url: str, synchronous: str = "NORMAL", connecting: Connecting | None = None
) -> Engine:
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
        return _postgres_engine(url, connecting or Connecting())
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StoreError(f"cannot use the store URL {_redact(url)}: {exc}") from exc


def _postgres_engine(url: str, connecting: Connecting) -> Engine:
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    name = parsed.query.get("application_name") or connecting.application_name
    if name and "application_name" not in parsed.query:
        connect_args["application_name"] = str(name)[:_APPLICATION_NAME_MAX]
    if connecting.pooler:
        connect_args["prepare_threshold"] = None  # psycopg: never prepare on the server
    pooling: dict[str, Any] = (
        {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4}
        if connecting.hold_idle
        else {"poolclass": NullPool}
    )
    engine = create_engine(url, connect_args=connect_args, **pooling)
    engine.update_execution_options(
        **{
            POOLER_OPTION: connecting.pooler,
            LISTEN_URL_OPTION: connecting.listen_url,
            APPLICATION_NAME_OPTION: str(name)[:_APPLICATION_NAME_MAX] if name else None,
        }
    )
    if connecting.pooler is None:
        _detect_pooler(engine, parsed.port or 5432)
    if connecting.connect_patience is not None:
        _patient_connect(engine, url, connecting.connect_patience, connecting.on_connect_retry)
    return engine


# SQLSTATE classes of a server that may have room or be up again soon: 53 insufficient
# resources ("too many clients": 53300), 57P01..57P03 shutting down or starting up, 08
# connection exceptions.
_TRANSIENT_STATES = ("53", "57P01", "57P02", "57P03", "08")


# libpq reports a refusal at log-in as text, without its SQLSTATE: these say it is for good
_REFUSED_FOR_GOOD = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # the database or the role
    "permission denied",
    "authentication failed",
)


def _transient(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    if state is not None:
        return str(state).startswith(_TRANSIENT_STATES)
    return not any(words in str(exc) for words in _REFUSED_FOR_GOOD)


def _patient_connect(
    engine: Engine,
    url: str,
    patience: Patience,
    on_retry: Callable[[StoreUnavailable, float], None] | None,
) -> None:
    """Ask again for a connection the server could not give now, with the back-off of
    ``orch.outage``. Nothing ran on a connection that was never made, so asking again is
    always safe, in the middle of any store operation; a wrong password or database is
    still the error it is, at once."""
    import psycopg

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        def attempt() -> Any:
            try:
                return dialect.connect(*cargs, **cparams)
            except psycopg.OperationalError as exc:
                if not _transient(exc):
                    raise
                detail = " ".join(str(exc).split()) or repr(exc)  # libpq's lines, as one
                raise _Refused(f"attempt store {_redact(url)}: {detail}", exc) from exc

        try:
            return ride_out(attempt, patience, on_retry=on_retry)
        except _Refused as exc:
            raise exc.cause from None  # SQLAlchemy translates the driver's own error


class _Refused(StoreUnavailable):
    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


_SERVER_PORT = "SELECT inet_server_port()"


def _detect_pooler(engine: Engine, dialled: int) -> None:
    """Stop preparing statements on the server once a connection shows that something
    stands between orch and the server: the server listens on another port than the one
    dialled (PgBouncer on 6432 in front of 5432). Looked at on the first connection only
    (one round trip per process); a tunnel or a mapped port is taken for a pooler too,
    which costs only the prepared statements."""
    found: list[bool] = []

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        if not found:
            cur = dbapi_conn.cursor()
            try:
                cur.execute(_SERVER_PORT)
                row = cur.fetchone()
            finally:
                cur.close()
                dbapi_conn.rollback()
            port = row[0] if row else None  # None: a Unix socket, nothing in between
            found.append(port is not None and int(port) != dialled)
            engine.update_execution_options(**{POOLER_FOUND_OPTION: found[0]})
        if found[0]:
            dbapi_conn.prepare_threshold = None


def pooled(engine: Engine) -> bool:
    """Whether a transaction-mode pooler was configured, or found at the first connection,
    in front of the store (so that no statement is prepared on the server)."""
    options = engine.get_execution_options()
    return bool(options.get(POOLER_OPTION) or options.get(POOLER_FOUND_OPTION))


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
        _into_wal(cur)
        # WAL + NORMAL: a commit survives any crash of orch (kill -9) and is fsynced at
        # checkpoints; FULL also survives power loss at ~1 fsync per commit.
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("orch_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _into_wal(cur: Any) -> None:
    """Put the store in WAL mode (written in the file's header, so once per store).

    A new store is an empty file that many processes may open at once (16 dispatches into
    a new home). Switching an empty file to WAL writes its header, and SQLite does not wait
    for a switch that would deadlock with another process's switch: it answers "database
    is locked" at once, whatever the busy timeout. The loser looks again, briefly later,
    and finds the winner's WAL mode."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cur.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # "database is locked"
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.001, 0.02))


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
