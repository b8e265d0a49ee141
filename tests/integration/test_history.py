"""History does not slow the present, and ``orch db prune``/``stats`` (issue 22, points 1-2).

The plan test runs the everyday paths' real store calls on a store seeded with thousands of
ended, cleaned-up attempts (``tests/support/history``), records the SQL they send, and asks
the database how it would run each statement (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN``
on PostgreSQL, both after ``ANALYZE``): a statement that scans a whole table fails it. With
this many rows the PostgreSQL planner prefers an index wherever one fits, so a missing index
shows as a ``Seq Scan``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection

from orch.attempts import history
from orch.attempts.queries import listing
from orch.errors import InvalidInput
from orch.models import (
    CLEANED_UP,
    COUNT_CAP,
    HOLDS_WORKTREE,
    OCCUPIES_WORKTREE,
    State,
    WorkspaceStatus,
)
from orch.serve.snapshot import build_snapshot
from orch.store import Store, open_store
from orch.store.tables import attempt_events, attempt_runs, attempts, metadata
from tests.support.cli import RunCli, assert_failed_cleanly, json_out
from tests.support.history import history_id, seed
from tests.support.store import (
    BACKENDS,
    claimed,
    new_pg_database,
    own_repository,
    ready_attempt,
    settings,
    sqlite_url,
)

SEEDED = 6000  # ended attempts (48k events): a full scan is far dearer than any index
REPO = "/src/history"


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store of this module's own with ``SEEDED`` ended attempts, analysed."""
    home = tmp_path_factory.mktemp("history")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = sqlite_url(home / "orch.db")
        else:
            url = stack.enter_context(new_pg_database("orch_history"))
        store = open_store(url, home / "locks", auto_migrate=True)
        stack.callback(store.close)
        seed(store, SEEDED, REPO)
        # a few attempts that are not history: a queued one, a running one
        ready_attempt(store, REPO, "live")
        claimed(store, REPO, "running")
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        yield store


@contextlib.contextmanager
def recorded(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) ``store`` sends while the block runs."""
    sent: list[tuple[str, Any]] = []

    def before(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(store.engine, "before_cursor_execute", before)


# tables whose rows belong to live attempts only (a port lease is released when its attempt
# ends): they never grow with history, and a scan of a handful of rows is the best plan
BOUNDED = ("port_leases",)


def full_scans(store: Store, statement: str, parameters: Any) -> list[str]:
    """The plan lines of ``statement`` that read a whole table of the store."""
    if any(f"FROM {table} " in statement + " " for table in BOUNDED):
        return []
    with store.engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            if store.engine.dialect.name == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                lines = [str(row[-1]) for row in cursor.fetchall()]
                # "SCAN attempts" reads every row; "SCAN attempts USING INDEX ..." walks an
                # index in order (a page of the listing stops after its LIMIT)
                # (a recursive query's own rows, "SCAN repos", are no table of the store)
                return [
                    ln
                    for ln in lines
                    if ln.startswith("SCAN ")
                    and " USING " not in ln
                    and ln.split()[1] in metadata.tables
                    and not _newest_rows(statement, ln.split()[1])
                ]
            cursor.execute("EXPLAIN " + statement, parameters)
            lines = [str(row[0]) for row in cursor.fetchall()]
            return [ln for ln in lines if "Seq Scan" in ln]
        finally:
            cursor.close()


def _newest_rows(statement: str, table: str) -> bool:
    """``... FROM t ORDER BY t.id DESC LIMIT n`` and no filter: SQLite walks the table's own
    b-tree (its key) from the end and stops after n rows, which its plan calls a SCAN."""
    return f"FROM {table} ORDER BY {table}.id DESC LIMIT " in " ".join(statement.split())


def _hot_paths(store: Store) -> dict[str, Callable[[], object]]:
    """The store calls of every everyday path, as the use cases make them."""
    cleaned = [w for w in WorkspaceStatus if w not in CLEANED_UP]
    some = history_id(SEEDED // 2)
    cutoff = store.clock() - dt.timedelta(days=2)
    live = store.list_attempts(workspaces=OCCUPIES_WORKTREE)
    assert live, "the seeded store has live attempts"
    return {
        "list: a page": lambda: store.list_attempts(limit=101),
        "list: the page after": lambda: store.list_attempts(limit=101, before=store.get(some)),
        "list: by state": lambda: store.list_attempts(states=(State.RUNNING,), limit=101),
        "list: by task": lambda: store.list_attempts(task_key="history-7", limit=101),
        # a page as orch list and the dashboard read it, its "N more" a count up to the cap
        "list: a page and how many more": lambda: listing(store, limit=50),
        "list: the next page": lambda: listing(store, limit=50, before=some),
        "list: a page by state": lambda: listing(store, (State.FAILED,), limit=50),
        "list: a page by task": lambda: listing(store, task_key="history-7", limit=1),
        "show": lambda: (
            store.get(some),
            store.events(some),
            store.runs(some),
            store.messages(some),
            store.port_bundle(some),
        ),
        "wait": lambda: (store.get(live[0].id), store.get_many([live[0].id, some])),
        "work: escape watch": lambda: store.list_attempts(workspaces=HOLDS_WORKTREE),
        "work: reap": store.running_attempts,
        "loop: branches moved": lambda: store.list_attempts(workspaces=HOLDS_WORKTREE),
        "snapshot": lambda: (
            store.list_attempts(workspaces=cleaned),
            store.newest_attempt_numbers(a.task_key for a in live),
            store.attempts_with_event("escape_warning"),
            store.count_by_state(COUNT_CAP),
            store.count_tasks_by_state(COUNT_CAP),
        ),
        # the dashboard's queue (GET /api/tasks) and the change feed's look every 0.5 s
        "dashboard: tasks": lambda: store.queued_tasks(newest=50),
        "dashboard: change mark": store.change_mark,
        # every loop cycle watches the open pull requests, and doctor the lands in progress
        "loop: open pull requests": store.open_pull_requests,
        "doctor: lands in progress": store.landings_in_progress,
        "doctor": lambda: (
            store.list_attempts(workspaces=OCCUPIES_WORKTREE),
            store.branch_owner(REPO, f"orch/history-7-{history_id(21)}"),
            store.known_ids([some, "deadbeef"]),
            store.repositories(),
            store.attempts_using_worktree("/worktrees/none"),
        ),
        "cleanup --all-terminal": lambda: store.list_attempts(
            states=[s for s in State if s.terminal],
            workspaces=OCCUPIES_WORKTREE,
            ended_before=cutoff,
        ),
        # the already-clean count is all attempts (a plain COUNT, which is a pass over the
        # table on PostgreSQL by design: not checked here) less these
        "cleanup: live ones": lambda: store.count_attempts(states=[s for s in State if s.live]),
        "db prune": lambda: [
            store.prunable(cutoff, 200, w, s) for w in CLEANED_UP for s in State if s.terminal
        ],
    }


def test_every_hot_path_reads_through_an_index(seeded: Store) -> None:
    """No statement of an everyday path scans a whole table of a store full of history."""
    scanned = {}
    for name, call in _hot_paths(seeded).items():
        with recorded(seeded) as sent:
            call()
        assert sent, name
        for statement, parameters in sent:
            lines = full_scans(seeded, statement, parameters)
            if lines:
                scanned[name] = (" ".join(statement.split())[-160:], lines)
    assert scanned == {}, "\n".join(f"{k}: {v}" for k, v in scanned.items())


def test_a_full_scan_fails_the_plan_check(seeded: Store) -> None:
    """The check is not blind: a filter on a column without an index is a full scan."""
    with recorded(seeded) as sent, seeded.engine.connect() as conn:
        conn.execute(select(attempts.c.id).where(attempts.c.prompt == "x"))
    assert full_scans(seeded, *sent[0])


# -- counts that stop at the cap -----------------------------------------------------------


def test_counts_are_exact_below_the_cap_and_a_floor_past_it(seeded: Store) -> None:
    """The dashboard's counts per state and the listing's "N more" read at most
    ``COUNT_CAP + 1`` entries: the same number as an exact count below it, ``cap + 1``
    (shown as "1,000+") past it."""
    exact = {State(s): n for s, n in seeded.stats().states.items()}
    exact = {st: exact.get(st, 0) for st in State}
    assert exact[State.SUCCEEDED] > COUNT_CAP and exact[State.QUEUED] == 1
    assert seeded.count_by_state(COUNT_CAP) == {
        st: min(n, COUNT_CAP + 1) for st, n in exact.items()
    }
    assert seeded.count_by_state(SEEDED) == exact
    some, near_the_end = seeded.get(history_id(SEEDED // 2)), seeded.get(history_id(SEEDED - 30))
    for filters in (
        {},
        {"before": some},
        {"before": near_the_end},
        {"states": (State.FAILED,), "before": some},
        {"states": (State.FAILED,), "before": near_the_end},
        {"states": (State.RUNNING, State.QUEUED)},
        {"task_key": "history-7"},
    ):
        whole = seeded.count_attempts(**filters)
        bounded = seeded.count_attempts(**filters, at_most=COUNT_CAP)
        assert bounded == min(whole, COUNT_CAP + 1), filters


def test_the_listing_says_when_its_more_is_a_floor(seeded: Store) -> None:
    page = listing(seeded, limit=50)
    assert (page.more, page.more_capped) == (COUNT_CAP, True)
    assert page.to_dict()["more"] == COUNT_CAP and page.to_dict()["more_capped"] is True
    # 29 attempts are older than this one: the page shows 10, the count of the rest is exact
    tail = listing(seeded, limit=10, before=history_id(SEEDED - 30))
    assert [a.id for a in tail.attempts] == [history_id(n) for n in range(SEEDED - 29, SEEDED - 19)]
    assert (tail.more, tail.more_capped) == (19, False)
    assert "more_capped" not in tail.to_dict()


def test_the_snapshot_names_the_counts_that_stopped_at_the_cap(
    seeded: Store, isolated_env: Path
) -> None:
    snapshot = build_snapshot(seeded, settings(), seeded.clock())
    assert snapshot["counts"]["succeeded"] == COUNT_CAP
    assert snapshot["counts"]["queued"] == snapshot["counts"]["running"] == 1
    assert snapshot["counts"]["worker_gone"] == 0
    # 6,000 ended attempts: 3,600 succeeded, 1,500 failed, 600 cancelled, 300 timed out
    assert snapshot["counts_capped"] == ["succeeded", "failed"]
    # a finished task in the queue for each of the 2,000 task keys
    assert snapshot["queue"] == {**dict.fromkeys(snapshot["queue"], 0), "done": COUNT_CAP}
    assert snapshot["queue_capped"] == ["done"]


# -- orch db prune -----------------------------------------------------------------------------


@pytest.fixture
def small_history(store_url: str, isolated_env: Path) -> Iterator[tuple[Store, str]]:
    store = open_store(store_url, isolated_env / "locks", auto_migrate=True)
    try:
        with own_repository(store) as repo:
            seed(store, 300, repo, start=_free_start(store))
            yield store, repo
    finally:
        store.close()


def _free_start(store: Store) -> int:
    """Seeded ids of this test's own (the PostgreSQL database is shared by a worker's tests)."""
    with store.engine.connect() as conn:
        taken = conn.scalar(
            select(attempts.c.id)
            .where(attempts.c.id.like("h%"))
            .order_by(attempts.c.id.desc())
            .limit(1)
        )
    return int(taken[1:]) + 1 if taken else 0


def _ids(store: Store, repo: str) -> set[str]:
    return {a.id for a in store.list_attempts(repository=repo)}


def test_prune_removes_only_old_cleaned_attempts_and_their_rows(
    small_history: tuple[Store, str],
) -> None:
    store, repo = small_history
    live = ready_attempt(store, repo, "live")  # holds its worktree: never pruned
    before = _ids(store, repo)
    # seeded attempts ended 1 day + n minutes ago: those past 1 day and 200 minutes go
    age = dt.timedelta(days=1, minutes=200, seconds=30)
    dry = history.prune(store, age, dry_run=True, batch=40)
    assert _ids(store, repo) == before  # a dry run removes nothing
    done = history.prune(store, age, batch=40)
    assert done.attempts == dry.attempts == 99  # minutes 201..299
    assert done.rows == dry.rows
    assert done.rows["attempt_events"] == 8 * 99 and done.rows["attempt_runs"] == 99
    left = _ids(store, repo)
    assert live.id in left and len(left) == len(before) - 99
    gone = before - left
    with store.engine.connect() as conn:
        for table in (attempt_events, attempt_runs):
            assert (
                conn.scalar(select(table.c.id).where(table.c.attempt_id.in_(sorted(gone))).limit(1))
                is None
            )
    # the archives of pruned attempts are named, and only theirs
    assert len(done.archives) == sum(1 for i in gone if int(i[1:]) % 10 == 0)
    assert history.prune(store, age).attempts == 0  # again: nothing left to do


def test_a_large_prune_refreshes_the_planners_statistics_on_postgresql(
    small_history: tuple[Store, str],
) -> None:
    """A prune of at least ``analyze_after`` attempts ends with ``ANALYZE`` of the tables
    it pruned on PostgreSQL (``last_analyze``: set only by an explicit ANALYZE, never by
    autovacuum); a smaller one, and any on SQLite, analyzes nothing."""
    store, _repo = small_history
    postgres = not store.url.startswith("sqlite")

    def analyzed() -> dict[str, object]:
        if not postgres:
            with store.engine.connect() as conn:
                has_stats = conn.scalar(
                    text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
                )
            return {"sqlite_stat1": has_stats}
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, last_analyze FROM pg_stat_user_tables "
                    "WHERE relname IN ('attempts', 'attempt_events')"
                )
            )
            return {name: when for name, when in rows}

    before = analyzed()
    small = history.prune(store, dt.timedelta(days=1, minutes=250), analyze_after=1_000)
    assert small.attempts > 0 and analyzed() == before
    large = history.prune(store, dt.timedelta(days=1, minutes=200), analyze_after=10)
    assert large.attempts >= 10
    after = analyzed()
    if postgres:
        assert all(after[t] is not None and after[t] != before.get(t) for t in after), after
    else:
        assert after == before == {"sqlite_stat1": 0}


def test_prune_never_stalls_a_claim(small_history: tuple[Store, str]) -> None:
    """Between two batches the write lock is free: a worker claims while prune runs (if
    prune held one transaction, this claim would wait for the whole prune and fail)."""
    store, repo = small_history
    claims: list[str] = []
    errors: list[BaseException] = []

    def claim_now(batch: object) -> None:
        def worker() -> None:
            try:
                _attempt, lease = claimed(store, repo, f"claim-{len(claims)}")
                claims.append(lease.attempt.id)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()

    result = history.prune(store, dt.timedelta(hours=25), batch=25, on_batch=claim_now)
    assert errors == []
    # one claim after each batch (of 25, per workspace status)
    assert result.attempts > 100 and len(claims) >= result.attempts // 25
    assert all(store.get(i).state == State.RUNNING for i in claims)


def test_prune_refuses_a_period_that_is_not_one() -> None:
    for bad in ("0d", "-3d", "soon", "90", ""):
        with pytest.raises(InvalidInput):
            history.parse_older_than(bad)
    assert history.parse_older_than("90d") == dt.timedelta(days=90)


def test_db_prune_and_stats_on_the_command_line(
    small_history: tuple[Store, str], run_cli: RunCli
) -> None:
    del small_history  # 300 ended attempts in the store the CLI opens
    before = json_out(run_cli("db", "stats", "--json"))
    assert before["rows"]["attempts"] >= 300 and before["size_bytes"] > 0
    assert before["workspaces"]["archived"] >= 30

    dry = run_cli("db", "prune", "--older-than", "1d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1].startswith("would remove ")
    assert json_out(run_cli("db", "stats", "--json"))["rows"] == before["rows"]

    done = json_out(run_cli("db", "prune", "--older-than", "1d", "--json"))
    assert done["attempts"] >= 299 and done["dry_run"] is False
    # the archives stay on disk: named in the output, since the store forgets them
    assert len(done["archives"]) >= 29
    assert all(path.startswith("/orch/archive/") for path in done["archives"])
    after = json_out(run_cli("db", "stats", "--json"))
    assert after["rows"]["attempts"] == before["rows"]["attempts"] - done["attempts"]
    assert after["rows"]["attempt_events"] == (
        before["rows"]["attempt_events"] - done["rows"]["attempt_events"]
    )

    for bad in ("0d", "-5d", "soon"):
        line = assert_failed_cleanly(run_cli("db", "prune", "--older-than", bad), 2)
        assert "invalid age" in line
