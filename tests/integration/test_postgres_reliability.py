"""Reliability on PostgreSQL (issue 5, point 5): many claimants, dropped connections, a
lost answer to a commit, the notification connection killed under ``orch wait``, the
reaper racing a finish, and a real server restart.

Workers are separate Python processes that open the store themselves; the test kills
their server connections with ``pg_terminate_backend`` while they run. Every test uses
rows of its own (a repository string of its own) in the per-session database, so it is
safe under ``-n auto``; killing every backend of that database only touches this test's
processes, since the tests of one xdist worker run one after the other. What is asserted
is what the contracts promise, whatever the interleaving: each attempt claimed once
(again only after a ``released`` or ``worker_gone``), one terminal state per attempt, and
events that agree with what the processes saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from orch.attempts import lifecycle
from orch.errors import LeaseLost, NotClaimable, StoreError
from orch.models import State
from orch.store import Store, open_store, upgrade_store
from orch.store.changes import PostgresChangeWatcher
from tests.support.cli import ORCH_BIN
from tests.support.postgres import PROCESS_LIMIT, ROUTES, Cluster, Route, named, sql
from tests.support.postgres import route as make_route
from tests.support.processes import wait_for
from tests.support.store import (
    OffsetClock,
    claimed,
    empty_pg_store,
    own_repository,
    ready_attempt,
    remote_worker,
)

pytestmark = pytest.mark.postgres

# pg_terminate_backend in the select list: in the WHERE clause it may run before the
# other conditions, on this very connection.
TERMINATE_ALL = (
    "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def pg_url(pg_database_url: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    upgrade_store(pg_database_url, isolated_env / "locks")
    empty_pg_store(pg_database_url)
    monkeypatch.setenv("ORCH_DATABASE_URL", pg_database_url)
    return pg_database_url


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, pg_url: str) -> Route:
    """The test's database reached directly, then through the PgBouncer (the claim races
    and the waits: what a team runs through a pooler)."""
    return make_route(request.param, pg_url)


@pytest.fixture
def store_url(pg_url: str) -> str:
    """The URL the conftest's ``store`` opens: PostgreSQL only, here."""
    return pg_url


@pytest.fixture
def repository(store: Store) -> Iterator[str]:
    with own_repository(store, "/repos/reliability-", tolerate=(StoreError,)) as name:
        yield name


def terminate_all(url: str) -> list[str]:
    """Kill every other connection to the test's database; the application names killed."""
    return [name for name, terminated in sql(url, TERMINATE_ALL) if terminated]


def seed(store: Store, repository: str, count: int) -> list[str]:
    """``count`` queued attempts with a ready workspace, made through the store API."""
    return [ready_attempt(store, repository, f"t{i}").id for i in range(count)]


Events = dict[str, list[tuple[str, dict[str, Any]]]]


def events_of(url: str, ids: list[str]) -> Events:
    rows = sql(
        url,
        "SELECT attempt_id, kind, detail FROM attempt_events WHERE attempt_id = ANY(%s) "
        "ORDER BY id",
        (ids,),
    )
    found: Events = {i: [] for i in ids}
    for attempt_id, kind, detail in rows:
        found[attempt_id].append((kind, detail or {}))
    return found


def assert_claims_fenced(attempt_id: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Claimed only while nobody held it: first, or after a release or a lost worker."""
    free = True
    for kind, _ in events:
        if kind == "claimed":
            assert free, f"attempt {attempt_id} claimed while held: {[k for k, _ in events]}"
            free = False
        elif kind in ("released", "worker_gone", "reassigned"):
            free = True


def terminal_events(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    ends = ("finished", "worker_gone", "cancelled", "failed_before_claim", "provisioning_failed")
    return [kind for kind, _ in events if kind in ends]


# -- processes that start together ------------------------------------------------------------

# Shared prologue: open the store, say ready, wait for the go file.
PROLOGUE = """
import datetime as dt, json, os, sys, time
from pathlib import Path
from orch.errors import LeaseLost, NotClaimable, StoreError
from orch.models import State, WorkerIdentity
from orch.store import open_store
url, locks, ready, go = sys.argv[1:5]
args = sys.argv[5:]
store = open_store(url, Path(locks), clock=CLOCK)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
"""


def script(body: str, clock: str = "lambda: dt.datetime.now(dt.UTC)") -> str:
    return PROLOGUE.replace("CLOCK", clock) + body


class Team:
    """Processes that open the store, wait at a barrier, and print one JSON line."""

    def __init__(self, tmp_path: Path, locks: Path) -> None:
        self.dir = tmp_path / f"team-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir()
        self.go = self.dir / "go"
        self.locks = locks
        self.procs: list[subprocess.Popen[str]] = []

    def add(self, body: str, url: str, *args: str) -> None:
        i = len(self.procs)
        barrier = [str(self.dir / f"ready-{i}"), str(self.go)]
        out = (self.dir / f"{i}.out").open("w")
        err = (self.dir / f"{i}.err").open("w")
        with out, err:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", body, url, str(self.locks), *barrier, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    text=True,
                )
            )

    def start(self) -> None:
        """Release them together once every one is ready."""
        deadline = time.monotonic() + PROCESS_LIMIT
        while len(list(self.dir.glob("ready-*"))) < len(self.procs):
            early = [i for i, p in enumerate(self.procs) if p.poll() is not None]
            assert not early, f"a process ended before the barrier: {self.output(early[0])}"
            assert time.monotonic() < deadline, "the processes never got ready"
            time.sleep(0.01)
        self.go.touch()

    def results(self) -> list[dict[str, Any]]:
        for i, p in enumerate(self.procs):
            try:
                p.wait(PROCESS_LIMIT)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"process {i} still running: {self.output(i)}") from None
        found = []
        for i, p in enumerate(self.procs):
            out = (self.dir / f"{i}.out").read_text()
            assert p.returncode == 0 and out.strip(), self.output(i)
            found.append(json.loads(out))
        return found

    def output(self, i: int) -> str:
        out = (self.dir / f"{i}.out").read_text(errors="replace")
        err = (self.dir / f"{i}.err").read_text(errors="replace")
        return f"process {i} (exit {self.procs[i].poll()}):\nstdout:\n{out}\nstderr:\n{err}"

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def team(tmp_path: Path, isolated_env: Path) -> Iterator[Callable[[], Team]]:
    made: list[Team] = []

    def make() -> Team:
        made.append(Team(tmp_path, isolated_env / "locks"))
        return made[-1]

    yield make
    for t in made:
        t.kill()


# -- 1. sixteen claimants, a thousand attempts ---------------------------------------------------

CLAIMANTS = 16
RACED_ATTEMPTS = 1000

CLAIM_AND_FINISH = script(
    """
me = WorkerIdentity(name=args[0], host="reliability.invalid")
claims, errors = [], []
started = time.monotonic()
while True:
    try:
        lease = store.claim(me, 300.0, me.name)
    except Exception as exc:
        errors.append("claim: " + repr(exc))
        if len(errors) > 20:
            break
        continue
    if lease is None:
        break
    claims.append([lease.attempt.id, lease.token])
    try:
        store.finish(lease.attempt.id, lease.token, State.SUCCEEDED, me.name, 0, "done")
    except Exception as exc:
        errors.append("finish: " + repr(exc))
print(json.dumps({"claims": claims, "errors": errors, "elapsed": time.monotonic() - started}))
"""
)


@pytest.mark.slow
def test_sixteen_processes_claim_a_thousand_attempts_each_exactly_once(
    pg_url: str, route: Route, store: Store, repository: str, team: Callable[[], Team]
) -> None:
    mine = seed(store, repository, RACED_ATTEMPTS)
    prefix = f"claimant-{uuid.uuid4().hex[:6]}"
    racers = team()
    for i in range(CLAIMANTS):
        racers.add(CLAIM_AND_FINISH, route.url, f"{prefix}-{i}")
    racers.start()
    results = racers.results()

    assert [e for r in results for e in r["errors"]] == []
    ours = set(mine)
    claimed_by: dict[str, list[str]] = {}
    for i, r in enumerate(results):
        for attempt_id, token in r["claims"]:
            claimed_by.setdefault(attempt_id, []).append(f"{prefix}-{i}")
            if attempt_id in ours:
                assert token == 1, (attempt_id, token)
    # the processes' own records: every one of ours taken, by exactly one process
    assert {i: len(claimed_by.get(i, [])) for i in mine} == dict.fromkeys(mine, 1)
    # the store's records agree: one claimed event each, by the process that said so
    events = events_of(pg_url, mine)
    for attempt_id in mine:
        claims = [d for kind, d in events[attempt_id] if kind == "claimed"]
        assert [c["worker"] for c in claims] == claimed_by[attempt_id], attempt_id
        assert terminal_events(events[attempt_id]) == ["finished"], events[attempt_id]
    ended = store.get_many(mine)
    assert Counter(a.state for a in ended) == {State.SUCCEEDED: RACED_ATTEMPTS}
    # from the go to the last process done: what the claim race managed (-s shows it)
    took = max(r["elapsed"] for r in results)
    shares = sorted(len(r["claims"]) for r in results)
    print(
        f"\n{CLAIMANTS} processes: {RACED_ATTEMPTS} claim+finish in {took:.2f} s "
        f"({RACED_ATTEMPTS / took:.0f}/s); claims per process {shares[0]}..{shares[-1]}"
    )


BATCH_CLAIM_AND_FINISH = script(
    """
from orch.models import Finish
me = WorkerIdentity(name=args[0], host="reliability.invalid")
batch = int(args[1])
claims, errors = [], []
while True:
    leases = store.claim_many(me, 300.0, me.name, batch)
    if not leases:
        break
    claims.extend([lease.attempt.id, lease.token] for lease in leases)
    done = store.finish_many(
        [Finish(lease.attempt.id, lease.token, State.SUCCEEDED, 0, "done") for lease in leases],
        me.name,
    )
    errors.extend(repr(d) for d in done if not hasattr(d, "state"))
print(json.dumps({"claims": claims, "errors": errors}))
"""
)


def test_eight_processes_claiming_in_batches_take_each_attempt_exactly_once(
    pg_url: str, route: Route, store: Store, repository: str, team: Callable[[], Team]
) -> None:
    mine = seed(store, repository, 400)
    prefix = f"batcher-{uuid.uuid4().hex[:6]}"
    racers = team()
    for i in range(8):
        racers.add(BATCH_CLAIM_AND_FINISH, route.url, f"{prefix}-{i}", "16")
    racers.start()
    results = racers.results()

    assert [e for r in results for e in r["errors"]] == []
    taken = Counter(attempt_id for r in results for attempt_id, _token in r["claims"])
    assert {i: taken[i] for i in mine} == dict.fromkeys(mine, 1)
    events = events_of(pg_url, mine)
    for attempt_id in mine:
        assert [k for k, _d in events[attempt_id]].count("claimed") == 1
        assert terminal_events(events[attempt_id]) == ["finished"]
    assert Counter(a.state for a in store.get_many(mine)) == {State.SUCCEEDED: 400}


# -- 2. connections terminated while workers run ---------------------------------------------

# A well-behaved worker: a StoreError is a dropped connection, so the operation is tried
# again (bounded). A claim that failed may have committed before the answer was lost: the
# worker then takes back what the store says it holds (same worker name) instead of
# leaving it to expire. A finish tried again after its first try committed is accepted.
WORKER = script(
    """
me = WorkerIdentity(name=args[0], host="reliability.invalid")
pause = float(args[1])
ttl = 300.0
log = {"claimed": [], "adopted": [], "finished": [], "lease_lost": [], "store_errors": []}
known = set()

def again(what, op):
    for _ in range(1200):  # about a minute: the server may be restarting
        try:
            return op()
        except StoreError as exc:
            log["store_errors"].append(what + ": " + exc.message[-80:])
            time.sleep(0.05)
    raise SystemExit(what + ": the store never came back")

def work(attempt_id, token):
    known.add(attempt_id)
    for _ in range(2):
        time.sleep(pause)
        try:
            again("heartbeat", lambda: store.heartbeat(attempt_id, token, ttl))
        except LeaseLost as exc:
            log["lease_lost"].append([attempt_id, exc.message])
            return
    try:
        again("finish", lambda: store.finish(
            attempt_id, token, State.SUCCEEDED, me.name, 0, "done"))
    except LeaseLost as exc:
        log["lease_lost"].append([attempt_id, exc.message])
        return
    log["finished"].append(attempt_id)

while True:
    try:
        lease = store.claim(me, ttl, me.name)
    except StoreError as exc:
        log["store_errors"].append("claim: " + exc.message[-80:])
        mine = again("my leases", lambda: [
            a for a in store.running_attempts()
            if a.lease_holder == me.name and a.id not in known])
        for attempt in mine:
            log["adopted"].append(attempt.id)
            work(attempt.id, attempt.lease_token)
        continue
    if lease is None:
        break
    log["claimed"].append(lease.attempt.id)
    work(lease.attempt.id, lease.token)
print(json.dumps(log))
"""
)

WORKERS = 4
KILLED_ATTEMPTS = 300


def succeeded_count(url: str, repository: str) -> int:
    rows = sql(
        url,
        "SELECT count(*) FROM attempts WHERE repository = %s AND state = 'succeeded'",
        (repository,),
    )
    return int(rows[0][0])


def check_worked_once(url: str, store: Store, mine: list[str], logs: list[dict[str, Any]]) -> None:
    """Each attempt taken by one worker, finished by it, never lost, events agreeing.

    (The workers may also take attempts other tests left queued in the shared database.)"""
    taken = [i for log in logs for i in log["claimed"] + log["adopted"]]
    assert len(taken) == len(set(taken)), "an attempt was taken twice"
    assert set(mine) <= set(taken), "an attempt was never taken"
    assert set(mine) <= {i for log in logs for i in log["finished"]}
    # nobody took a lease away here, so no worker may have been told it lost one
    assert [x for log in logs for x in log["lease_lost"]] == []
    events = events_of(url, mine)
    for attempt_id in mine:
        assert_claims_fenced(attempt_id, events[attempt_id])
        assert terminal_events(events[attempt_id]) == ["finished"], events[attempt_id]
    assert Counter(a.state for a in store.get_many(mine)) == {State.SUCCEEDED: len(mine)}


@pytest.mark.slow
def test_workers_ride_out_terminated_connections(
    pg_url: str, store: Store, repository: str, team: Callable[[], Team]
) -> None:
    mine = seed(store, repository, KILLED_ATTEMPTS)
    tag = f"orch-rel-{uuid.uuid4().hex[:6]}"
    workers = team()
    for i in range(WORKERS):
        workers.add(WORKER, named(pg_url, f"{tag}-{i}"), f"{tag}-{i}", "0.005")
    workers.start()

    killed: list[list[str]] = []
    for milestone in (KILLED_ATTEMPTS // 4, KILLED_ATTEMPTS // 2):
        wait_for(
            lambda m=milestone: succeeded_count(pg_url, repository) >= m,
            f"{milestone} attempts to succeed",
            limit=PROCESS_LIMIT,
        )
        killed.append(terminate_all(pg_url))
    # then a burst, so that some kills land in the middle of a statement or a commit
    wait_for(
        lambda: succeeded_count(pg_url, repository) >= 3 * KILLED_ATTEMPTS // 4,
        "three quarters of the attempts to succeed",
        limit=PROCESS_LIMIT,
    )
    for _ in range(20):
        killed.append(terminate_all(pg_url))
        time.sleep(0.01)
    logs = workers.results()

    # the first kills came while every worker was still busy: each hit a worker's connection
    for names in killed[:2]:
        assert any(n.startswith(tag) for n in names), killed
    check_worked_once(pg_url, store, mine, logs)
    errors = [e for log in logs for e in log["store_errors"]]
    print(
        f"\nkilled {sum(len(k) for k in killed)} connections in {len(killed)} rounds; "
        f"workers saw {len(errors)} StoreErrors and retried "
        f"({Counter(e.split(':')[0] for e in errors)}), "
        f"took back {sum(len(log['adopted']) for log in logs)} claims whose answer was lost"
    )


# -- 2b. a commit whose answer never arrives ---------------------------------------------------

COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"  # the server's CommandComplete for COMMIT


class FlakyProxy:
    """A TCP proxy to the server that can lose the answer to a commit (``armed``: the
    connection is cut right after the server committed, before the client hears so) or
    be down (``down``: every connection is cut and new ones are refused)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.down = threading.Event()
        self.dropped = 0  # commit answers lost
        self.refused = 0  # connections refused while down
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                client.close()
                continue
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while not (self.stopping or self.down.is_set()):
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server and self.armed.is_set() and COMMIT_DONE in data:
                        self.armed.clear()
                        self.dropped += 1
                        return  # the answer to COMMIT is never delivered
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def url(self, url: str) -> str:
        proxied = make_url(url).set(host="127.0.0.1", port=self.port)
        proxied = proxied.update_query_dict({"sslmode": "disable"})
        return proxied.render_as_string(hide_password=False)

    def close(self) -> None:
        self.stopping = True
        self.listener.close()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FlakyProxy]:
    parsed = make_url(pg_url)
    proxy = FlakyProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    yield proxy
    proxy.close()


def test_a_finish_whose_commit_answer_was_lost_is_accepted_when_tried_again(
    pg_url: str, store: Store, repository: str, proxy: FlakyProxy, isolated_env: Path
) -> None:
    attempt = ready_attempt(store, repository)
    with open_store(proxy.url(pg_url), isolated_env / "locks") as worker:
        lease = worker.claim(remote_worker("w"), 300.0, "w", attempt.id)
        assert lease is not None
        proxy.armed.set()
        with pytest.raises(StoreError):
            worker.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done")
        assert proxy.dropped == 1
        committed = store.get(attempt.id)
        assert committed.state is State.SUCCEEDED  # the first try did commit
        # the worker cannot know that: it tries again, and the store says it is done
        again = worker.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done")
        assert again == committed
        # a different outcome is not the same finish: refused, the lease is spent
        with pytest.raises(LeaseLost, match="is succeeded"):
            worker.finish(attempt.id, lease.token, State.FAILED, "w", 1, "second thoughts")
    kinds = [e.kind for e in store.events(attempt.id)]
    assert kinds.count("finished") == 1
    assert store.get(attempt.id) == committed


def test_a_finish_tried_again_after_the_lease_was_taken_is_still_refused(
    pg_url: str, store: Store, repository: str, isolated_env: Path
) -> None:
    attempt, lease = claimed(store, repository, ttl=300.0)
    with open_store(pg_url, isolated_env / "locks", clock=OffsetClock(3600)) as later:
        assert attempt.id in [a.id for a in lifecycle.reap(later, "reaper")]
    with pytest.raises(LeaseLost, match="taken away"):
        store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done")
    assert store.get(attempt.id).state is State.WORKER_GONE


def test_a_claim_whose_commit_answer_was_lost_is_never_claimed_twice(
    pg_url: str, store: Store, repository: str, proxy: FlakyProxy, isolated_env: Path
) -> None:
    first, second = (ready_attempt(store, repository, f"t{i}") for i in range(2))
    me = remote_worker(f"w-{uuid.uuid4().hex[:6]}")
    with open_store(proxy.url(pg_url), isolated_env / "locks") as worker:
        proxy.armed.set()
        with pytest.raises(StoreError):
            worker.claim(me, 300.0, me.name, first.id)
        assert proxy.dropped == 1
        # it committed: the attempt is running, held by a worker that does not know it
        held = store.get(first.id)
        assert held.state is State.RUNNING and held.lease_holder == me.name
        # trying again cannot take it a second time
        with pytest.raises(NotClaimable, match="is running, not queued"):
            worker.claim(me, 300.0, me.name, first.id)
        again = worker.claim(me, 300.0, me.name)
        assert again is not None and again.attempt.id != first.id
        # the worker finds what it holds by its name, and can work and finish it
        found = [a for a in worker.running_attempts() if a.lease_holder == me.name]
        assert sorted(a.id for a in found) == sorted([first.id, again.attempt.id])
        worker.finish(first.id, held.lease_token, State.SUCCEEDED, me.name, 0, "adopted")
        worker.finish(again.attempt.id, again.token, State.SUCCEEDED, me.name, 0, "done")
    assert second.id == again.attempt.id or store.get(second.id).state is State.QUEUED
    for attempt_id in (first.id, again.attempt.id):
        kinds = [e.kind for e in store.events(attempt_id)]
        assert kinds.count("claimed") == 1 and kinds.count("finished") == 1, kinds


def test_an_unknown_claim_left_behind_ends_as_worker_gone_when_its_lease_expires(
    pg_url: str, store: Store, repository: str, proxy: FlakyProxy, isolated_env: Path
) -> None:
    attempt = ready_attempt(store, repository)
    with open_store(proxy.url(pg_url), isolated_env / "locks") as worker:
        proxy.armed.set()
        with pytest.raises(StoreError):
            worker.claim(remote_worker("w"), 60.0, "w", attempt.id)
    with open_store(pg_url, isolated_env / "locks", clock=OffsetClock(61)) as later:
        assert attempt.id in [a.id for a in lifecycle.reap(later, "reaper")]
    assert store.get(attempt.id).state is State.WORKER_GONE
    assert [e.kind for e in store.events(attempt.id)][-2:] == ["claimed", "worker_gone"]


# -- 3. the notification connection killed under wait -------------------------------------------


def listening_pids(url: str, application_name: str) -> list[int]:
    rows = sql(
        url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = %s AND query LIKE 'LISTEN %%'",
        (application_name,),
    )
    return [int(r[0]) for r in rows]


def terminate(url: str, pids: list[int]) -> None:
    assert pids
    sql(url, "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))


def running_attempt(store: Store, repository: str) -> tuple[str, int]:
    attempt, lease = claimed(store, repository, ttl=300.0)
    return attempt.id, lease.token


def test_wait_falls_back_to_polling_when_its_notification_connection_is_killed(
    pg_url: str, route: Route, store: Store, repository: str, isolated_env: Path
) -> None:
    attempt_id, token = running_attempt(store, repository)
    tag = f"orch-waiter-{uuid.uuid4().hex[:6]}"
    watchers: list[PostgresChangeWatcher] = []
    outcome: list[Any] = []
    waiter_route = route.named(tag)

    with open_store(
        waiter_route.url, isolated_env / "locks", connecting=waiter_route.connecting()
    ) as waiting:
        opener = waiting.change_watcher

        def watcher() -> Any:
            watchers.append(opener())  # type: ignore[arg-type]
            return watchers[-1]

        waiting.change_watcher = watcher  # type: ignore[method-assign]

        def waiter() -> None:
            try:
                outcome.append(lifecycle.wait(waiting, [attempt_id], 120.0, "waiter"))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        seen: set[int] = set()
        for kill in (1, 2):
            pids = wait_for(
                lambda: [p for p in listening_pids(pg_url, tag) if p not in seen],
                "the waiter to listen (again)",
            )
            seen.update(pids)
            terminate(pg_url, pids)
            wait_for(lambda k=kill: watchers[0].fallbacks >= k, "the waiter to notice")
        store.finish(attempt_id, token, State.SUCCEEDED, "w", 0, "done")
        thread.join(PROCESS_LIMIT)
        assert not thread.is_alive(), "wait never returned"

    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert not outcome[0].timed_out
    assert [a.state for a in outcome[0].attempts] == [State.SUCCEEDED]
    assert len(watchers) == 1 and watchers[0].fallbacks == 2


def test_orch_wait_returns_when_its_notification_connection_was_killed(
    pg_url: str, route: Route, store: Store, repository: str, tmp_path: Path
) -> None:
    attempt_id, token = running_attempt(store, repository)
    tag = f"orch-wait-{uuid.uuid4().hex[:6]}"
    out, err = tmp_path / "wait.out", tmp_path / "wait.err"
    with out.open("w") as o, err.open("w") as e:
        waiter = subprocess.Popen(
            [ORCH_BIN, "wait", attempt_id, "--timeout", "120", "--json"],
            stdout=o,
            stderr=e,
            env={**os.environ, **route.named(tag).env()},
        )
    try:
        seen: set[int] = set()
        for _ in range(2):
            pids = wait_for(
                lambda: [p for p in listening_pids(pg_url, tag) if p not in seen],
                "orch wait to listen (again)",
            )
            seen.update(pids)
            terminate(pg_url, pids)
        # it listens again: it neither died nor gave up on notifications
        wait_for(
            lambda: [p for p in listening_pids(pg_url, tag) if p not in seen],
            "orch wait to listen after the second kill",
        )
        store.finish(attempt_id, token, State.SUCCEEDED, "w", 0, "done")
        code = waiter.wait(PROCESS_LIMIT)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert code == 0, (out.read_text(), err.read_text())
    assert err.read_text() == ""
    waited = json.loads(out.read_text())
    assert [a["state"] for a in waited["attempts"]] == ["succeeded"]


def test_wait_rides_out_a_store_it_cannot_reach_for_a_while(
    pg_url: str, store: Store, repository: str, proxy: FlakyProxy, isolated_env: Path
) -> None:
    attempt_id, token = running_attempt(store, repository)
    tag = f"orch-outage-{uuid.uuid4().hex[:6]}"
    outcome: list[Any] = []
    with open_store(named(proxy.url(pg_url), tag), isolated_env / "locks") as waiting:

        def waiter() -> None:
            try:
                outcome.append(lifecycle.wait(waiting, [attempt_id], 120.0, "waiter"))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        wait_for(lambda: listening_pids(pg_url, tag), "the waiter to listen")
        proxy.down.set()  # every connection of the waiter cut, new ones refused
        wait_for(lambda: proxy.refused >= 3, "the waiter to look again (and fail)")
        store.finish(attempt_id, token, State.SUCCEEDED, "w", 0, "done")
        assert outcome == [], "wait gave up while the store was unreachable"
        proxy.down.clear()
        thread.join(PROCESS_LIMIT)
        assert not thread.is_alive(), "wait never returned"
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert [a.state for a in outcome[0].attempts] == [State.SUCCEEDED]


def test_a_change_made_while_the_watcher_was_not_listening_is_not_missed(
    pg_url: str, store: Store, repository: str
) -> None:
    attempt_id, token = running_attempt(store, repository)
    tag = f"orch-watch-{uuid.uuid4().hex[:6]}"
    watcher = PostgresChangeWatcher(named(pg_url, tag))
    try:
        terminate(pg_url, wait_for(lambda: listening_pids(pg_url, tag), "the watcher to listen"))
        assert watcher.wait(30.0) is True  # dropped: "something may have changed, look"
        assert watcher.fallbacks == 1
        # the caller looked, found nothing new; then this commits before it listens again
        store.finish(attempt_id, token, State.SUCCEEDED, "w", 0, "done")
        # the next wait must not sleep through that change (its notification went nowhere)
        assert watcher.wait(10.0) is True
    finally:
        watcher.close()


# -- 4. the reaper racing a finish -----------------------------------------------------------

ROUNDS = 200

# Claims attempt i with a clock an hour behind (so its lease has expired for everyone
# else), meets the reaper at the barrier of round i, then finishes it.
FINISHER = script(
    """
ids, rounds = args[0].split(","), Path(args[1])
me = WorkerIdentity(name="finisher", host="elsewhere.invalid")
said = {}
for i, attempt_id in enumerate(ids):
    lease = store.claim(me, 60.0, "finisher", attempt_id)
    (rounds / f"f{i}").touch()
    while not (rounds / f"r{i}").exists():
        time.sleep(0.0002)
    try:
        store.finish(attempt_id, lease.token, State.SUCCEEDED, "finisher", 0, "done")
        said[attempt_id] = "finished"
    except LeaseLost as exc:
        said[attempt_id] = "lease-lost: " + exc.message
print(json.dumps(said))
""",
    clock="lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)",
)

REAPER = script(
    """
from orch.attempts import lifecycle
count, rounds = int(args[0]), Path(args[1])
reaped = []
for i in range(count):
    (rounds / f"r{i}").touch()
    while not (rounds / f"f{i}").exists():
        time.sleep(0.0002)
    reaped.extend(a.id for a in lifecycle.reap(store, "reaper", host="reaper.invalid"))
print(json.dumps({"reaped": reaped}))
"""
)


@pytest.mark.slow
def test_the_reaper_racing_a_finish_never_overwrites_the_fresher_state(
    pg_url: str, store: Store, repository: str, team: Callable[[], Team], tmp_path: Path
) -> None:
    mine = seed(store, repository, ROUNDS)
    rounds = tmp_path / "rounds"
    rounds.mkdir()
    racers = team()
    racers.add(FINISHER, pg_url, ",".join(mine), str(rounds))
    racers.add(REAPER, pg_url, str(ROUNDS), str(rounds))
    racers.start()
    said, reaper = racers.results()

    reaped = set(reaper["reaped"])
    events = events_of(pg_url, mine)
    outcomes: Counter[str] = Counter()
    for attempt in store.get_many(mine):
        kinds = [kind for kind, _ in events[attempt.id]]
        assert terminal_events(events[attempt.id]) in (["finished"], ["worker_gone"]), kinds
        assert kinds.count("claimed") == 1, kinds
        if attempt.state is State.SUCCEEDED:
            assert said[attempt.id] == "finished" and attempt.id not in reaped
            assert kinds[-1] == "finished" and attempt.exit_code == 0
        else:
            assert attempt.state is State.WORKER_GONE, attempt
            assert said[attempt.id].startswith("lease-lost") and "taken away" in said[attempt.id]
            assert attempt.id in reaped
            assert attempt.reason is not None and attempt.reason.startswith("lease expired")
            assert attempt.exit_code is None and attempt.summary is None
        outcomes[str(attempt.state)] += 1
    ours = [i for i in reaper["reaped"] if i in set(mine)]
    assert len(ours) == len(set(ours)), "an attempt was ended twice"
    assert sum(outcomes.values()) == ROUNDS
    print(f"\nreaper vs finish, {ROUNDS} rounds: {dict(outcomes)}")


# -- 5. a real server restart -----------------------------------------------------------------


def test_the_change_watcher_listens_on_a_server_that_asks_for_a_password(
    cluster: Cluster, isolated_env: Path
) -> None:
    """The store's URL as printed hides the password; the watcher must not connect with
    that (it would fail to log in and fall back to polling, silently)."""
    url = cluster.start(password="s3cret-pw")
    upgrade_store(url, isolated_env / "locks")
    tag = f"orch-pw-{uuid.uuid4().hex[:6]}"
    with open_store(named(url, tag), isolated_env / "locks") as store:
        assert "s3cret-pw" not in store.url  # what messages show
        watcher = store.change_watcher()
        try:
            wait_for(lambda: listening_pids(url, tag), "the watcher to listen", limit=30)
            assert watcher.wait(0.1) is False  # listening: nothing changed, nothing to look at
        finally:
            watcher.close()


RESTART_WORKERS = 2
RESTART_ATTEMPTS = 120


@pytest.mark.slow
def test_workers_and_wait_ride_out_a_server_restart(
    cluster: Cluster, isolated_env: Path, team: Callable[[], Team]
) -> None:
    url = cluster.start()
    upgrade_store(url, isolated_env / "locks")
    repository = f"/repos/restart-{uuid.uuid4().hex}"
    with open_store(url, isolated_env / "locks") as store:
        mine = seed(store, repository, RESTART_ATTEMPTS)
        workers = team()
        for i in range(RESTART_WORKERS):
            workers.add(WORKER, url, f"restart-worker-{i}", "0.02")
        outcome: list[Any] = []

        def waiter() -> None:
            try:
                outcome.append(lifecycle.wait(store, mine, PROCESS_LIMIT, "waiter"))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=waiter, daemon=True)
        workers.start()
        thread.start()
        wait_for(
            lambda: succeeded_count(url, repository) >= RESTART_ATTEMPTS // 4,
            "a quarter of the attempts to succeed",
            limit=PROCESS_LIMIT,
        )
        cluster.pg_ctl("restart", "-m", "immediate")
        logs = workers.results()
        thread.join(PROCESS_LIMIT)
        assert not thread.is_alive(), "wait never returned"

        check_worked_once(url, store, mine, logs)
        # work was left when the server went down: the workers saw it go
        assert [e for log in logs for e in log["store_errors"]], "the restart went unnoticed"
        assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
        assert not outcome[0].timed_out
        assert {a.state for a in outcome[0].attempts} == {State.SUCCEEDED}


def test_orch_work_rides_out_a_store_it_cannot_reach_for_a_while(
    pg_url: str,
    store: Store,
    repository: str,
    proxy: FlakyProxy,
    isolated_env: Path,
    tmp_path: Path,
) -> None:
    """The worker runtime tries the store again (with backoff) instead of exiting, then
    works through what was queued meanwhile."""
    name = f"patient-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "ORCH_DATABASE_URL": named(proxy.url(pg_url), name)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orch",
            "work",
            "--worker",
            name,
            "--idle-poll",
            "0.1",
            "--",
            "true",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # polling: the store is open and the runtime's loop has looked for work
        wait_for(
            lambda: sql(
                pg_url,
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s",
                (name, "%UPDATE attempts%"),
            ),
            "the worker to look for work",
        )
        assert worker.poll() is None
        proxy.down.set()
        wait_for(lambda: proxy.refused >= 3, "the worker to look again (and fail)")
        assert worker.poll() is None, "orch work gave up while the store was unreachable"
        proxy.down.clear()
        worktrees = [tmp_path / f"wt{i}" for i in range(3)]
        ids = []
        for i, path in enumerate(worktrees):
            path.mkdir()
            ids.append(
                ready_attempt(store, repository, f"t{i}", worker=name, worktree_path=str(path)).id
            )
        wait_for(
            lambda: all(a.state == State.SUCCEEDED for a in store.get_many(ids)),
            "the worker to run what was queued",
        )
    except AssertionError as exc:
        worker.terminate()
        raise AssertionError(f"{exc}; the worker said: {worker.communicate()[1]}") from exc
    worker.terminate()
    _out, err = worker.communicate(timeout=PROCESS_LIMIT)
    assert worker.returncode == 0, err
    assert "trying again" in err
