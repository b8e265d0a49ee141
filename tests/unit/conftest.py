"""Light isolation for the unit tests: they touch no git repository, no database and no
subprocess, so they need no per-test home directory or git config on disk.

``isolated_env`` here overrides the root conftest's (which writes a home and a git config
for every test: about 20 ms each on a busy machine, more than a unit test itself). The
environment is still cleared of the developer's ORCH_ and GIT_ variables and points at one
session directory, so nothing a unit test resolves can reach the real home.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.isolation import use_home


@pytest.fixture(scope="session")
def _unit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unit-home")


@pytest.fixture(autouse=True)
def isolated_env(_unit_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_home(monkeypatch, _unit_home, _unit_home / "orch-home")
    return _unit_home / "orch-home"
