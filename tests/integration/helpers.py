"""Checks shared by the dispatch, list and show integration tests.

Everything here asks git itself or the store (through ``orch list --json``) what is
there; nothing is mocked. Rows are always filtered by repository because the PostgreSQL
test database is shared by every test of one xdist worker.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

RunCli = Callable[..., Result]


def git(*args: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout


def commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return head(repo)


def head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path).strip()


def orch_branches(repo: Path) -> list[str]:
    out = git("for-each-ref", "--format=%(refname)", "refs/heads/orch/", cwd=repo)
    return out.split()


def worktrees(repo: Path) -> list[dict[str, str]]:
    """``git worktree list --porcelain``, one dict per worktree, main worktree first."""
    out = git("worktree", "list", "--porcelain", cwd=repo)
    entries = []
    for block in out.strip().split("\n\n"):
        entry: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            entry[key] = value
        entries.append(entry)
    return entries


def payload_files(orch_home: Path) -> list[Path]:
    inbox = orch_home / "inbox"
    return sorted(inbox.iterdir()) if inbox.is_dir() else []


def json_out(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.exit_code, result.output, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    return data


def with_prompt(args: tuple[str, ...]) -> tuple[str, ...]:
    """``args`` with a prompt unless they give one: dispatch refuses an empty prompt."""
    if any(a.startswith(("--prompt", "--allow-empty-prompt")) for a in args):
        return args
    return ("--prompt", "do it", *args)


def dispatch(
    run_cli: RunCli, repo: Path, task_key: str, *args: str, cwd: Path | None = None
) -> dict[str, Any]:
    """Dispatch with ``--json`` and return the attempt record; fail on any error."""
    result = run_cli("dispatch", task_key, "--json", *with_prompt(args), cwd=cwd or repo)
    attempt: dict[str, Any] = json_out(result)["attempt"]
    return attempt


def attempts_of(run_cli: RunCli, repo: Path) -> list[dict[str, Any]]:
    """The store's rows for ``repo`` (the store may hold other tests' rows)."""
    attempts = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    root = str(repo.resolve())
    return [a for a in attempts if a["repository"] == root]


def show(run_cli: RunCli, ref: str, cwd: Path) -> dict[str, Any]:
    return json_out(run_cli("show", ref, "--json", cwd=cwd))


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


def assert_nothing_left_behind(run_cli: RunCli | None, repo: Path, orch_home: Path) -> None:
    """No orch branch, no worktree but the main one, no payload, and (if asked) no row."""
    assert orch_branches(repo) == []
    listed = worktrees(repo)
    assert [Path(w["worktree"]) for w in listed] == [repo.resolve()]
    assert payload_files(orch_home) == []
    if run_cli is not None:
        assert attempts_of(run_cli, repo) == []


def inside(path: str | Path, root: Path) -> bool:
    resolved, top = Path(path).resolve(), root.resolve()
    return resolved != top and resolved.is_relative_to(top)
