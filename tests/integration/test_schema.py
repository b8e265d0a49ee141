"""The store's schema: migrations, revisions, and stores orch must refuse (issue 2, point 4).

Stores here are made fresh for each test (a new SQLite file, or a new PostgreSQL database
created and dropped by the test), because several tests stamp or break them on purpose.
The CLI runs through the installed ``orch`` entry point, so "no traceback" is checked on
what a user would really see.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from orch.errors import StoreBehind, StoreTooNew
from orch.store import open_store, upgrade_store
from orch.store.revision import HEAD, REVISIONS, migrations_dir
from orch.store.tables import metadata

RunOrch = Callable[..., subprocess.CompletedProcess[str]]
NEWER = "9999"


def error_line(stderr: str) -> str:
    """The one ``Error: ...`` line an expected failure prints, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def git_lines(*args: str, cwd: Path) -> list[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def assert_nothing_dispatched(repo: Path, orch_home: Path) -> None:
    assert git_lines("for-each-ref", "refs/heads/orch/", cwd=repo) == []
    listed = git_lines("worktree", "list", "--porcelain", cwd=repo)
    assert [ln for ln in listed if ln.startswith("worktree ")] == [f"worktree {repo}"]
    inbox = orch_home / "inbox"
    assert not inbox.exists() or list(inbox.iterdir()) == []


@pytest.fixture
def fresh_pg_url(pg_database_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own, dropped afterwards."""
    import psycopg

    session = make_url(pg_database_url)
    # any existing database will do for CREATE/DROP DATABASE; use the session's own
    maintenance = session.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"orch_schema_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield session.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store URL with nothing behind it yet; also exported as ORCH_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh-store' / 'orch.db'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    monkeypatch.setenv("ORCH_DATABASE_URL", url)
    return url


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
