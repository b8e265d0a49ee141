"""Store URLs orch cannot use are one line and exit 6, never a driver's traceback (issue 17.7).

The missing-driver case runs orch for real in a subprocess whose ``import psycopg`` fails:
a finder put first on ``sys.meta_path`` refuses the ``psycopg`` modules. It replaces that
import only; orch, SQLAlchemy and the command line are the installed ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import RunCli, assert_failed_cleanly

RunOrch = Callable[..., Any]

# What a plain install (no [postgres] extra) looks like to orch: psycopg is not importable.
WITHOUT_PSYCOPG = """
import sys

class _NoPsycopg:
    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith(("psycopg.", "psycopg_")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoPsycopg())
sys.argv = ["orch", *sys.argv[1:]]
from orch.cli import main
main()
"""


def _orch_without_psycopg(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "ORCH_DATABASE_URL": url},
        timeout=120,
    )


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_without_psycopg_names_the_extra_to_install(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://orch:secret@127.0.0.1:5432/orch"
    for args in (("list",), ("db", "current")):
        result = _orch_without_psycopg(*args, url=url, cwd=tmp_path)
        line = assert_failed_cleanly(result, 6)
        assert line == (
            "Error: the store URL postgresql+psycopg://orch:***@127.0.0.1:5432/orch is "
            "PostgreSQL, whose driver is not installed: pip install 'orch-worktrees[postgres]'"
        ).replace("postgresql+psycopg://", f"{scheme}://")
        assert "secret" not in result.stderr


def test_the_stand_in_really_blocks_psycopg(tmp_path: Path) -> None:
    """The finder above is what makes psycopg missing (and nothing else is)."""
    probe = WITHOUT_PSYCOPG.split("sys.argv")[0] + "import sqlalchemy, click\nimport psycopg\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'psycopg'" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://root:pw@127.0.0.1/orch",
            "Error: the store URL mysql://root:***@127.0.0.1/orch names the database 'mysql', "
            "which orch does not support: use sqlite:///PATH or postgresql://…",
        ),
        (
            "mssql+pyodbc://h/db",
            "Error: the store URL mssql+pyodbc://h/db names the database 'mssql', which orch "
            "does not support: use sqlite:///PATH or postgresql://…",
        ),
        (
            "postgresql+psycopg2://u@h/db",
            "Error: the store URL postgresql+psycopg2://u@h/db names the driver 'psycopg2': "
            "orch speaks to PostgreSQL through psycopg 3 (write postgresql://…)",
        ),
    ],
)
def test_an_unsupported_database_is_one_line_and_exit_6(
    run_orch: RunOrch, tmp_path: Path, url: str, expected: str
) -> None:
    for args in (("list",), ("db", "upgrade")):
        result = run_orch(*args, cwd=tmp_path, env={"ORCH_DATABASE_URL": url})
        assert assert_failed_cleanly(result, 6) == expected


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_and_postgresql_urls_open_the_store_through_psycopg(
    run_cli: RunCli,
    pg_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
) -> None:
    from sqlalchemy.engine import make_url

    from orch.store import upgrade_store

    upgrade_store(pg_database_url, tmp_path / "locks")
    plain = make_url(pg_database_url).set(drivername=scheme).render_as_string(hide_password=False)
    assert plain.startswith(f"{scheme}://")
    monkeypatch.setenv("ORCH_DATABASE_URL", plain)
    current = run_cli("db", "current")
    assert current.exit_code == 0, current.output
    listed = run_cli("list", "--json")
    assert listed.exit_code == 0, listed.output
