"""Test isolation shared by every test: no real home, no real git config, real git repos.

Every test gets its own HOME, ORCH_HOME, XDG directories and a pinned git identity, so
nothing reads or writes the developer's files and every test is safe under ``-n auto``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orch.cli.main import cli

REAL_HOME = os.path.expanduser("~")
ORCH_BIN = shutil.which("orch", path=str(Path(sys.executable).parent)) or "orch"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = orch tests\n\temail = tests@orch.invalid\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    for var in list(os.environ):
        if var.startswith(("ORCH_", "GIT_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "orch-home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "orch tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@orch.invalid")
        monkeypatch.setenv(f"GIT_{role}_DATE", "2026-01-01T00:00:00Z")
    return tmp_path / "orch-home"


@pytest.fixture(autouse=True)
def _never_touch_real_home(tmp_path: Path) -> Iterator[None]:
    """Fail the test if it created anything orch-related in the real home directory."""
    watched = [Path(REAL_HOME) / ".local" / "state" / "orch", Path(REAL_HOME) / ".config" / "orch"]
    before = {p: p.exists() for p in watched}
    yield
    for path, existed in before.items():
        assert existed or not path.exists(), f"test wrote to the real home: {path}"


def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a real repository with ``files`` committed files and return its path."""
    counter = iter(range(1000))

    def _make(name: str | None = None, files: int = 3, commits: int = 1) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=repo)
        (repo / ".gitignore").write_text("*.log\nbuild/\n")
        for i in range(files):
            sub = repo / "src" / f"d{i % 10}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{i}.txt").write_text(f"file {i}\n")
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", "initial", cwd=repo)
        for c in range(1, commits):
            (repo / "history.txt").write_text(f"commit {c}\n")
            git("add", "-A", cwd=repo)
            git("commit", "-q", "-m", f"commit {c}", cwd=repo)
        return repo

    return _make


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo("repo")


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke orch in-process (click's CliRunner) with the test's environment."""
    runner = CliRunner()

    def _run(*args: str, cwd: Path | None = None, input: str | None = None) -> Result:
        old = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            return runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(old)

    return _run


@pytest.fixture
def run_orch() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``orch`` entry point in a subprocess."""

    def _run(
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ORCH_BIN, *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
        )

    return _run


# -- PostgreSQL ----------------------------------------------------------------------------

PG_ADMIN_URL = os.environ.get(
    "ORCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required on CI and unreachable: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason}); set ORCH_TEST_PG_URL or start a server")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A database of this test session's own (safe under xdist), dropped afterwards."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - dev extra not installed
        _pg_unavailable(f"psycopg not installed: {exc}")
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _pg_unavailable(str(exc).strip().splitlines()[0])
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(
    request: pytest.FixtureRequest, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The store URL for each backend; also exported as ORCH_DATABASE_URL for the CLI."""
    if request.param == "sqlite":
        url = f"sqlite:///{isolated_env / 'orch.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
        from orch.store import upgrade_store

        upgrade_store(url, isolated_env / "locks")
    monkeypatch.setenv("ORCH_DATABASE_URL", url)
    return url
