from __future__ import annotations

from pathlib import Path
from typing import Any


def test_dispatch_then_list_and_show(repo: Path, run_cli: Any, store_url: str) -> None:
    result = run_cli("dispatch", "add-retries", "--prompt", "Add retries", "--strict", cwd=repo)
    assert result.exit_code == 0, result.output
    attempt_id = result.stdout.strip()
    listed = run_cli("list", cwd=repo)
    assert attempt_id in listed.stdout
    shown = run_cli("show", attempt_id)
    assert "workspace_status  ready" in shown.stdout
