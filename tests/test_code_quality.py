"""The layering, typing and lint rules of STYLE.md, enforced on every run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    if found is None:
        pytest.fail(f"{name} is not installed in the test environment (pip install -e '.[dev]')")
    return found


@pytest.mark.parametrize(
    "argv",
    [
        ["lint-imports"],
        ["ruff", "check", "orch", "migrations", "tests", "bench"],
        ["mypy"],
    ],
    ids=["import-linter", "ruff", "mypy"],
)
def test_tool_passes(argv: list[str]) -> None:
    proc = subprocess.run(
        [_tool(argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
