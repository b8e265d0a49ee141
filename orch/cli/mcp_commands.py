"""``orch mcp``: start the MCP server (orch.cli.mcp_server) once its SDK is known to be
installed; without it, one line that says how to install it (exit 19, like a dashboard
that cannot start). Never imports the SDK itself."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orch.cli.common import actor, settings_from_env
from orch.errors import McpUnavailable

INSTALL_HINT = "pip install 'orch-worktrees[mcp]'"
# the tools orch.cli.mcp_server serves, named here too so that docs and help can be
# checked without the SDK
TOOL_NAMES = (
    "dispatch",
    "list",
    "show",
    "diff",
    "compare",
    "check",
    "send",
    "submit",
    "wait",
    "cancel",
    "land",
    "pr",
    "ports",
)


@click.command(name="mcp")
def mcp_command() -> None:
    """Serve orch's tools to coding agents over MCP on standard input and output.

    Tools: dispatch, list, show, diff, compare, check, send, submit, wait, cancel, land (a
    dry run unless dry_run is false), pr, ports; each answers
    with the JSON of the matching command's --json. Add it to Claude Code with
    'claude mcp add orch -- orch mcp'. Needs the mcp extra
    (pip install 'orch-worktrees[mcp]'); exit 19 without it.
    """
    try:
        from orch.cli import mcp_server
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("mcp", "pydantic"):
            raise  # a module of orch's own is missing: a bug, with its traceback
        raise McpUnavailable(
            f"orch mcp needs the MCP SDK, which is not installed: {INSTALL_HINT}"
        ) from exc
    from orch.git import Git

    settings = settings_from_env()
    if sys.stdin.isatty():  # the protocol's client is an agent, not a terminal
        click.echo(
            "orch mcp speaks MCP on standard input and output: let an agent start it "
            "(claude mcp add orch -- orch mcp); Ctrl-D ends it.",
            err=True,
        )
    orch = mcp_server.Orch(settings, Git(settings.git_lock_timeout), actor(), Path.cwd())
    mcp_server.serve(orch)


COMMANDS = (mcp_command,)
