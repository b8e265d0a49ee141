"""``orch mcp`` (issue 21, point 1): the installed entry point as a Model Context Protocol
server, driven by the SDK's own client over standard input and output. Each tool answers
with the very document the matching command prints with ``--json``; an orch failure is a
tool error carrying the ``--json`` error envelope; bad requests never end the server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from orch.cli.mcp_commands import TOOL_NAMES
from orch.models import State
from tests.support.cli import ORCH_BIN, RunCli, RunOrch, error_line
from tests.support.github import PR_URL, FakeGitHub
from tests.support.landing import attempt_with_commits
from tests.support.repos import branch_tip

if os.environ.get("CI"):
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client
else:  # off CI, an environment without the extra skips these tests with the reason
    anyio = pytest.importorskip("anyio")
    mcp = pytest.importorskip("mcp", reason="the mcp extra is not installed")
    ClientSession, StdioServerParameters, stdio_client = (
        mcp.ClientSession,
        mcp.StdioServerParameters,
        mcp.stdio_client,
    )

TOOLS = {
    "dispatch", "list", "show", "diff", "compare", "check", "send", "submit", "wait", "cancel",
    "land", "pr", "ports",
}  # fmt: skip


@asynccontextmanager
async def orch_mcp(cwd: Path) -> AsyncIterator[Any]:
    """A session with a real ``orch mcp`` process started in ``cwd``, with the test's
    environment (its orch home, its git identity)."""
    params = StdioServerParameters(
        command=ORCH_BIN, args=["mcp"], env=dict(os.environ), cwd=str(cwd)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: Any, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """Whether the call is a tool error, and its document (the text and the structured
    content are the same JSON)."""
    result = await session.call_tool(tool, arguments)
    document: dict[str, Any] = json.loads(result.content[0].text)
    assert result.structured_content == document
    return result.is_error, document


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario)


def cli_json(run_orch: RunOrch, *args: str, cwd: Path) -> dict[str, Any]:
    proc = run_orch(*args, "--json", cwd=cwd)
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def test_tools_their_input_schemas_and_tool_errors(repo: Path, run_orch: RunOrch) -> None:
    async def scenario() -> None:
        async with orch_mcp(repo) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == TOOLS == set(TOOL_NAMES)
            dispatch = tools["dispatch"].input_schema
            assert dispatch["required"] == ["task_key", "prompt"]
            optional = {"repo", "base_ref", "strict", "attempts", "workers", "sparse"}
            assert optional <= set(dispatch["properties"])
            timeout = tools["wait"].input_schema["properties"]["timeout"]
            assert (timeout["default"], timeout["maximum"], timeout["minimum"]) == (60, 600, 0)
            states = tools["list"].input_schema["$defs"]["State"]["enum"]
            assert states == [str(s) for s in State]
            assert tools["show"].input_schema["required"] == ["attempt"]
            assert tools["show"].annotations.read_only_hint is True

            failed, unknown = await call(session, "show", attempt="feedbeef")
            assert failed
            assert unknown == cli_json(run_orch, "show", "feedbeef", cwd=repo)
            assert unknown["error"]["name"] == "NotFound" and unknown["error"]["code"] == 8
            failed, bad_key = await call(session, "dispatch", task_key="../escape", prompt="x")
            assert failed and bad_key["error"]["name"] == "InvalidInput"
            assert bad_key["error"]["code"] == 2 and "task key" in bad_key["error"]["message"]
            failed, _ = await call(session, "diff", attempt="abc")  # a prefix too short
            assert failed
            # arguments the schema refuses, an unknown tool: the SDK answers, orch goes on
            too_long = await session.call_tool("wait", {"attempts": ["x"], "timeout": 601})
            assert too_long.is_error and "600" in too_long.content[0].text
            nameless = await session.call_tool("show", {})
            assert nameless.is_error
            assert (await session.call_tool("teleport", {"attempt": "x"})).is_error
            assert (await session.call_tool("land", {"attempt": "x"})).is_error  # attempts
            assert tools["land"].input_schema["properties"]["dry_run"]["default"] is True
            failed, listed = await call(session, "list")
            assert not failed and listed == {
                "version": 1,
                "attempts": [],
                "checks": {},
                "usage": {},
                "task_usage": {},
            }

            # calls run side by side (the SDK's worker threads): two dispatches at once
            made: list[dict[str, Any]] = []

            async def one(task_key: str) -> None:
                failed, document = await call(session, "dispatch", task_key=task_key, prompt="p")
                assert not failed, document
                made.append(document["attempt"])

            async with anyio.create_task_group() as group:
                for key in ("side-a", "side-b"):
                    group.start_soon(one, key)
            assert {a["task_key"] for a in made} == {"side-a", "side-b"}
            assert len({a["worktree_path"] for a in made}) == 2
            assert all(a["workspace_status"] == "ready" for a in made)

    run(scenario)


def test_dispatch_show_diff_list_ports_send_cancel_wait_compare_check_as_the_cli_prints_them(
    repo: Path, run_orch: RunOrch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"  # the server is started outside the repository
    elsewhere.mkdir()

    async def scenario() -> None:
        async with orch_mcp(elsewhere) as session:
            failed, made = await call(
                session, "dispatch", task_key="add-retries", prompt="Add retries", repo=str(repo)
            )
            assert not failed, made
            attempt = made["attempt"]
            assert attempt["state"] == "queued" and attempt["workspace_status"] == "ready"
            assert attempt["repository"] == str(repo)
            worktree = Path(attempt["worktree_path"])
            (worktree / "retries.py").write_text("RETRIES = 3\n")
            attempt_id = attempt["id"]

            for tool, args in (
                ("show", {"attempt": attempt_id}),
                ("diff", {"attempt": attempt_id}),
                ("list", {}),
                ("ports", {"attempt": attempt_id}),
            ):
                failed, document = await call(session, tool, **args)
                command = [tool, *args.values()]
                assert document == cli_json(run_orch, *command, cwd=repo), tool
            failed, diff = await call(session, "diff", attempt=attempt_id)
            assert [f["path"] for f in diff["files"]] == ["retries.py"]
            assert diff["files"][0]["status"] == "added"

            failed, sent = await call(session, "send", attempt=attempt_id, message="and tests")
            assert not failed and sent["continuation"] is None
            assert sent["message"]["attempt_id"] == attempt_id

            failed, waited = await call(session, "wait", attempts=[attempt_id], timeout=0.2)
            assert not failed  # how a wait ended is its result, not an error
            assert waited["timed_out"] is True and waited["all_succeeded"] is False

            failed, cancelled = await call(session, "cancel", attempts=[attempt_id])
            assert not failed
            [outcome] = cancelled["cancelled"]
            assert outcome["changed"] is True and outcome["attempt"]["state"] == "cancelled"
            assert [m["body"] for m in outcome["dropped"]] == ["and tests"]
            failed, waited = await call(session, "wait", attempts=[attempt_id[:6]])
            assert waited["timed_out"] is False and waited["all_succeeded"] is False
            assert waited == cli_json(run_orch, "wait", attempt_id, cwd=repo)
            # the command's own document for an attempt that had already ended
            again = cli_json(run_orch, "cancel", attempt_id, cwd=repo)
            assert again["cancelled"][0]["changed"] is False

            failed, best_of = await call(
                session, "dispatch", task_key="best-of", prompt="Try", repo=str(repo), attempts=2
            )
            assert not failed and best_of["failed"] == [] and best_of["warnings"] == []
            first, second = (a["id"] for a in best_of["attempts"])
            assert len({a["branch_name"] for a in best_of["attempts"]}) == 2
            failed, compared = await call(session, "compare", first=first, second=second)
            assert not failed and compared["files"] == []
            assert compared == cli_json(run_orch, "compare", first, second, cwd=repo)
            failed, of_task = await call(session, "compare", first="best-of")
            assert not failed and len(of_task["attempts"]) == 2
            assert of_task == cli_json(run_orch, "compare", "best-of", cwd=repo)
            # no [review] check in the repository: the command's error, as a tool error
            failed, unchecked = await call(session, "check", attempt=first)
            assert failed and unchecked["error"]["name"] == "ConfigError"
            assert unchecked == cli_json(run_orch, "check", first, cwd=repo)

    run(scenario)


def test_land_is_a_dry_run_unless_told_and_answers_as_the_cli(
    repo: Path, run_orch: RunOrch
) -> None:
    made = cli_json(run_orch, "dispatch", "mcp-land", "--prompt", "Add a file", cwd=repo)
    attempt = made["attempt"]
    worktree = Path(attempt["worktree_path"])
    (worktree / "landed.txt").write_text("from the attempt\n")
    subprocess.run(["git", "add", "landed.txt"], cwd=worktree, check=True)
    subprocess.run(["git", "commit", "-qm", "add landed.txt"], cwd=worktree, check=True)
    before = subprocess.run(
        ["git", "rev-parse", "main"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()

    async def scenario() -> None:
        async with orch_mcp(repo) as session:
            # queued: a dry run looks without force, a land is refused without it
            failed, looked = await call(session, "land", attempts=[attempt["id"]])
            assert not failed, looked
            [outcome] = looked["outcomes"]
            assert outcome["result"] == "would land" and "landed.txt" in outcome["diffstat"]
            failed, refused = await call(session, "land", attempts=[attempt["id"]], dry_run=False)
            assert failed and refused["outcomes"][0]["error"]["code"] == 22
            failed, landed = await call(
                session, "land", attempts=[attempt["id"]], dry_run=False, force=True, keep=True
            )
            assert not failed, landed
            assert landed["outcomes"][0]["result"] == "landed"
            failed, again = await call(session, "land", attempts=[attempt["id"]], dry_run=False)
            assert not failed and again["outcomes"][0]["result"] == "already landed"
            failed, unknown = await call(session, "land", attempts=["feedbeef"])
            assert failed and unknown["outcomes"][0]["error"]["name"] == "NotFound"

    run(scenario)
    after = subprocess.run(
        ["git", "log", "--format=%s", f"{before}..main"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert after == "mcp-land: Add a file\n"
    assert (repo / "landed.txt").read_text() == "from the attempt\n"  # main followed


def test_pr_opens_the_pull_request_and_answers_as_the_cli(
    repo: Path,
    tmp_path: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GitHub cannot be reached from tests: ``gh`` is the stand-in of
    ``tests/support/github.py`` on PATH (the gh boundary only); the push goes to a real
    bare repository."""
    github = FakeGitHub(tmp_path)
    for name, value in github.env.items():
        monkeypatch.setenv(name, value)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(bare)], cwd=repo, check=True)
    attempt = attempt_with_commits(run_cli, run_orch, repo, "mcp-pr")

    async def scenario() -> None:
        async with orch_mcp(repo) as session:
            failed, opened = await call(
                session, "pr", attempt=attempt["id"], draft=True, base="main", title="T"
            )
            assert not failed, opened
            recorded = opened["attempt"]
            assert (recorded["pr_url"], recorded["pr_number"]) == (PR_URL, 42)
            failed, again = await call(session, "pr", attempt=attempt["id"])
            assert failed and again["error"]["code"] == 12
            failed, unknown = await call(session, "pr", attempt="feedbeef")
            assert failed and unknown["error"]["code"] == 8

    run(scenario)
    [create] = [c for c in github.calls() if c[:2] == ["pr", "create"]]
    assert "--draft" in create and create[create.index("--title") + 1] == "T"
    assert create[create.index("--base") + 1] == "main"
    shown = cli_json(run_orch, "show", attempt["id"], cwd=repo)["attempt"]
    assert (shown["pr_url"], shown["pr_number"], shown["pr_state"]) == (PR_URL, 42, "open")
    branch = attempt["branch_name"]
    pushed = subprocess.run(
        ["git", "rev-parse", f"refs/heads/{branch}"],
        cwd=bare,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert pushed == branch_tip(repo, branch)  # the branch is on the remote, at its tip


def test_submit_queues_a_best_of_n_task_as_the_cli_does(repo: Path, run_orch: RunOrch) -> None:
    """The queue entry the tool records is the one ``orch submit --list --json`` then
    lists; what ``orch submit`` refuses, the tool refuses with the same error envelope."""

    async def scenario() -> None:
        async with orch_mcp(repo) as session:
            failed, made = await call(
                session,
                "submit",
                task_key="queued",
                prompt="do it",
                attempts=2,
                workers=["claude", "codex"],
            )
            assert not failed, made
            task = made["task"]
            assert (task["state"], task["attempts"], task["workers"]) == (
                "ready",
                2,
                ["claude", "codex"],
            )
            listed = cli_json(run_orch, "submit", "--list", cwd=repo)["tasks"]
            assert [t for t in listed if t["id"] == task["id"]] == [task]
            failed, refused = await call(
                session, "submit", task_key="queued", prompt="x", attempts=1, workers=["a", "b"]
            )
            assert failed and refused["error"]["code"] == 2
            assert "2 workers named for 1 attempt" in refused["error"]["message"]
            dropped = run_orch("submit", "--drop", str(task["id"]), cwd=repo)
            assert dropped.returncode == 0, dropped.stderr

    run(scenario)


def test_a_malformed_request_is_answered_and_the_server_goes_on(repo: Path) -> None:
    """Raw lines on the server's standard input: a line that is not JSON, a call without
    its parameters, then a proper start; the server answers what it can and ends cleanly
    when its input closes."""
    start = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    lines = [
        "this is not json",
        json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {}}),
        json.dumps(start),
    ]
    proc = subprocess.run(
        [ORCH_BIN, "mcp"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=repo,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    answers = {a["id"]: a for a in map(json.loads, proc.stdout.splitlines())}
    assert answers[7]["error"]["code"] == -32602
    assert answers[1]["result"]["serverInfo"]["name"] == "orch"
    assert "Traceback" not in proc.stderr


BLOCK_MCP = """
import sys


class _NoMcp:
    def find_spec(self, name, path=None, target=None):
        if name == "mcp" or name.startswith("mcp."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoMcp())
"""


def test_orch_mcp_without_the_sdk_says_how_to_install_it(repo: Path, tmp_path: Path) -> None:
    """The SDK is installed here, so its absence is simulated, and only that: a
    sitecustomize module in PYTHONPATH puts a finder first on sys.meta_path that refuses to
    import ``mcp`` (as Python does for a missing package); everything else is the
    installed ``orch`` as it is."""
    site = tmp_path / "no-mcp"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_MCP)
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [ORCH_BIN, "mcp"], capture_output=True, text=True, cwd=repo, env=env, timeout=60
    )
    assert proc.returncode == 19, proc.stderr
    assert proc.stdout == ""
    line = error_line(proc.stderr)
    assert line.endswith("not installed: pip install 'orch-worktrees[mcp]'"), line
    # the rest of orch works without the extra
    listed = subprocess.run(
        [ORCH_BIN, "list"], capture_output=True, text=True, cwd=repo, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
