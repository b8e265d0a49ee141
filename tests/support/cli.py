"""Running orch: in-process through click's runner, or as the installed entry point in a
subprocess; and reading what it answered (its one error line, its JSON envelope).

Never catches orch's exceptions for it: a bug shows as a traceback in the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from orch.cli.main import cli

# the entry point installed beside this interpreter: the checkout under test, not a global one
ORCH_BIN = shutil.which("orch", path=str(Path(sys.executable).parent)) or "orch"

RunCli = Callable[..., Result]
RunOrch = Callable[..., subprocess.CompletedProcess[str]]


def invoke(
    runner: CliRunner, *args: str, cwd: Path | None = None, input: str | None = None
) -> Result:
    """orch in this process, from ``cwd``, with the test's environment."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


def run_installed(
    *args: str,
    cwd: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The installed ``orch`` in a subprocess, with ``env`` added to the test's environment."""
    return subprocess.run(
        [ORCH_BIN, *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def error_line(stderr: str) -> str:
    """The one ``Error: ...`` line an expected failure prints; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0]


def assert_failed_cleanly(result: Result | subprocess.CompletedProcess[str], exit_code: int) -> str:
    """Exit code, nothing on stdout, one error line on stderr; returns that line."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == exit_code, (code, result.stdout, result.stderr)
    assert result.stdout == ""
    return error_line(result.stderr)


def json_out(result: Result) -> dict[str, Any]:
    """The ``--json`` envelope of a command that succeeded (version 1)."""
    assert result.exit_code == 0, (result.exit_code, result.output, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    return data
