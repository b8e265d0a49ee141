"""The store's schema: migrations, revisions, and stores orch must refuse (issue 2, point 4).

Stores here are made fresh for each test (a new SQLite file, or a new PostgreSQL database
created and dropped by the test), because several tests stamp or break them on purpose.
The CLI runs through the installed ``orch`` entry point, so "no traceback" is checked on
what a user would really see.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from orch.errors import Conflict, StoreBehind, StoreTooNew
from orch.models import Landed, LandQueueState, TaskState, Usage
from orch.store import open_store, upgrade_store
from orch.store.revision import HEAD, REVISIONS, migrations_dir
from orch.store.tables import PARTIAL, metadata
from tests.support.cli import error_line
from tests.support.repos import git
from tests.support.store import BACKENDS, backend_url, new_pg_database

RunOrch = Callable[..., subprocess.CompletedProcess[str]]
NEWER = "9999"


def assert_nothing_dispatched(repo: Path, orch_home: Path) -> None:
    assert git("for-each-ref", "refs/heads/orch/", cwd=repo).splitlines() == []
    listed = git("worktree", "list", "--porcelain", cwd=repo).splitlines()
    assert [ln for ln in listed if ln.startswith("worktree ")] == [f"worktree {repo}"]
    inbox = orch_home / "inbox"
    assert not inbox.exists() or list(inbox.iterdir()) == []


@pytest.fixture
def fresh_pg_url(pg_database_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own, dropped afterwards."""
    # any existing database will do for CREATE/DROP DATABASE; use the session's own
    with new_pg_database("orch_schema", pg_database_url) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store URL with nothing behind it yet; also exported as ORCH_DATABASE_URL."""
    return backend_url(request, tmp_path / "fresh-store" / "orch.db", "fresh_pg_url", monkeypatch)


def execute(url: str, statement: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def schema_diff(url: str, metadata: MetaData) -> list[object]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


# -- the migrations produce the models ------------------------------------------------------


def test_migrations_produce_exactly_the_models_schema(empty_store_url: str, tmp_path: Path) -> None:
    assert upgrade_store(empty_store_url, tmp_path / "locks") == HEAD
    assert schema_diff(empty_store_url, metadata) == []


def test_the_partial_indexes_are_partial_with_the_models_predicate(
    empty_store_url: str, tmp_path: Path
) -> None:
    """The comparison above does not look at an index's predicate, and the models keep it
    in the index's ``info`` (see ``tables._partial``): the store's own definition of each
    partial index says exactly that predicate."""
    upgrade_store(empty_store_url, tmp_path / "locks")
    partial = {
        index.name: index.info[PARTIAL]
        for table in metadata.tables.values()
        for index in table.indexes
        if PARTIAL in index.info
    }
    assert set(partial) == {"ix_attempts_pr_state", "ix_attempts_landing"}
    found = {}
    engine = create_engine(empty_store_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for name in partial:
                if engine.dialect.name == "sqlite":
                    sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
                else:
                    sql = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
                found[name] = conn.scalar(text(sql), {"n": name})
    finally:
        engine.dispose()
    for name, where in partial.items():
        predicate = found[name].partition(" WHERE ")[2]
        assert predicate.strip("() ").replace("(", "").replace(")", "") == where, found[name]


def test_the_schema_comparison_sees_a_drift(empty_store_url: str, tmp_path: Path) -> None:
    """Guards the test above: a model the migrations do not produce is reported."""
    upgrade_store(empty_store_url, tmp_path / "locks")
    drifted = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["attempts"].append_column(Column("not_migrated", Integer, nullable=True))
    diff = schema_diff(empty_store_url, drifted)
    assert [(d[0], d[3].name) for d in diff if isinstance(d, tuple)] == [
        ("add_column", "not_migrated")
    ]


def test_known_revisions_are_alembic_history() -> None:
    script = ScriptDirectory(str(migrations_dir()))
    history = [rev.revision for rev in script.walk_revisions()]
    assert tuple(reversed(history)) == REVISIONS
    assert script.get_heads() == [HEAD]
    assert REVISIONS[-1] == HEAD


def test_migrations_are_the_packaged_ones() -> None:
    import orch.migrations

    location = migrations_dir()
    assert location == Path(next(iter(orch.migrations.__path__)))
    assert (location / "env.py").is_file()
    assert (location / "script.py.mako").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()


# -- orch db current / upgrade -------------------------------------------------------------


def test_db_current_and_upgrade_on_a_fresh_store(empty_store_url: str, run_orch: RunOrch) -> None:
    fresh = run_orch("db", "current")
    assert (fresh.returncode, fresh.stderr) == (0, "")
    assert (
        fresh.stdout
        == f"store revision none, orch head {HEAD}: empty: 'orch db upgrade' creates it\n"
    )

    upgraded = run_orch("db", "upgrade")
    assert (upgraded.returncode, upgraded.stderr) == (0, "")
    assert upgraded.stdout == f"store at revision {HEAD} (head)\n"

    current = run_orch("db", "current")
    assert (current.returncode, current.stderr) == (0, "")
    assert current.stdout == f"store revision {HEAD}, orch head {HEAD}: up to date\n"

    again = run_orch("db", "upgrade")  # an up-to-date store: nothing to do, same answer
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == f"store at revision {HEAD} (head)\n"
    assert schema_diff(empty_store_url, metadata) == []


# -- a store from a newer orch -------------------------------------------------------------


def newer_store(url: str, lock_dir: Path) -> None:
    upgrade_store(url, lock_dir)
    execute(url, f"UPDATE alembic_version SET version_num = '{NEWER}'")


def test_a_store_from_a_newer_orch_is_refused(
    empty_store_url: str, tmp_path: Path, run_orch: RunOrch, repo: Path, isolated_env: Path
) -> None:
    newer_store(empty_store_url, tmp_path / "locks")
    for args in (
        ("list",),
        ("db", "upgrade"),
        ("dispatch", "--prompt", "p", "add-retries", "--repo", str(repo)),
    ):
        result = run_orch(*args)
        assert result.returncode == 6, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        line = error_line(result.stderr)
        assert "newer orch" in line and NEWER in line, line
    # nothing was migrated "down" and dispatch left nothing behind
    with pytest.raises(StoreTooNew):
        open_store(empty_store_url, tmp_path / "locks", auto_migrate=True)
    assert_nothing_dispatched(repo, isolated_env)


def test_db_current_says_a_newer_store_needs_a_newer_orch(
    empty_store_url: str, tmp_path: Path, run_orch: RunOrch
) -> None:
    newer_store(empty_store_url, tmp_path / "locks")
    result = run_orch("db", "current")
    assert "Traceback" not in result.stderr
    said = result.stdout + result.stderr
    assert NEWER in said
    assert "orch db upgrade" not in said, said
    assert "newer orch" in said, said


# -- stores that cannot be opened ----------------------------------------------------------


def _under_a_regular_file(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "regular-file"
    blocker.write_text("not a directory\n")
    return {"ORCH_DATABASE_URL": f"sqlite:///{blocker}/x.db"}


def _not_sqlite(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "orch-home-with-junk"
    home.mkdir()
    (home / "orch.db").write_text("this is not an SQLite database, just text\n" * 100)
    return {"ORCH_HOME": str(home)}


def _bad_scheme(tmp_path: Path) -> dict[str, str]:
    return {"ORCH_DATABASE_URL": "nosuchdb://operator:s3cret-pw@db.invalid/orch"}


def _unreachable_postgres(tmp_path: Path) -> dict[str, str]:
    # port 1 on the loopback: refused at once, no server behind it
    return {"ORCH_DATABASE_URL": "postgresql+psycopg://operator:s3cret-pw@127.0.0.1:1/orch"}


UNUSABLE = {
    "under-a-regular-file": (_under_a_regular_file, "regular-file is not a directory"),
    "not-sqlite": (_not_sqlite, "file is not a database"),
    "bad-scheme": (_bad_scheme, "nosuchdb"),
    "unreachable-postgres": (_unreachable_postgres, "127.0.0.1"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
@pytest.mark.parametrize("args", [("list",), ("db", "current"), ("db", "upgrade")], ids=" ".join)
def test_a_store_that_cannot_be_opened_is_one_error_line(
    case: str, args: tuple[str, ...], tmp_path: Path, run_orch: RunOrch
) -> None:
    make_env, expected = UNUSABLE[case]
    result = run_orch(*args, env=make_env(tmp_path))
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert result.stdout == ""
    line = error_line(result.stderr)
    assert expected in line, line
    assert "s3cret-pw" not in line, "the store URL's password leaked into the message"


def test_dispatch_to_an_unusable_store_leaves_nothing_behind(
    tmp_path: Path, run_orch: RunOrch, repo: Path, isolated_env: Path
) -> None:
    result = run_orch(
        "dispatch", "--prompt", "p", "add-retries", cwd=repo, env=_not_sqlite(tmp_path)
    )
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert "file is not a database" in error_line(result.stderr)
    assert_nothing_dispatched(repo, isolated_env)


# -- PostgreSQL: a store that is behind ----------------------------------------------------


@pytest.mark.postgres
def test_postgres_store_behind_is_refused_until_upgraded(
    fresh_pg_url: str, tmp_path: Path, run_orch: RunOrch, monkeypatch: pytest.MonkeyPatch
) -> None:
    for auto_migrate in (False, None):  # None: the default, which never migrates PostgreSQL
        with pytest.raises(StoreBehind, match="orch db upgrade"):
            open_store(fresh_pg_url, tmp_path / "locks", auto_migrate=auto_migrate)

    monkeypatch.setenv("ORCH_DATABASE_URL", fresh_pg_url)
    refused = run_orch("list")
    assert refused.returncode == 6, (refused.stdout, refused.stderr)
    assert refused.stdout == ""
    line = error_line(refused.stderr)
    assert "'orch db upgrade'" in line and HEAD in line, line
    # refusing did not create anything
    assert (
        run_orch("db", "current").stdout
        == f"store revision none, orch head {HEAD}: empty: 'orch db upgrade' creates it\n"
    )

    assert run_orch("db", "upgrade").returncode == 0
    listed = run_orch("list")
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no attempts\n", "")
    with open_store(fresh_pg_url, tmp_path / "locks", auto_migrate=False) as store:
        assert store.list_attempts() == []


# -- 0008: the dispatcher's own columns; task workspaces name their attempt ---------------

_T0 = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
# a process that holds an attempt (a dispatch at work, or a worker)
_WHO = {"worker_host": "here", "worker_pid": 4242, "worker_started_at": 1.5}


def _migrate(url: str, target: str, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, target)
    finally:
        engine.dispose()


def _attempt_row(n: int, state: str, workspace: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        # every row names every column it may set: an insert of many rows takes the
        # first row's columns
        **{c: None for c in (*_WHO, "lease_holder", "finished_at", "exit_code", "reason")},
        "target_host": None,
        "id": f"a{n:07d}",
        "task_key": f"task-{n}",
        "attempt_number": 1,
        "state": state,
        "workspace_status": workspace,
        "repository": "/repo",
        "base_ref": "main",
        "base_commit": "c" * 40,
        "branch_name": f"orch/task-{n}",
        "worktree_path": f"/wt/task-{n}",
        "prompt": f"prompt {n}",
        "lease_token": 0,
        "created_at": _T0,
        "updated_at": _T0,
    }
    row.update(extra)
    return row


# every kind of row a 0007 store holds; ``who`` names a process (host, pid, start time)
_ROWS_0007 = [
    _attempt_row(1, "queued", "ready"),
    _attempt_row(2, "running", "ready", lease_token=1, lease_holder="w", **_WHO),
    *(
        _attempt_row(3 + i, end, "ready", finished_at=_T0, exit_code=i)
        for i, end in enumerate(("succeeded", "failed", "cancelled", "timed_out", "worker_gone"))
    ),
    _attempt_row(8, "queued", "provisioning", **_WHO),  # a dispatch at work
    _attempt_row(9, "running", "provisioning", lease_token=1, **_WHO),  # on its worker's host
    _attempt_row(
        10, "queued", "pending", branch_name=None, worktree_path=None, target_host="any"
    ),  # for another host
    _attempt_row(
        11, "queued", "reused", task_key="task-1", attempt_number=2, worktree_path="/wt/task-1"
    ),
    _attempt_row(12, "failed", "failed", reason="set-up hook failed", finished_at=_T0),
    _attempt_row(13, "succeeded", "removed", finished_at=_T0),
]
_MAPPINGS_0007 = [
    # task-1's workspace (attempt 1, reused by attempt 11), and one of a finished task
    ("task-1", "orch/task-1", "/wt/task-1", "a0000001"),
    ("task-3", "orch/task-3", "/wt/task-3", "a0000003"),
    # an attempt that is gone, and a copy that no longer matches its attempt: dropped
    ("task-gone", "orch/task-gone", "/wt/task-gone", "a9999999"),
    ("task-4", "orch/elsewhere", "/wt/elsewhere", "a0000004"),
]


def _rows(url: str, table: str) -> list[dict[str, object]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).mappings().all()
            return [dict(r) for r in found]
    finally:
        engine.dispose()


def _fill_0007(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    old = MetaData()
    try:
        with engine.begin() as conn:
            old.reflect(conn)
            conn.execute(old.tables["attempts"].insert(), _ROWS_0007)
            conn.execute(
                old.tables["task_workspaces"].insert(),
                [
                    {
                        "repository": "/repo",
                        "task_key": task,
                        "branch_name": branch,
                        "worktree_path": path,
                        "attempt_id": attempt,
                        "updated_at": _T0,
                    }
                    for task, branch, path, attempt in _MAPPINGS_0007
                ],
            )
            conn.execute(
                old.tables["queued_tasks"].insert(),
                [
                    {
                        "task_key": f"q-{state}",
                        "repository": "/repo",
                        "prompt": "p",
                        "state": state,
                        "attempt_id": "a0000002" if state == "dispatched" else None,
                        "actor": "me",
                        "created_at": _T0,
                        "updated_at": _T0,
                    }
                    for state in ("ready", "dispatching", "dispatched", "done", "failed")
                ],
            )
            conn.execute(
                old.tables["attempt_events"].insert(),
                [
                    {"attempt_id": r["id"], "kind": "created", "actor": "me", "detail": {}}
                    | {"created_at": _T0}
                    for r in _ROWS_0007
                ],
            )
    finally:
        engine.dispose()


def test_upgrade_to_0008_moves_every_kind_of_row(empty_store_url: str, tmp_path: Path) -> None:
    """The dispatch process that provisions moves to ``dispatcher_*`` (a worker's lease stays
    in ``worker_*``), task workspaces keep only their attempt, nothing else changes; the
    downgrade gives the 0007 rows back."""
    url = empty_store_url
    _migrate(url, "0007")
    _fill_0007(url)
    before = {t: _rows(url, t) for t in ("attempts", "queued_tasks", "attempt_events")}
    old_mappings = _rows(url, "task_workspaces")
    _migrate(url, "0008")
    # the models' schema but for what later revisions add
    assert _added_columns(schema_diff(url, metadata)) == added_after("0008")

    after = _rows(url, "attempts")
    assert len(after) == len(before["attempts"])
    process = ("host", "pid", "started_at")
    for old, new in zip(before["attempts"], after, strict=True):
        moved = old["state"] == "queued" and old["workspace_status"] == "provisioning"
        expected = dict(old)
        for part in process:
            expected[f"dispatcher_{part}"] = old[f"worker_{part}"] if moved else None
            if moved:
                expected[f"worker_{part}"] = None
        assert new == expected, old["id"]
    assert {r["id"]: r["dispatcher_pid"] for r in after if r["dispatcher_pid"]} == {
        "a0000008": 4242
    }
    assert {r["id"] for r in after if r["worker_pid"]} == {"a0000002", "a0000009"}
    assert _rows(url, "queued_tasks") == before["queued_tasks"]
    assert _rows(url, "attempt_events") == before["attempt_events"]
    assert [(m["task_key"], m["attempt_id"]) for m in _rows(url, "task_workspaces")] == [
        ("task-1", "a0000001"),
        ("task-3", "a0000003"),
    ]

    # the store reads at the head (0009 adds columns only): brought there on both backends
    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        mapped = store.task_workspace("/repo", "task-1")
        assert mapped is not None
        assert (mapped.branch_name, mapped.worktree_path) == ("orch/task-1", "/wt/task-1")
        assert store.task_workspace("/repo", "task-gone") is None
        provisioning = store.get("a0000008")
        assert provisioning.provisioner == ("here", 4242)
        assert provisioning.worker_pid is None
        assert store.get("a0000009").provisioner == ("here", 4242)
    finally:
        store.close()

    _migrate(url, "0007", down=True)
    assert {t: _rows(url, t) for t in before} == before
    kept = [m for m in old_mappings if m["task_key"] in ("task-1", "task-3")]
    assert [
        {k: v for k, v in m.items() if k != "updated_at"} for m in _rows(url, "task_workspaces")
    ] == [{k: v for k, v in m.items() if k != "updated_at"} for m in kept]


# -- 0009: what an attempt changed, recorded; runs of kind check ---------------------------

ADDED_AFTER_0008 = {
    *(
        ("attempts", c)
        for c in (
            "changes_tip",
            "commits_ahead",
            "files_changed",
            "lines_added",
            "lines_removed",
            "changes_at",
        )
    ),
    ("attempt_runs", "kind"),
    ("attempt_runs", "timed_out"),
}


# what 0010 adds: the state of an event, and the outbox's deliveries (a table of its own)
ADDED_BY_0010 = {("attempt_events", "state")}
TABLES_ADDED_BY_0010 = {"event_deliveries"}
# what 0013 adds: the land queue of orch serve (a table of its own)
TABLES_ADDED_BY_0013 = {"land_queue"}
# what 0011 adds: what a land recorded, and the intent of one in progress
_LAND_COLUMNS = (
    "landed_commit",
    "landed_tip",
    "landed_into",
    "landed_strategy",
    "landed_by",
    "landed_at",
    "landing_commit",
    "landing",
)
ADDED_BY_0011 = {("attempts", c) for c in _LAND_COLUMNS}
# what 0012 adds: what each run's agent reported it consumed
ADDED_BY_0012 = {
    ("attempt_runs", c)
    for c in ("input_tokens", "output_tokens", "cached_tokens", "cost_usd", "model")
}
# what 0014 adds: the pull request of an attempt, and what the CI loop forwarded from it
_PR_COLUMNS = ("pr_url", "pr_number", "pr_state", "pr_watch")
ADDED_BY_0014 = {("attempts", c) for c in _PR_COLUMNS}
# what 0018 adds: a queued task's workers (a list) and attempts (best-of-N through the
# queue); it drops the one ``worker`` the list replaces
ADDED_BY_0018 = {("queued_tasks", c) for c in ("workers", "attempts", "attempt_ids")}
REMOVED_BY_0018 = {("queued_tasks", "worker")}
# the columns each revision after 0008 adds, in one place: a new migration adds its
# line here, and every earlier revision's test expects it through ``added_after``
COLUMNS_ADDED = {
    "0009": ADDED_AFTER_0008,
    "0010": ADDED_BY_0010,
    "0011": ADDED_BY_0011,
    "0012": ADDED_BY_0012,
    "0014": ADDED_BY_0014,
    "0018": ADDED_BY_0018,
}


def added_after(revision: str) -> set[tuple[str, str]]:
    """The columns the revisions after ``revision`` add (what the models have that a
    store at ``revision`` lacks)."""
    return set().union(*(cols for rev, cols in COLUMNS_ADDED.items() if rev > revision))


# the revisions after 0014 add indexes only: each one's, in one place (a new index
# migration adds its line here, and the index test below takes it up)
INDEXES_ADDED = {
    # the everyday paths
    "0015": {
        "ix_attempts_listing",
        "ix_attempts_workspace",
        "ix_attempts_branch",
        "ix_attempts_worktree",
        "ix_attempt_events_kind",
    },
    # the event deliveries by state
    "0016": {"ix_event_deliveries_state"},
    # the attempts with a pull request, and those with a land in progress (partial)
    "0017": {"ix_attempts_pr_state", "ix_attempts_landing"},
}


def indexes_added_after(revision: str) -> set[str]:
    """The indexes the revisions after ``revision`` add (what a store there lacks)."""
    return set().union(*(names for rev, names in INDEXES_ADDED.items() if rev > revision))


INDEXES_ADDED_AFTER_0014 = indexes_added_after("0014")


def _later_column_change(item: object) -> bool:
    """A column a revision after 0014 adds, or the one 0018 removes: what a store at an
    earlier revision differs in besides the change under test."""
    if not isinstance(item, tuple):
        return False
    if item[0] == "remove_column":
        return (item[2], item[3].name) in REMOVED_BY_0018
    return item[0] == "add_column" and (item[2], item[3].name) in ADDED_BY_0018


def _added_columns(diff: list[object]) -> set[tuple[str, str]]:
    """The columns a schema difference adds (a table that a later revision adds, and the
    column 0018 removes, are let through); anything else it holds fails the test."""
    added = set()
    for item in diff:
        if isinstance(item, tuple) and item[0] == "remove_column":
            assert _later_column_change(item), item
            continue
        if (
            isinstance(item, tuple)
            and item[0] == "add_index"
            and item[1].name in INDEXES_ADDED_AFTER_0014
        ):
            continue
        if isinstance(item, tuple) and item[0] in ("add_table", "add_index"):
            table = item[1] if item[0] == "add_table" else item[1].table
            assert table.name in TABLES_ADDED_BY_0010 | TABLES_ADDED_BY_0013, item
            continue
        assert isinstance(item, tuple) and item[0] == "add_column", item
        added.add((item[2], item[3].name))
    return added


_CHANGE_COLUMNS = tuple(sorted(c for t, c in ADDED_AFTER_0008 if t == "attempts"))


def _fill_0008(url: str) -> None:
    """Every kind of attempt row, each ended one with an agent run (one with two)."""
    engine = create_engine(url, poolclass=NullPool)
    old = MetaData()
    try:
        with engine.begin() as conn:
            old.reflect(conn)
            conn.execute(old.tables["attempts"].insert(), _ROWS_0007)
            runs = [
                {
                    "attempt_id": r["id"],
                    "number": number,
                    "prompt": f"run {number}",
                    "command": ["sh", "-c", "true"],
                    "log_path": f"/logs/{r['id']}.log",
                    "pid": 100 + number,
                    "started_at": _T0,
                    "ended_at": _T0,
                    "exit_code": r["exit_code"],
                }
                for r in _ROWS_0007
                if r["finished_at"] is not None
                for number in ((1, 2) if r["id"] == "a0000003" else (1,))
            ]
            conn.execute(old.tables["attempt_runs"].insert(), runs)
    finally:
        engine.dispose()


def test_upgrade_to_0009_keeps_every_row_and_makes_every_run_an_agent_run(
    empty_store_url: str, tmp_path: Path
) -> None:
    """Attempts gain empty change columns, runs become ``agent`` runs that did not time
    out, nothing else changes; the downgrade drops the check runs and gives the 0008 rows
    back."""
    url = empty_store_url
    _migrate(url, "0008")
    _fill_0008(url)
    before = {t: _rows(url, t) for t in ("attempts", "attempt_runs")}
    assert len(before["attempt_runs"]) == 8
    _migrate(url, "0009")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0009")

    after = _rows(url, "attempts")
    for old, new in zip(before["attempts"], after, strict=True):
        assert new == {**old, **dict.fromkeys(_CHANGE_COLUMNS)}, old["id"]
    runs = _rows(url, "attempt_runs")
    for old, new in zip(before["attempt_runs"], runs, strict=True):
        assert new == {**old, "kind": "agent", "timed_out": False}

    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        assert [(r.number, r.kind, r.result) for r in store.runs("a0000003")] == [
            (1, "agent", "passed"),
            (2, "agent", "passed"),
        ]
        check = store.start_check("a0000003", "pytest -q", "/logs/a0000003.log", "me")
        assert check.number == 3
        ended = store.end_check("a0000003", check.number, None, True, "me")
        assert (ended.kind, ended.result) == ("check", "timed out")
        assert store.latest_checks(["a0000003", "a0000004"]) == {"a0000003": ended}
    finally:
        store.close()

    _migrate(url, "0008", down=True)
    assert {t: _rows(url, t) for t in before} == before


# -- 0010: the outbox's deliveries ---------------------------------------------------------


def test_upgrade_to_0010_keeps_every_event_and_delivers_none_of_the_old_ones(
    empty_store_url: str, tmp_path: Path
) -> None:
    """Events gain an empty ``state``; ``event_deliveries`` starts empty; the downgrade
    drops it and gives the 0009 rows back."""
    url = empty_store_url
    _migrate(url, "0009")
    _fill_0008(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO attempt_events (attempt_id, kind, actor, detail, created_at) "
                    "VALUES ('a0000003', 'finished', 'w', '{}', :t)"
                ),
                {"t": _T0},
            )
    finally:
        engine.dispose()
    before = _rows(url, "attempt_events")
    _migrate(url, "0010")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0010")
    assert _rows(url, "attempt_events") == [{**r, "state": None} for r in before]
    assert _rows(url, "event_deliveries") == []
    _migrate(url, "0009", down=True)
    assert _rows(url, "attempt_events") == before


# -- 0011: what a land recorded, and the intent of one in progress ---------------------------


def test_upgrade_to_0011_leaves_every_attempt_unlanded(
    empty_store_url: str, tmp_path: Path
) -> None:
    """Attempts gain empty land columns and nothing else changes; a land is recorded once
    (a compare-and-set on its intent); the downgrade gives the 0010 rows back."""
    url = empty_store_url
    _migrate(url, "0008")
    _fill_0008(url)
    _migrate(url, "0010")
    before = _rows(url, "attempts")
    _migrate(url, "0011")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0011")
    for old, new in zip(before, _rows(url, "attempts"), strict=True):
        assert new == {**old, **dict.fromkeys(_LAND_COLUMNS)}, old["id"]

    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        attempt = store.get("a0000003")
        assert not attempt.landed and attempt.landing is None
        result, tip = "c" * 40, "d" * 40
        intent = {"into": "main", "from": "e" * 40, "tip": tip, "strategy": "squash"}
        begun = store.begin_landing("a0000003", result, intent, "me")
        assert (begun.landing_commit, begun.landing) == (result, intent)
        assert [a.id for a in store.landings_in_progress()] == ["a0000003"]
        landed = Landed(result, tip, "main", "squash", "me")
        recorded = store.record_landed("a0000003", landed, "me", check="skipped (--no-check)")
        assert recorded is not None and recorded.landed and recorded.landing_commit is None
        assert (recorded.landed_tip, recorded.landed_into) == (tip, "main")
        assert store.record_landed("a0000003", landed, "me") is None  # once only
        assert store.landings_in_progress() == []
        kinds = [e.kind for e in store.events("a0000003")]
        assert kinds[-2:] == ["landing", "landed"]
    finally:
        store.close()

    _migrate(url, "0010", down=True)

    def unchanged(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]

    # the rows as they were (the one that landed was updated, of course)
    assert unchanged(_rows(url, "attempts")) == unchanged(before)


# -- 0012: what each run's agent reported it consumed ---------------------------------------

_USAGE_COLUMNS = tuple(sorted(c for _t, c in ADDED_BY_0012))


def test_upgrade_to_0012_leaves_every_run_s_usage_unknown(
    empty_store_url: str, tmp_path: Path
) -> None:
    """Runs gain usage columns, all NULL (not reported, never 0); nothing else changes; a
    usage recorded afterwards is read back; the downgrade gives the 0011 rows back."""
    url = empty_store_url
    _migrate(url, "0008")
    _fill_0008(url)
    _migrate(url, "0011")
    before = {t: _rows(url, t) for t in ("attempts", "attempt_runs")}
    _migrate(url, "0012")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0012")
    assert _rows(url, "attempts") == before["attempts"]
    for old, new in zip(before["attempt_runs"], _rows(url, "attempt_runs"), strict=True):
        assert new == {**old, **dict.fromkeys(_USAGE_COLUMNS)}

    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        assert store.usage_of(["a0000003"]) == {}
        usage = Usage(3_000_000_000, 1200, 2_900_000_000, 12.5, "claude-opus-4-1")
        store.record_usage("a0000003", 2, usage)
        assert store.usage_of(["a0000003", "a0000004"]) == {"a0000003": {2: usage}}
    finally:
        store.close()

    _migrate(url, "0011", down=True)
    assert {t: _rows(url, t) for t in before} == before


# -- 0013: the land queue of orch serve ---------------------------------------------------


def test_upgrade_to_0013_adds_an_empty_land_queue(empty_store_url: str, tmp_path: Path) -> None:
    """A new, empty table and nothing else; an attempt waits in it once; the downgrade
    drops it and leaves every other row as it was."""
    url = empty_store_url
    _migrate(url, "0008")
    _fill_0008(url)
    _migrate(url, "0012")
    before = _rows(url, "attempts")
    _migrate(url, "0013")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0013")
    assert _rows(url, "land_queue") == [] and _rows(url, "attempts") == before

    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        entry = store.queue_land(
            "a0000003", "/repo", "here", None, "rebase", None, True, False, False, "me"
        )
        assert (entry.state, entry.strategy, entry.run_check) == ("queued", "rebase", True)
        with pytest.raises(Conflict):
            store.queue_land(
                "a0000003", "/repo", "here", None, "squash", None, True, False, False, "me"
            )
        taken = store.move_land(entry.id, LandQueueState.QUEUED, LandQueueState.LANDING)
        assert taken is not None
        assert store.move_land(entry.id, LandQueueState.QUEUED, LandQueueState.LANDING) is None
        ended = store.move_land(
            entry.id,
            LandQueueState.LANDING,
            LandQueueState.FAILED,
            result="conflict",
            paths=["a.txt"],
            exit_code=21,
            reason="it conflicts",
        )
        assert ended is not None and (ended.result, ended.paths) == ("conflict", ["a.txt"])
        assert [e.kind for e in store.events("a0000003")][-1] == "land_queued"
    finally:
        store.close()

    _migrate(url, "0012", down=True)
    engine = create_engine(url, poolclass=NullPool)
    try:
        assert "land_queue" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert _rows(url, "attempts") == before


# -- 0014: the pull request of an attempt ----------------------------------------------------


def test_upgrade_to_0014_gives_no_attempt_a_pull_request(
    empty_store_url: str, tmp_path: Path
) -> None:
    """Attempts gain empty pull request columns and nothing else changes; a pull request
    is recorded once; the downgrade gives the 0013 rows back."""
    url = empty_store_url
    _migrate(url, "0008")
    _fill_0008(url)
    _migrate(url, "0013")
    before = _rows(url, "attempts")
    _migrate(url, "0014")
    assert _added_columns(schema_diff(url, metadata)) == added_after("0014")  # 0018's
    for old, new in zip(before, _rows(url, "attempts"), strict=True):
        assert new == {**old, **dict.fromkeys(_PR_COLUMNS)}, old["id"]

    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        assert store.get("a0000003").pr_url is None
        pr = "https://github.com/o/r/pull/7"
        recorded = store.record_pull_request("a0000003", pr, 7, "me")
        assert (recorded.pr_url, recorded.pr_number, recorded.pr_state) == (pr, 7, "open")
        with pytest.raises(Conflict, match="already has pull request"):
            store.record_pull_request("a0000003", pr, 8, "me")
        assert [a.id for a, _ in store.open_pull_requests()] == ["a0000003"]
    finally:
        store.close()

    _migrate(url, "0013", down=True)

    def unchanged(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]

    assert unchanged(_rows(url, "attempts")) == unchanged(before)


# -- 0015, 0016, 0017: indexes only --------------------------------------------------------


@pytest.mark.parametrize("revision", sorted(INDEXES_ADDED))
def test_an_index_revision_adds_only_its_indexes(empty_store_url: str, revision: str) -> None:
    """Each of them adds its indexes and nothing else (the rows come through untouched);
    its downgrade takes exactly them away."""
    url = empty_store_url
    previous = REVISIONS[REVISIONS.index(revision) - 1]
    _migrate(url, "0008")
    _fill_0008(url)
    _migrate(url, previous)
    before = _rows(url, "attempts")
    _migrate(url, revision)
    assert _index_names(schema_diff(url, metadata)) == indexes_added_after(revision)
    assert _rows(url, "attempts") == before
    _migrate(url, previous, down=True)
    assert _index_names(schema_diff(url, metadata)) == indexes_added_after(previous)


def _index_names(diff: list[object]) -> set[str]:
    """The indexes a schema difference adds (the column changes of 0018 let through);
    anything else it holds fails the test."""
    diff = [item for item in diff if not _later_column_change(item)]
    assert all(isinstance(item, tuple) and item[0] == "add_index" for item in diff), diff
    return {item[1].name for item in diff}


# -- 0018: best-of-N through the queue --------------------------------------------------------


def _queue_0017(url: str, *rows: tuple[str | None, str]) -> None:
    """Queued tasks as a store at 0017 holds them: (worker, state) each."""
    engine = create_engine(url, poolclass=NullPool)
    old = MetaData()
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    try:
        with engine.begin() as conn:
            old.reflect(conn)
            conn.execute(
                old.tables["queued_tasks"].insert(),
                [
                    {
                        "task_key": f"t{n}",
                        "repository": "/repo",
                        "prompt": "p",
                        "worker": worker,
                        "state": state,
                        "actor": "me",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, (worker, state) in enumerate(rows)
                ],
            )
    finally:
        engine.dispose()


def test_upgrade_to_0018_turns_each_worker_into_a_list_of_one(
    empty_store_url: str, tmp_path: Path
) -> None:
    """A task's one worker becomes a list of it (none: an empty list), every task makes one
    attempt; a best-of-N task then waits in the queue; the downgrade is refused while it
    waits, and once it is dispatched gives back each task's first worker."""
    url = empty_store_url
    _migrate(url, "0017")
    _queue_0017(url, ("codex", "ready"), (None, "done"), ('we"ird \\ name', "dispatched"))
    _migrate(url, "0018")
    assert _added_columns(schema_diff(url, metadata)) == set()
    store = open_store(url, tmp_path / "locks", auto_migrate=True)
    try:
        tasks = store.queued_tasks()
        assert [(t.workers, t.attempts) for t in tasks] == [
            (("codex",), 1),
            ((), 1),
            (('we"ird \\ name',), 1),
        ]
        best = store.submit_task("t9", "/repo", None, "p", ("claude", "codex"), 3, "me")
        assert (best.workers, best.attempts, best.state) == (
            ("claude", "codex"),
            3,
            TaskState.READY,
        )
    finally:
        store.close()

    for state in ("ready", "dispatching", "dispatched"):
        execute(url, f"UPDATE queued_tasks SET state = '{state}' WHERE id = {best.id}")
        with pytest.raises(RuntimeError, match=r"1 queued best-of-N task\(s\) are not done"):
            _migrate(url, "0017", down=True)
    execute(url, f"UPDATE queued_tasks SET state = 'done' WHERE id = {best.id}")
    _migrate(url, "0017", down=True)
    assert [(r["task_key"], r["worker"]) for r in _rows(url, "queued_tasks")] == [
        ("t0", "codex"),
        ("t1", None),
        ("t2", 'we"ird \\ name'),
        ("t9", "claude"),
    ]
