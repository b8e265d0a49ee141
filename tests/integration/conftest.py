"""Fixtures that only the integration tests use (real processes); each delegates to
``tests/support``. The shared isolation, repositories and stores are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Start, procs


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start real processes with ``start(argv, env=...)``; all are killed after the test."""
    with procs(tmp_path) as starter:
        yield starter
