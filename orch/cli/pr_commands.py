"""``orch pr``: open a pull request for an attempt's branch."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orch.cli.common import actor, open_store, settings_from_env
from orch.cli.completion import complete_attempt


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--draft", is_flag=True, help="Open it as a draft pull request.")
@click.option(
    "--base",
    default=None,
    metavar="BRANCH",
    help="The branch to merge into (default: the repository's default branch on GitHub).",
)
@click.option(
    "--title", default=None, metavar="TEXT", help="Its title (default: task key: prompt's line)."
)
@click.option(
    "--body-file",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    default=None,
    help="Its body, from a file ('-' reads standard input); default: the task, the attempt, "
    "its base commit, its prompt and its newest check result.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the attempt as JSON.")
def pr(
    attempt: str,
    draft: bool,
    base: str | None,
    title: str | None,
    body_file: Path | None,
    as_json: bool,
) -> None:
    """Push ATTEMPT's branch to the repository's remote and open a pull request for it
    with gh (the GitHub CLI); its URL and number are recorded on the attempt, and the
    loop of orch serve / orch loop forwards failing checks and review comments to its
    agent from then on.

    Exit codes: 0 opened; 23 gh is missing or not logged in, the repository has no
    remote, or gh failed (nothing recorded); 8 unknown attempt or its branch is gone;
    12 it already has a pull request; 7 the push failed.
    """
    from orch.attempts.pull_request import PrRequest, open_pull_request
    from orch.git import Git

    body = None
    if body_file is not None:
        body = sys.stdin.read() if str(body_file) == "-" else _read(body_file)
    settings = settings_from_env()
    done = open_pull_request(
        open_store(settings),
        Git(settings.git_lock_timeout),
        PrRequest(attempt=attempt, draft=draft, base=base, title=title, body=body),
        actor(),
    )
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(attempt=done.to_dict()))
        return
    click.echo(f"{done.id}: pull request #{done.pr_number} {done.pr_url}")


def _read(path: Path) -> str:
    from orch.errors import InvalidInput

    try:
        return path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read --body-file {path}: {exc.strerror or exc}") from exc


COMMANDS = (pr,)
