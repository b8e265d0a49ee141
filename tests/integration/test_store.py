"""The attempt store's operations on both backends (issue 2, point 1).

Every test runs once on SQLite and once on PostgreSQL (``store_url``). The PostgreSQL
database is shared by every test of one xdist worker, so each test uses repository
strings, task keys and attempt ids of its own and filters what it reads by them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch.attempts.intent import record_intent
from orch.errors import (
    AmbiguousAttempt,
    AttemptIdTaken,
    AttemptNotFound,
    Conflict,
    InvalidInput,
)
from orch.models import NewAttempt, State, WorkerIdentity, WorkspaceStatus
from orch.store import Store, open_store, upgrade_store
from tests.support import store as store_support
from tests.support.processes import released_together, wait_for
from tests.support.store import StepClock

BASE_COMMIT = "c0ffee" + "0" * 34
START = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> StepClock:
    return StepClock(START)


@pytest.fixture
def store(store_url: str, isolated_env: Path, clock: StepClock) -> Iterator[Store]:
    with open_store(store_url, isolated_env / "locks", clock=clock) as opened:
        yield opened


@pytest.fixture
def repository() -> str:
    """A repository string no other test uses (the PostgreSQL database is shared)."""
    return f"/repos/{uuid.uuid4().hex}"


def new_attempt(
    repository: str,
    task_key: str = "add-retries",
    attempt_id: str | None = None,
    prompt: str = "Add retries",
) -> NewAttempt:
    return store_support.new_attempt(
        repository, task_key, attempt_id=attempt_id, prompt=prompt, base_commit=BASE_COMMIT
    )


def is_utc(value: dt.datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


# -- numbering -----------------------------------------------------------------------------


def test_attempts_are_numbered_per_repository_and_task(store: Store, repository: str) -> None:
    other_repository = repository + "-other"
    numbers = [store.create_attempt(new_attempt(repository), "t").attempt_number for _ in "abc"]
    assert numbers == [1, 2, 3]
    # another repository and another task of the same repository each start again at 1
    assert store.create_attempt(new_attempt(other_repository), "t").attempt_number == 1
    assert store.create_attempt(new_attempt(repository, "other-task"), "t").attempt_number == 1
    assert store.create_attempt(new_attempt(repository), "t").attempt_number == 4
    assert store.create_attempt(new_attempt(other_repository), "t").attempt_number == 2


def test_a_taken_attempt_id_is_refused_as_such_and_records_nothing(
    store: Store, repository: str
) -> None:
    """Ids are 32 random bits: a collision is told apart from a numbering race (which is
    retried) so that the caller can draw another id."""
    first = store.create_attempt(new_attempt(repository, "one"), "t")
    with pytest.raises(AttemptIdTaken, match=f"attempt id {first.id} is already taken"):
        store.create_attempt(new_attempt(repository, "two", attempt_id=first.id), "t")
    assert [a.task_key for a in store.list_attempts(repository=repository)] == ["one"]
    # drawn again, the same attempt is recorded under its new id and names
    fresh_id = secrets.token_hex(4)
    taken = iter([first.id, fresh_id])
    made = record_intent(
        store,
        new_attempt(repository, "two", attempt_id=first.id),
        "t",
        renamed=lambda a, fresh: new_attempt(repository, "two", attempt_id=next(taken, fresh)),
    )
    assert made.id == fresh_id and made.branch_name == f"orch/two-{fresh_id}"


def test_create_attempt_records_the_intent(store: Store, repository: str, clock: StepClock) -> None:
    new = new_attempt(repository, prompt="Add retries\nwith backoff")
    attempt = store.create_attempt(new, "alice@host pid 1")
    assert attempt.id == new.id
    assert attempt.state is State.QUEUED
    assert attempt.workspace_status is WorkspaceStatus.PROVISIONING
    assert (attempt.repository, attempt.task_key, attempt.prompt) == (
        repository,
        "add-retries",
        "Add retries\nwith backoff",
    )
    assert (attempt.base_ref, attempt.base_commit) == ("HEAD", BASE_COMMIT)
    assert (attempt.branch_name, attempt.worktree_path) == (new.branch_name, new.worktree_path)
    assert attempt.payload_path is None and attempt.reason is None
    assert store.get(new.id) == attempt


# Opens the store, announces itself, waits for the go file, then numbers one attempt.
CREATE_AT_BARRIER = """
import json, os, sys, time
from pathlib import Path
from orch.models import NewAttempt
from orch.store import open_store
url, locks, repository, go, ready, attempt_id = sys.argv[1:]
with open_store(url, Path(locks)) as store:
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    new = NewAttempt(id=attempt_id, task_key="raced", repository=repository, base_ref="HEAD",
                     base_commit="0" * 40, branch_name="orch/raced-" + attempt_id,
                     worktree_path="/w/" + attempt_id, worker=None, prompt="")
    try:
        number = store.create_attempt(new, "racer").attempt_number
    except Exception as exc:
        print(json.dumps({"error": repr(exc)}))
        sys.exit(1)
    print(json.dumps({"number": number}))
"""
RACERS = 16


def test_concurrent_creates_number_each_attempt_once(
    store_url: str,
    store: Store,
    repository: str,
    tmp_path: Path,
    isolated_env: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Processes that number the same task at the same moment get 1..N, each once."""

    locks = str(isolated_env / "locks")

    def argv(i: int, ready: Path, go: Path) -> list[str]:
        args = [store_url, locks, repository, str(go), str(ready), secrets.token_hex(4)]
        return [sys.executable, "-c", CREATE_AT_BARRIER, *args]

    outputs = [(out, err) for _, out, err in released_together(RACERS, argv, tmp_path)]
    results = [json.loads(out) if out.strip() else {"error": err} for out, err in outputs]
    errors = [r["error"] for r in results if "error" in r]
    assert errors == []
    assert sorted(r["number"] for r in results) == list(range(1, RACERS + 1))
    numbers = [a.attempt_number for a in store.list_attempts(repository=repository)]
    assert numbers == list(range(RACERS, 0, -1))


# Opens a new SQLite store in each of ROUNDS directories, each at a barrier shared with the
# other racers: creating a store (its WAL header, then its schema) is raced ROUNDS times.
OPEN_NEW_STORES = """
import os, sys, time
from pathlib import Path
from orch.store import open_store
runs, me, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for r in range(rounds):
    (runs / f"ready-{r}-{me}").touch()
    while not (runs / f"go-{r}").exists():
        time.sleep(0.0005)
    try:
        open_store(f"sqlite:///{runs}/store-{r}.db", runs / f"locks-{r}").close()
    except Exception as exc:
        print(f"round {r}: {exc!r}")
"""


def test_processes_opening_a_new_sqlite_store_at_once_all_open_it(tmp_path: Path) -> None:
    """16 processes opening one new store at the same moment (dispatches into a new home)
    all open it. Switching the empty file to WAL once lost SQLite's deadlock check in about
    one round in seven: "database is locked" at once, whatever the busy timeout."""
    rounds, racers = 20, RACERS
    runs = tmp_path / "runs"
    runs.mkdir()
    script = [sys.executable, "-c", OPEN_NEW_STORES, str(runs)]
    procs = [
        subprocess.Popen([*script, str(i), str(rounds)], stdout=subprocess.PIPE, text=True)
        for i in range(racers)
    ]
    try:
        for r in range(rounds):
            wait_for(
                lambda r=r: (
                    len(list(runs.glob(f"ready-{r}-*"))) == racers
                    or any(p.poll() is not None for p in procs)
                ),
                f"every racer ready for round {r}",
                limit=120,
            )
            (runs / f"go-{r}").touch()
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0] * racers
    assert "".join(outputs) == ""


def test_a_store_on_sqlite_never_imports_the_postgresql_dialect(tmp_path: Path) -> None:
    """SQLAlchemy's postgresql package imports asyncio and every PostgreSQL driver (17 ms
    at every start here): a store on SQLite, opened, written and read, never needs it. A
    dialect keyword in the models (``postgresql_where``) once brought it back."""
    code = (
        "import sys; from pathlib import Path; from orch.store import open_store\n"
        f"s = open_store('sqlite:///{tmp_path}/store.db', Path('{tmp_path}/locks'))\n"
        "from orch.models import NewAttempt\n"
        "s.create_attempt(NewAttempt(id='a1', task_key='t', repository='/r', base_ref='HEAD',"
        " base_commit='0' * 40, branch_name='orch/t-1', worktree_path='/w/1', worker=None,"
        " prompt=''), 'test')\n"
        "s.record_event('a1', 'note', 'test'); s.list_attempts(); s.events('a1')\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))"
    )
    with open_store(f"sqlite:///{tmp_path}/store.db", tmp_path / "locks"):
        pass  # made and migrated here (alembic imports every dialect it knows)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- compare-and-set and events ------------------------------------------------------------


def test_finish_provisioning_is_compare_and_set(
    store: Store, repository: str, clock: StepClock, tmp_path: Path
) -> None:
    attempt = store.create_attempt(new_attempt(repository), "dispatcher")
    finished_at = clock.tick()
    ready = store.finish_provisioning(attempt.id, tmp_path / "p.json", "dispatcher")
    assert ready.workspace_status is WorkspaceStatus.READY
    assert ready.state is State.QUEUED
    assert ready.payload_path == str(tmp_path / "p.json")
    assert ready.updated_at == finished_at and ready.created_at == START
    events = store.events(attempt.id)

    clock.tick()
    with pytest.raises(Conflict):
        store.finish_provisioning(attempt.id, tmp_path / "other.json", "late")
    with pytest.raises(Conflict):
        store.fail_provisioning(attempt.id, "too late", "late")
    assert store.events(attempt.id) == events
    assert store.get(attempt.id) == ready


def test_fail_provisioning_is_compare_and_set(
    store: Store, repository: str, clock: StepClock, tmp_path: Path
) -> None:
    attempt = store.create_attempt(new_attempt(repository), "dispatcher")
    failed_at = clock.tick()
    failed = store.fail_provisioning(attempt.id, "git worktree add failed", "dispatcher")
    assert failed.state is State.FAILED
    assert failed.workspace_status is WorkspaceStatus.FAILED
    assert failed.reason == "git worktree add failed"
    assert failed.updated_at == failed_at
    events = store.events(attempt.id)

    with pytest.raises(Conflict):
        store.fail_provisioning(attempt.id, "again", "late")
    with pytest.raises(Conflict):
        store.finish_provisioning(attempt.id, tmp_path / "p.json", "late")
    assert store.events(attempt.id) == events
    assert store.get(attempt.id) == failed


def test_the_dispatcher_has_its_own_columns_and_leaves_with_provisioning(
    store: Store, repository: str, tmp_path: Path
) -> None:
    """While an attempt provisions, the dispatch process is in ``dispatcher_*``; the
    ``worker_*`` columns only ever name a lease holder."""
    me = WorkerIdentity(name="dispatch", host="here", pid=4242, started_at=1.5)
    for end in ("finish", "fail"):
        new = dataclasses.replace(new_attempt(repository, f"task-{end}"), dispatcher=me)
        created = store.create_attempt(new, "dispatcher")
        assert (created.dispatcher_host, created.dispatcher_pid) == ("here", 4242)
        assert created.dispatcher_started_at == 1.5 and created.provisioner == ("here", 4242)
        assert (created.worker_host, created.worker_pid, created.worker_started_at) == (
            None,
            None,
            None,
        )
        if end == "finish":
            after = store.finish_provisioning(created.id, tmp_path / "p.json", "dispatcher")
        else:
            after = store.fail_provisioning(created.id, "no", "dispatcher")
        assert (after.dispatcher_host, after.dispatcher_pid, after.provisioner) == (
            None,
            None,
            None,
        )


def test_a_fresh_workspace_becomes_its_tasks_as_it_is_made_ready(
    store: Store, repository: str, tmp_path: Path
) -> None:
    """finish_provisioning maps the task to the attempt (not to a copy of its branch and
    path); a workspace that is not the attempt's any more is no task's."""
    first = store.create_attempt(new_attempt(repository, "phased"), "dispatcher")
    assert store.task_workspace(repository, "phased") is None  # not ready yet
    store.finish_provisioning(first.id, tmp_path / "1.json", "dispatcher")
    mapped = store.task_workspace(repository, "phased")
    assert mapped is not None and mapped.attempt_id == first.id
    assert (mapped.branch_name, mapped.worktree_path) == (first.branch_name, first.worktree_path)
    # an attempt in the same place (a later phase) leaves the mapping to the first
    reused = store.create_attempt(
        dataclasses.replace(
            new_attempt(repository, "phased"),
            branch_name=first.branch_name,
            worktree_path=first.worktree_path,
        ),
        "dispatcher",
    )
    store.finish_provisioning(reused.id, tmp_path / "2.json", "d", WorkspaceStatus.REUSED)
    assert store.task_workspace(repository, "phased") == mapped
    # cleaned up (or returned to the pool): no task's workspace any more
    store.mark_workspace(
        [first.id, reused.id],
        (WorkspaceStatus.READY, WorkspaceStatus.REUSED),
        WorkspaceStatus.REMOVED,
        "cleanup",
    )
    assert store.task_workspace(repository, "phased") is None


def test_changing_an_unknown_attempt_is_a_conflict(store: Store, tmp_path: Path) -> None:
    missing = secrets.token_hex(4)
    with pytest.raises(Conflict):
        store.finish_provisioning(missing, tmp_path / "p.json", "x")
    with pytest.raises(Conflict):
        store.fail_provisioning(missing, "reason", "x")
    assert store.events(missing) == []


def test_every_change_appends_an_event(
    store: Store, repository: str, clock: StepClock, tmp_path: Path
) -> None:
    ok = store.create_attempt(new_attempt(repository, "ok"), "alice")
    bad = store.create_attempt(new_attempt(repository, "bad"), "bob")
    assert [(e.kind, e.actor) for e in store.events(ok.id)] == [("created", "alice")]
    created = store.events(ok.id)[0]
    assert created.attempt_id == ok.id and created.created_at == START
    assert created.detail["state"] == "queued"
    assert created.detail["workspace_status"] == "provisioning"
    assert created.detail["base_commit"] == BASE_COMMIT
    assert created.detail["branch_name"] == ok.branch_name

    t1 = clock.tick()
    store.finish_provisioning(ok.id, tmp_path / "ok.json", "carol")
    t2 = clock.tick()
    store.fail_provisioning(bad.id, "disk full", "dave")

    ok_events = store.events(ok.id)
    assert [(e.kind, e.actor, e.created_at) for e in ok_events] == [
        ("created", "alice", START),
        ("provisioned", "carol", t1),
    ]
    assert ok_events[1].detail["workspace_status"] == "ready"
    assert ok_events[1].detail["payload_path"] == str(tmp_path / "ok.json")
    bad_events = store.events(bad.id)
    assert [(e.kind, e.actor, e.created_at) for e in bad_events] == [
        ("created", "bob", START),
        ("provisioning_failed", "dave", t2),
    ]
    assert bad_events[1].detail["reason"] == "disk full"
    assert bad_events[1].detail["state"] == "failed"
    assert ok_events[0].id < ok_events[1].id


# -- reading -------------------------------------------------------------------------------


def test_get_by_id_by_unique_prefix_and_refusals(store: Store, repository: str) -> None:
    stem = secrets.token_hex(3)  # six hex digits no other test's ids start with
    first = store.create_attempt(new_attempt(repository, attempt_id=stem + "a1"), "t")
    second = store.create_attempt(new_attempt(repository, attempt_id=stem + "b2"), "t")

    assert store.get(first.id) == first
    assert store.get(second.id) == second
    assert store.get(stem + "a") == first
    assert store.get(stem + "b") == second
    with pytest.raises(AmbiguousAttempt, match=stem) as ambiguous:
        store.get(stem)
    # an ambiguous prefix names its candidates
    assert ambiguous.value.message == (
        f"attempt id prefix {stem!r} matches several attempts: "
        f"{first.id} ({first.task_key}), {second.id} ({second.task_key})"
    )
    with pytest.raises(AttemptNotFound):
        store.get(stem + "ff")
    with pytest.raises(AttemptNotFound):
        store.get("no-such-attempt")
    # too short to be taken as a prefix: said so (bad input), not "no such attempt"
    with pytest.raises(InvalidInput, match="too short: give at least 4 characters"):
        store.get(stem[:3])


def test_list_filters_by_state_and_task_newest_first(
    store: Store, repository: str, clock: StepClock, tmp_path: Path
) -> None:
    task = f"task-{uuid.uuid4().hex[:8]}"
    created = []
    for key in (task, "other", task, "other", task):
        created.append(store.create_attempt(new_attempt(repository, key), "t"))
        clock.tick()
    store.fail_provisioning(created[2].id, "broken", "t")
    store.finish_provisioning(created[3].id, tmp_path / "p.json", "t")

    def ids(
        states: tuple[State, ...] = (), task_key: str | None = None, limit: int | None = None
    ) -> list[str]:
        found = store.list_attempts(states, task_key, repository=repository, limit=limit)
        return [a.id for a in found]

    newest_first = [a.id for a in reversed(created)]
    assert ids() == newest_first
    assert ids(limit=2) == newest_first[:2]
    assert ids(task_key=task) == [created[4].id, created[2].id, created[0].id]
    assert [a.id for a in store.list_attempts(task_key=task)] == ids(task_key=task)
    assert ids(states=(State.FAILED,)) == [created[2].id]
    queued = [created[4].id, created[3].id, created[1].id, created[0].id]
    assert ids(states=(State.QUEUED,)) == queued
    assert ids(states=(State.QUEUED, State.FAILED)) == newest_first
    assert ids(states=(State.QUEUED,), task_key=task) == [created[4].id, created[0].id]
    assert ids(states=(State.RUNNING,)) == []
    assert store.list_attempts(repository=repository + "-nothing") == []


# -- time ----------------------------------------------------------------------------------


def test_timestamps_come_from_the_injected_clock_as_utc(
    store: Store, repository: str, clock: StepClock, tmp_path: Path
) -> None:
    attempt = store.create_attempt(new_attempt(repository), "t")
    later = clock.tick(3600)
    store.finish_provisioning(attempt.id, tmp_path / "p.json", "t")
    read = store.get(attempt.id)
    assert read.created_at == START and read.updated_at == later
    assert read.created_at.microsecond == START.microsecond
    listed = store.list_attempts(repository=repository)
    events = store.events(attempt.id)
    stamps = [read.created_at, read.updated_at, listed[0].created_at, listed[0].updated_at]
    stamps += [e.created_at for e in events]
    assert all(is_utc(s) for s in stamps), stamps
    assert [e.created_at for e in events] == [START, later]


def test_a_clock_outside_utc_keeps_its_instant(
    store_url: str, isolated_env: Path, repository: str, request: pytest.FixtureRequest
) -> None:
    kolkata = dt.timezone(dt.timedelta(hours=5, minutes=30))
    when = START.astimezone(kolkata)
    with open_store(store_url, isolated_env / "locks", clock=lambda: when) as store:
        attempt = store.create_attempt(new_attempt(repository), "t")
        read = store.get(attempt.id)
    assert read.created_at == START
    assert is_utc(read.created_at)


@pytest.mark.postgres
def test_postgres_datetimes_are_utc_whatever_the_server_time_zone(
    pg_database_url: str, isolated_env: Path, repository: str
) -> None:
    upgrade_store(pg_database_url, isolated_env / "locks")
    url = pg_database_url + "?options=-c%20timezone%3DAsia/Kolkata"
    with open_store(url, isolated_env / "locks", clock=lambda: START) as store:
        attempt = store.create_attempt(new_attempt(repository), "t")
        read = store.get(attempt.id)
        events = store.events(attempt.id)
    assert read.created_at == START  # the same instant either way
    assert is_utc(read.created_at), read.created_at
    assert is_utc(events[0].created_at), events[0].created_at
