"""Fixtures that only the integration tests use (real processes, a store opened directly);
each delegates to ``tests/support``. The shared isolation, repositories and store URLs are
in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.store import Store, open_store
from tests.support.browser import chromium
from tests.support.postgres import Cluster, pg_bin
from tests.support.processes import Start, procs
from tests.support.store import own_repository


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start real processes with ``start(argv, env=...)``; all are killed after the test."""
    with procs(tmp_path) as starter:
        yield starter


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (the dashboard tests), closed afterwards."""
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


@pytest.fixture
def store(store_url: str, isolated_env: Path) -> Iterator[Store]:
    """The test's store on each backend, opened directly (a module may give its own)."""
    with open_store(store_url, isolated_env / "locks") as opened:
        yield opened


@pytest.fixture
def repository(store: Store) -> Iterator[str]:
    """A repository string of this test's own; its live attempts are cancelled afterwards."""
    with own_repository(store) as name:
        yield name


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server of the test's own, stopped and removed afterwards."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no initdb and pg_ctl under /usr/lib/postgresql/*/bin for a throwaway server")
    made = Cluster(bindir)
    try:
        yield made
    finally:
        made.stop()
