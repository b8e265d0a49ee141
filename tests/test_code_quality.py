"""The layering, typing and lint rules of STYLE.md, enforced on every run."""

from __future__ import annotations

import re
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


# a git command line: a list handed to the adapter's runner, or one naming git itself
_GIT_COMMAND = re.compile(
    r"\.(run|run_into|output_bytes|output_head|_start)\(\s*\[|[\"']git[\"']\s*,"
)


def test_only_the_git_adapter_builds_git_commands() -> None:
    """Every git command orch runs has a name in orch.git (STYLE.md: a reader finds every
    git call there); no other module builds a git command line."""
    found = []
    for path in sorted((ROOT / "orch").rglob("*.py")):
        if path.is_relative_to(ROOT / "orch" / "git"):
            continue
        text = path.read_text()
        for match in _GIT_COMMAND.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []
