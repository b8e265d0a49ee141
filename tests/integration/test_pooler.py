"""Many workers on one PostgreSQL, and orch through PgBouncer (issue 22, point 3).

What a team that runs hundreds of workers sees: each connection names itself; an idle
``orch work`` holds no server connection and a running one at most one; a server that is
full ("too many clients") makes workers wait and go on, never exit or lose an attempt;
through PgBouncer in transaction mode no statement prepared on one server connection is
used on another, and ``orch wait`` listens on the server itself (``listen_url``).

Connections held are counted on the worker's side (``held_connections``): a closed one is
gone from the process at once, while the server may list its backend a moment longer.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from orch.errors import StoreError
from orch.models import State
from orch.outage import Patience
from orch.store import Connecting, Store, changes, open_store, upgrade_store
from orch.store.changes import SweepWatcher
from orch.store.engine import pooled
from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, RunCli
from tests.support.postgres import (
    Cluster,
    held_connections,
    named,
    sql,
    through_pgbouncer,
)
from tests.support.processes import Proc, Start, wait_for
from tests.support.store import POOLED, ready_attempt

pytestmark = pytest.mark.postgres
# the shared PostgreSQL database, directly (the conftest's store_url, upgraded and emptied)
DIRECT = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def queued(store: Store, repository: str, tmp_path: Path, count: int) -> list[str]:
    """``count`` attempts ready for any worker, each with a real (empty) worktree."""
    ids = []
    for i in range(count):
        worktree = tmp_path / f"wt-{uuid.uuid4().hex[:6]}"
        worktree.mkdir()
        ids.append(ready_attempt(store, repository, f"t{i}", worktree_path=str(worktree)).id)
    return ids


def port_of(url: str) -> int:
    return make_url(url).port or 5432


# -- names and connections held --------------------------------------------------------------


@DIRECT
def test_orch_wait_names_its_connection_after_the_command_and_host(
    store_url: str, store: Store, repository: str, start: Start
) -> None:
    attempt = ready_attempt(store, repository)
    host = f"host-{uuid.uuid4().hex[:6]}"
    waiter = start([ORCH_BIN, "wait", attempt.id, "--timeout", "120"], env={"ORCH_HOST_NAME": host})
    listening = wait_for(
        lambda: sql(
            store_url,
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = %s AND query LIKE 'LISTEN%%'",
            (f"orch wait {host}",),
        ),
        "orch wait to listen under its name",
    )
    assert len(listening) == 1
    store.cancel(attempt.id, "done waiting", "test")
    assert waiter.wait() == 14, waiter.output()  # it ended, and not as succeeded
    assert "Traceback" not in waiter.stderr


@DIRECT
def test_an_idle_worker_holds_no_connection_and_a_running_one_at_most_one(
    store_url: str, store: Store, repository: str, start: Start, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    agent = f'while [ ! -e "{go}" ]; do sleep 0.02; done'
    worker = start(
        [ORCH_BIN, "work", "--idle-poll", "0.1", "--", "sh", "-c", agent],
        # beats every 0.5 s while the agent runs
        env={"ORCH_LEASE_TTL": "1.5"},
    )
    (attempt_id,) = queued(store, repository, tmp_path, 1)
    wait_for(lambda: store.get(attempt_id).agent_pid is not None, "the agent to start")
    running = [held_connections(worker.pid, port_of(store_url)) for _ in range(300)]
    go.touch()
    wait_for(lambda: store.get(attempt_id).state is State.SUCCEEDED, "the attempt to succeed")
    idle = [held_connections(worker.pid, port_of(store_url)) for _ in range(300)]
    assert worker.popen.poll() is None, worker.output()

    assert max(running) <= 1, running
    assert max(idle) <= 1, idle  # one short transaction at a time: a look for work
    assert 0 in idle, "an idle worker kept a connection open between its looks for work"


# -- a server that is full -------------------------------------------------------------------


class Hog:
    """Connections taken from a server until it has none left for anyone else."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held: list[Any] = []

    def take(self) -> bool:
        """One more connection if the server gives one; False when it is full."""
        import psycopg

        try:
            self.held.append(psycopg.connect(self.url, autocommit=True, connect_timeout=5))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc) or "reserved" in str(exc), exc
            return False
        return True

    def fill(self) -> None:
        while self.take():
            pass

    def release(self) -> None:
        for conn in self.held:
            conn.close()
        self.held.clear()


def refusals(worker: Proc) -> int:
    return worker.stderr.count("too many clients")


def test_workers_wait_for_room_on_a_full_server_and_lose_nothing(
    cluster: Cluster, isolated_env: Path, start: Start, tmp_path: Path
) -> None:
    url = cluster.start(max_connections="8")
    upgrade_store(url, isolated_env / "locks")
    hog = Hog(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    repository = f"/repos/full-{uuid.uuid4().hex}"
    with open_store(url, isolated_env / "locks", connecting=Connecting(hold_idle=False)) as store:
        mine = queued(store, repository, tmp_path, 6)
    hog.fill()
    try:
        workers = [
            start(
                [ORCH_BIN, "work", "--idle-poll", "0.1", "--", "sh", "-c", "sleep 0.3"],
                env={"ORCH_DATABASE_URL": url},
            )
            for _ in range(3)
        ]
        # at start-up: each one is refused, says so, and waits instead of exiting
        for worker in workers:
            wait_for(lambda w=worker: refusals(w) >= 2, "a worker to be refused twice")
        assert [w.popen.poll() for w in workers] == [None] * 3
        hog.release()
        wait_for(
            lambda: sql(url, "SELECT count(*) FROM attempts WHERE state = 'running'")[0][0] > 0,
            "an agent to run",
        )
        # in the middle of the work: the server full again, for as long as it takes every
        # worker to be refused once more (a heartbeat, a run's start or end, a finish)
        before = [refusals(w) for w in workers]
        hog.fill()

        def refused_again() -> bool:
            hog.take()  # each connection a worker gives back is taken too
            return all(refusals(w) > b for w, b in zip(workers, before, strict=True))

        wait_for(refused_again, "every worker to be refused in the middle of its work")
        hog.release()
        wait_for(
            lambda: sql(
                url, "SELECT count(*) FROM attempts WHERE state = 'succeeded' AND repository = %s",
                (repository,),
            )[0][0] == len(mine),
            "every attempt to succeed",
            limit=120,
        )  # fmt: skip
    finally:
        hog.release()
    states = sql(url, "SELECT state, count(*) FROM attempts GROUP BY state")
    assert states == [("succeeded", len(mine))]
    kinds = sql(url, "SELECT kind FROM attempt_events WHERE kind IN ('worker_gone', 'released')")
    assert kinds == []
    for worker in workers:
        assert worker.popen.poll() is None, worker.output()
        worker.signal(15)
        assert worker.wait() == 0, worker.output()
        assert "Traceback" not in worker.stderr


# -- through PgBouncer -----------------------------------------------------------------------

REPEATS = 12  # psycopg prepares a statement on the server from its sixth execution


@pytest.mark.pgbouncer
@pytest.mark.parametrize(
    ("pooler", "prepares"),
    [(False, True), (True, False), (None, False)],
    ids=["said-absent", "configured", "found-out"],
)
@DIRECT
def test_no_statement_prepared_on_one_server_connection_is_run_on_another(
    store_url: str, store: Store, repository: str, isolated_env: Path, pooler: Any, prepares: bool
) -> None:
    """The failure the issue saw ("prepared statement "_pg3_1" does not exist"), made to
    happen: a statement prepared on the server connection another client then holds.
    Told there is no pooler, orch prepares and fails; configured, or found out at the
    first connection, it never prepares."""
    ids = [ready_attempt(store, repository, f"t{i}").id for i in range(3)]
    pooled_url = through_pgbouncer(store_url)
    with open_store(
        pooled_url, isolated_env / "locks", connecting=Connecting(pooler=pooler)
    ) as through:
        for _ in range(REPEATS):
            assert len(through.get_many(ids)) == 3
        assert pooled(through.engine) is not prepares
        import psycopg

        # PgBouncer hands the server connection last used to the next client: this one,
        # in a transaction, keeps it; orch's next statement runs on another
        with psycopg.connect(make_url(pooled_url).set(drivername="postgresql").render_as_string(
            hide_password=False), connect_timeout=5) as other:  # fmt: skip
            other.execute("SELECT 1")
            if prepares:
                with pytest.raises(StoreError, match=r"prepared statement .* does not exist"):
                    through.get_many(ids)
            else:
                for _ in range(REPEATS):
                    assert len(through.get_many(ids)) == 3


@pytest.mark.parametrize("store_url", [POOLED], indirect=True)
def test_dispatch_work_and_wait_through_the_pooler(
    store_url: str, repo: Path, run_cli: RunCli, start: Start, pg_database_url: str
) -> None:
    """Everything a team runs, through PgBouncer (``pooler``, ``listen_url`` set): no
    error of a statement prepared elsewhere, and ``orch wait`` listening on the server."""
    ids = [dispatch(run_cli, repo, f"pooled-{i}")["id"] for i in range(4)]
    host = f"pooled-{uuid.uuid4().hex[:6]}"
    waiter = start([ORCH_BIN, "wait", *ids, "--timeout", "300"], env={"ORCH_HOST_NAME": host})
    wait_for(
        lambda: sql(
            pg_database_url,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN%%'",
            (f"orch wait {host}",),
        ),
        "orch wait to listen on the server itself",
    )
    workers = [start([ORCH_BIN, "work", "--once", "--", "true"]) for _ in range(4)]
    for worker in workers:
        assert worker.wait(120) == 0, worker.output()
        assert "prepared statement" not in worker.stderr
    assert waiter.wait(120) == 0, waiter.output()
    assert waiter.stderr == ""
    listed = run_cli("list", "--json", cwd=repo)
    assert listed.exit_code == 0 and "prepared statement" not in listed.stderr


@DIRECT
def test_a_pooler_without_listen_url_is_said_once_and_waiting_sweeps(
    store_url: str,
    isolated_env: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(changes, "_said_no_listen", [])  # as in a process of its own
    told = Connecting(pooler=True)
    with caplog.at_level(logging.WARNING, logger="orch.store.changes"):
        for _ in range(2):
            with open_store(store_url, isolated_env / "locks", connecting=told) as store:
                watcher = store.change_watcher()
                assert isinstance(watcher, SweepWatcher)
                assert watcher.wait(0.0) is True  # the caller looks again
                watcher.close()
    said = [r.getMessage() for r in caplog.records if "listen_url" in r.getMessage()]
    assert len(said) == 1, said  # two watchers, one warning
    assert "LISTEN cannot work through it" in said[0]


@DIRECT
def test_the_watcher_listens_on_listen_url_when_one_is_set(
    store_url: str, isolated_env: Path
) -> None:
    tag = f"orch-listen-{uuid.uuid4().hex[:6]}"
    told = Connecting(pooler=True, listen_url=named(store_url, tag))
    with open_store(store_url, isolated_env / "locks", connecting=told) as store:
        watcher = store.change_watcher()
        try:
            wait_for(
                lambda: sql(
                    store_url,
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s "
                    "AND query LIKE 'LISTEN%%'",
                    (tag,),
                ),
                "the watcher to listen on listen_url",
            )
            assert watcher.wait(0.05) is False
        finally:
            watcher.close()


@DIRECT
def test_a_database_that_does_not_exist_is_an_error_at_once_even_for_a_patient_worker(
    store_url: str, isolated_env: Path
) -> None:
    retries: list[str] = []
    patient = Connecting(
        hold_idle=False,
        connect_patience=Patience(limit=600.0),
        on_connect_retry=lambda exc, _pause: retries.append(exc.message),
    )
    missing = make_url(store_url).set(database=f"orch_missing_{uuid.uuid4().hex[:6]}")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(
            missing.render_as_string(hide_password=False),
            isolated_env / "locks",
            connecting=patient,
        )
    assert retries == []
