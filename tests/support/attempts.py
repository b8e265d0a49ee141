"""Attempts through the CLI: dispatch, list, show, work, cancel, doctor; and the checks that
a failure left nothing behind or that a repository is consistent.

Everything asks git, the file system or orch itself what is there. Rows are always
filtered by repository because the PostgreSQL test database is shared by every test of one
xdist worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import RunCli, RunOrch, json_out
from tests.support.repos import orch_branches, worktrees

LIVE = ("ready", "reused")

# An agent that commits, edits a tracked file, adds an untracked file and an ignored one.
AGENT_LEAVES_WORK = (
    "printf 'committed by the agent\\n' > agent.txt && git add agent.txt && "
    "git commit -q -m 'agent commit' && "
    "printf 'uncommitted edit\\n' >> src/d0/f0.txt && "
    "mkdir -p notes && printf 'untracked\\n' > notes/todo.txt && "
    "mkdir -p build && printf 'ignored\\n' > build/out.log"
)


def with_prompt(args: tuple[str, ...]) -> tuple[str, ...]:
    """``args`` with a prompt unless they give one: dispatch refuses an empty prompt."""
    if any(a.startswith(("--prompt", "--allow-empty-prompt")) for a in args):
        return args
    return ("--prompt", "do it", *args)


def dispatch(
    run_cli: RunCli, repo: Path, task_key: str, *args: str, cwd: Path | None = None
) -> dict[str, Any]:
    """Dispatch with ``--json`` and return the attempt record; fail on any error. A prompt
    is given unless ``args`` give one."""
    result = run_cli("dispatch", task_key, "--json", *with_prompt(args), cwd=cwd or repo)
    attempt: dict[str, Any] = json_out(result)["attempt"]
    return attempt


def attempts_of(run_cli: RunCli, repo: Path) -> list[dict[str, Any]]:
    """The store's rows for ``repo`` (the store may hold other tests' rows)."""
    attempts = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    root = str(repo.resolve())
    return [a for a in attempts if a["repository"] == root]


def show(run_cli: RunCli, ref: str, cwd: Path | None = None) -> dict[str, Any]:
    """``orch show REF --json``: the whole envelope."""
    return json_out(run_cli("show", ref, "--json", cwd=cwd))


def shown_attempt(run_cli: RunCli, repo: Path, attempt_id: str) -> dict[str, Any]:
    """``orch show ID --json``: only the attempt record."""
    attempt: dict[str, Any] = show(run_cli, attempt_id, cwd=repo)["attempt"]
    return attempt


def work(run_orch: RunOrch, repo: Path, attempt_id: str, script: str = "true") -> None:
    """Let the reference worker run ``script`` in the attempt's worktree; it succeeds."""
    proc = run_orch("work", "--attempt", attempt_id, "--", "sh", "-c", script, cwd=repo)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith(f"{attempt_id} succeeded"), proc.stdout


def cancel(run_cli: RunCli, repo: Path, attempt_id: str) -> None:
    result = run_cli("cancel", attempt_id, cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{attempt_id} cancelled"


def payload_files(orch_home: Path) -> list[Path]:
    inbox = orch_home / "inbox"
    return sorted(inbox.iterdir()) if inbox.is_dir() else []


def assert_nothing_left_behind(run_cli: RunCli | None, repo: Path, orch_home: Path) -> None:
    """No orch branch, no worktree but the main one, no payload, and (if asked) no row."""
    assert orch_branches(repo) == []
    listed = worktrees(repo)
    assert [Path(w["worktree"]) for w in listed] == [repo.resolve()]
    assert payload_files(orch_home) == []
    if run_cli is not None:
        assert attempts_of(run_cli, repo) == []


def doctor(run_cli: RunCli, repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("doctor", "--json", *args, cwd=repo)
    assert result.exit_code in (0, 18), (result.exit_code, result.output)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    assert data["problems_left"] == len([f for f in data["findings"] if not f["fixed"]])
    assert (result.exit_code == 18) == (data["problems_left"] > 0), data
    return result.exit_code, data


def kinds(data: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in data["findings"])


def assert_consistent(run_cli: RunCli, repo: Path, home: Path) -> None:
    """What the issue calls consistent, checked against git and the disk, then doctor."""
    rows = attempts_of(run_cli, repo)
    assert not [r["id"] for r in rows if r["workspace_status"] == "provisioning"]
    live = {Path(r["worktree_path"]) for r in rows if r["workspace_status"] in LIVE}
    # no row pointing at nothing
    for path in live:
        assert path.is_dir(), f"a row with a live workspace points at nothing: {path}"
    # no orphan worktree: the main one plus the live rows', nothing stale
    listed = worktrees(repo)
    assert Path(listed[0]["worktree"]) == repo.resolve()
    assert {Path(w["worktree"]) for w in listed[1:]} == live, listed
    assert not [w for w in listed if "prunable" in w], listed
    # no orphan branch: every orch branch is named by a row that did not fail to provision
    owned = {r["branch_name"] for r in rows if r["workspace_status"] != "failed"}
    for ref in orch_branches(repo):
        assert ref.removeprefix("refs/heads/") in owned, f"orphan branch {ref}"
    # nothing under the worktree root that no live row owns
    roots = {Path(r["worktree_path"]).parent for r in rows if r["worktree_path"]}
    for root in roots:
        if root.is_dir():
            assert set(root.iterdir()) <= live, sorted(root.iterdir())
    # payloads: one per row that has one, no stray or partial files
    ids = {r["id"] for r in rows}
    for path in payload_files(home):
        assert not path.name.startswith("."), f"partial payload {path}"
        assert path.name.removesuffix(".json") in ids, f"payload without a row {path}"
    for r in rows:
        if r["workspace_status"] in LIVE and r["state"] in ("queued", "running"):
            assert Path(r["payload_path"]).is_file(), f"row without a payload {r['id']}"
    # no port bundle stays leased to a workspace that is gone
    for r in rows:
        if r["workspace_status"] not in LIVE:
            held = run_cli("ports", r["id"], "--json", cwd=repo)
            assert held.exit_code == 8, (r["id"], r["workspace_status"], held.output)
    code, data = doctor(run_cli, repo)
    assert code == 0, data
    assert data["findings"] == []


def repaired(run_cli: RunCli, repo: Path, home: Path) -> dict[str, Any]:
    """``orch doctor --fix`` exits 0 and leaves everything consistent; returns its report."""
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert_consistent(run_cli, repo, home)
    return data
