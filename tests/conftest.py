"""Test isolation shared by every test: no real home, no real git config, real git repos.

Every test gets its own HOME, ORCH_HOME, XDG directories and a pinned git identity, so
nothing reads or writes the developer's files and every test is safe under ``-n auto``.
The fixtures here only choose; what they make comes from ``tests/support`` (one home for
each helper). The autouse fixtures only set environment variables and check two paths, so
a unit test pays nearly nothing for them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import RunCli, RunOrch, invoke, run_installed
from tests.support.isolation import pin_git, use_home
from tests.support.repos import new_repo
from tests.support.store import BACKENDS, backend_url, empty_pg_store, new_pg_database

REAL_HOME = os.path.expanduser("~")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    use_home(monkeypatch, home, tmp_path / "orch-home")
    pin_git(monkeypatch, tmp_path / "gitconfig")
    return tmp_path / "orch-home"


@pytest.fixture(autouse=True)
def _never_touch_real_home() -> Iterator[None]:
    """Fail the test if it created anything orch-related in the real home directory."""
    watched = [Path(REAL_HOME) / ".local" / "state" / "orch", Path(REAL_HOME) / ".config" / "orch"]
    before = {p: p.exists() for p in watched}
    yield
    for path, existed in before.items():
        assert existed or not path.exists(), f"test wrote to the real home: {path}"


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a real repository with ``files`` committed files and return its path."""
    counter = iter(range(1000))

    def _make(name: str | None = None, files: int = 3, commits: int = 1) -> Path:
        return new_repo(tmp_path / (name or f"repo{next(counter)}"), files, commits)

    return _make


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo("repo")


@pytest.fixture
def run_cli() -> RunCli:
    """Invoke orch in-process (click's CliRunner) with the test's environment."""
    return functools.partial(invoke, CliRunner())


@pytest.fixture
def run_orch() -> RunOrch:
    """Run the installed ``orch`` entry point in a subprocess."""
    return run_installed


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A database of this test session's own (safe under xdist), dropped afterwards."""
    with new_pg_database("orch_test") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store_url(
    request: pytest.FixtureRequest, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The store URL for each backend; also exported as ORCH_DATABASE_URL for the CLI."""
    url = backend_url(request, isolated_env / "orch.db", "pg_database_url", monkeypatch)
    if request.param != "sqlite":
        from orch.store import upgrade_store

        upgrade_store(url, isolated_env / "locks")
        empty_pg_store(url)
    return url
