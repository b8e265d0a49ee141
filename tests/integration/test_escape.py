"""Escape detection: an agent that writes outside its own worktree leaves a warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.attempts import dispatch


def _warnings(run_cli: Any, attempt_id: str) -> list[dict[str, Any]]:
    data = json.loads(run_cli("show", attempt_id, "--json").stdout)
    return [e["detail"] for e in data["events"] if e["kind"] == "escape_warning"]


def test_writes_to_the_main_worktree_and_an_idle_sibling_are_reported(
    repo: Path, run_cli: Any, run_orch: Any
) -> None:
    sibling = dispatch(run_cli, repo, "sibling")
    escaper = dispatch(run_cli, repo, "escaper")
    target = Path(sibling["worktree_path"]) / "evil.txt"
    script = f"echo oops >> {repo / 'src/d0/f0.txt'}; echo bad > {target}; echo ok > mine.txt"
    done = run_orch("work", "--attempt", escaper["id"], "--", "sh", "-c", script, cwd=repo)
    assert done.returncode == 0, done.stderr
    found = {w["worktree"]: w["changed"] for w in _warnings(run_cli, escaper["id"])}
    assert found == {str(repo): ["src/d0/f0.txt"], sibling["worktree_path"]: ["evil.txt"]}
    shown = run_cli("show", escaper["id"]).stdout
    assert "files changed outside the attempt's worktree" in shown


def test_an_agent_that_stays_home_leaves_no_warning(
    repo: Path, run_cli: Any, run_orch: Any
) -> None:
    dispatch(run_cli, repo, "sibling")
    attempt = dispatch(run_cli, repo, "polite")
    done = run_orch(
        "work", "--attempt", attempt["id"], "--", "sh", "-c", "echo ok > mine.txt", cwd=repo
    )
    assert done.returncode == 0, done.stderr
    assert _warnings(run_cli, attempt["id"]) == []
