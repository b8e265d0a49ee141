"""``orch check``: run the repository's check command on an attempt."""

from __future__ import annotations

import os

import click

from orch.cli.common import actor, open_store, settings_from_env
from orch.cli.completion import complete_attempt


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--json", "as_json", is_flag=True, help="Print the check's run as JSON.")
@click.pass_context
def check(ctx: click.Context, attempt: str, as_json: bool) -> None:
    """Run the repository's check command in ATTEMPT's worktree and record the result.

    The command is [review] check in the repository's orch.toml, run with sh -c in the
    attempt's worktree with its port bundle in the environment (ORCH_PORT_*), killed with
    its process group after [review] check_timeout seconds (default 600). Its output is
    appended to the attempt's log (orch log); its exit code and duration are recorded as
    a run of kind check (orch show, orch compare, orch list --json). A check never runs
    while an agent or another check runs in that worktree.

    Exit codes: 0 the check passed; 14 it failed or timed out; 10 another process works
    in the worktree; 11 no check is configured; 8 unknown attempt, or its worktree is gone.
    """
    from orch.attempts.check import check_attempt
    from orch.cli.compare_render import check_dict, check_words
    from orch.errors import CheckFailed

    settings = settings_from_env()
    run = check_attempt(open_store(settings), settings, attempt, actor(), os.environ)
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(attempt=run.attempt_id, check=check_dict(run)))
    else:
        click.echo(f"check of {run.attempt_id} {check_words(run)}; output in {run.log_path}")
    if run.result != "passed":
        # the check's answer, not orch's failure (like orch wait's exit 14): the result
        # above stands (with --json, the only JSON on stdout), the line says where to look
        what = "timed out" if run.timed_out else f"exited with {run.exit_code}"
        click.echo(
            f"Error: the check of attempt {run.attempt_id} {what} ('orch log {run.attempt_id}')",
            err=True,
        )
        ctx.exit(CheckFailed.exit_code)


COMMANDS = (check,)
