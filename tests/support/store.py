"""Stores on both databases, clocks, and attempts made straight through the store.

A PostgreSQL database is made per test session (or per test that must own one) under a
unique name, so the tests are safe under xdist; nothing here drops a database it did not
create. Attempts made here skip git: their commits and paths are placeholders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orch.config import Settings, resolve
from orch.models import Attempt, Lease, NewAttempt, State, WorkerIdentity
from orch.system import processes

if TYPE_CHECKING:  # SQLAlchemy's import is most of a unit test run's start-up
    from orch.store import Store

PG_ADMIN_URL = os.environ.get(
    "ORCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BASE_COMMIT = "ba5e" + "0" * 36
# Earlier than anything another test writes, so that "the oldest queued attempt" is ours
# even in the PostgreSQL database that every test of one xdist worker shares.
START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)


# -- databases -----------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# the params of a fixture that gives a store on each backend (see backend_url)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# ... and PostgreSQL through the PgBouncer in transaction mode, for the tests of what a
# team runs through one: workers, claim races, waiting
POOLED = pytest.param("pgbouncer", marks=[pytest.mark.postgres, pytest.mark.pgbouncer])
ALSO_THROUGH_PGBOUNCER = pytest.mark.parametrize("store_url", [*BACKENDS, POOLED], indirect=True)


def backend_url(
    request: pytest.FixtureRequest,
    sqlite_path: Path,
    pg_fixture: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The store URL of the backend a fixture with ``params=BACKENDS`` is at: a SQLite file
    at ``sqlite_path``, or the PostgreSQL database the fixture ``pg_fixture`` gives (directly,
    or through the PgBouncer with ``pooler`` and ``listen_url`` set); also exported as
    ORCH_DATABASE_URL for the CLI."""
    if request.param == "sqlite":
        url = sqlite_url(sqlite_path)
    elif request.param == "pgbouncer":
        from tests.support.postgres import through_pgbouncer

        direct = request.getfixturevalue(pg_fixture)
        url = through_pgbouncer(direct)
        # as docs/team.md sets a team up: the pooler said, LISTEN on the server itself
        monkeypatch.setenv("ORCH_POOLER", "true")
        monkeypatch.setenv("ORCH_LISTEN_URL", direct)
    else:
        url = request.getfixturevalue(pg_fixture)
    monkeypatch.setenv("ORCH_DATABASE_URL", url)
    return url


def pg_unavailable(reason: str) -> None:
    """Skip (off CI) or fail (on CI) a test that needs a PostgreSQL server it cannot reach."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required on CI and unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason}); set ORCH_TEST_PG_URL or start a server")


@contextlib.contextmanager
def new_pg_database(prefix: str, server_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A new, empty database named ``<prefix>_<random>`` on ``server_url``'s server; its
    URL, and the database dropped afterwards. Skips (fails on CI) when unreachable."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - dev extra not installed
        pg_unavailable(f"psycopg not installed: {exc}")
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        pg_unavailable(str(exc).strip().splitlines()[0])
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_pg_store(url: str) -> None:
    """Empty every table of the store at ``url`` (its schema stays): the tests of one
    xdist worker share one PostgreSQL database, and a worker in one test must never find
    an attempt another test left queued."""
    from sqlalchemy import create_engine, text

    from orch.store.tables import metadata

    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@contextlib.contextmanager
def own_repository(
    store: Store, prefix: str = "/repos/", tolerate: tuple[type[Exception], ...] = ()
) -> Iterator[str]:
    """A repository string no other test uses; its live attempts are cancelled afterwards
    (the PostgreSQL database is shared by the tests of one xdist worker)."""
    name = f"{prefix}{uuid.uuid4().hex}"
    yield name
    for attempt in store.list_attempts(states=(State.QUEUED, State.RUNNING), repository=name):
        with contextlib.suppress(*tolerate):
            store.cancel(attempt.id, "test teardown", "teardown")


def settings(**changes: Any) -> Settings:
    """The settings the test's environment resolves to, with ``changes`` applied."""
    return dataclasses.replace(resolve(os.environ), **changes)


# -- clocks ----------------------------------------------------------------------------------


class StepClock:
    """A clock that moves only when told to; what the store must use for timestamps."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


class OffsetClock:
    """The real clock moved by ``offset`` seconds (to judge real leases from the future)."""

    def __init__(self, offset: float) -> None:
        self.offset = dt.timedelta(seconds=offset)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


# -- attempts and workers, straight through the store ---------------------------------------


def new_attempt(
    repository: str,
    task_key: str = "task",
    worker: str | None = None,
    attempt_id: str | None = None,
    worktree_path: str | None = None,
    prompt: str = "do it",
    base_commit: str = BASE_COMMIT,
) -> NewAttempt:
    attempt_id = attempt_id or secrets.token_hex(4)
    return NewAttempt(
        id=attempt_id,
        task_key=task_key,
        repository=repository,
        base_ref="HEAD",
        base_commit=base_commit,
        branch_name=f"orch/{task_key}-{attempt_id}",
        worktree_path=worktree_path or f"/worktrees/{task_key}-{attempt_id}",
        worker=worker,
        prompt=prompt,
    )


def ready_attempt(
    store: Store, repository: str, task_key: str = "task", worker: str | None = None, **kw: Any
) -> Attempt:
    """A queued attempt whose workspace is ready, as dispatch leaves it (no git needed)."""
    created = store.create_attempt(new_attempt(repository, task_key, worker, **kw), "dispatcher")
    return store.finish_provisioning(created.id, Path(f"/inbox/{created.id}.json"), "dispatcher")


def remote_worker(name: str) -> WorkerIdentity:
    """A worker on another host: only its lease tells whether it lives."""
    return WorkerIdentity(name=name, host="elsewhere.invalid")


def claimed(
    store: Store, repository: str, task_key: str = "task", worker: str = "w", ttl: float = 30.0
) -> tuple[Attempt, Lease]:
    """A ready attempt (as ``ready_attempt`` made it) and the lease that the remote worker
    ``worker`` took on it."""
    attempt = ready_attempt(store, repository, task_key)
    lease = store.claim(remote_worker(worker), ttl, worker, attempt.id)
    assert lease is not None
    return attempt, lease


def this_process(name: str) -> WorkerIdentity:
    pid = os.getpid()
    return WorkerIdentity(
        name=name, host=processes.hostname(), pid=pid, started_at=processes.start_time(pid)
    )


def dead_worker(store: Store, attempt_id: str, s: Settings, name: str = "w") -> Attempt:
    """Claim ``attempt_id`` for a real process (a worker called ``name``) that then exits:
    its worker is gone."""
    proc = subprocess.Popen(["sleep", "30"])
    worker = WorkerIdentity(
        name=name, host=s.host_name, pid=proc.pid, started_at=processes.start_time(proc.pid)
    )
    lease = store.claim(worker, 60.0, "test", attempt_id)
    assert lease is not None
    proc.kill()
    proc.wait()
    return lease.attempt
