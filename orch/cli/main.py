"""``orch``: parse, resolve settings, make one call, render.

Heavy modules (SQLAlchemy, Alembic, jsonschema) are imported inside the commands that
need them so that ``orch --help`` stays fast. ``OrchGroup`` is the one funnel that turns
an ``OrchError`` into ``Error: <message>`` on stderr and its documented exit code; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orch import __version__
from orch.cli import startup
from orch.cli.common import (
    STATE_NAMES,
    OrchGroup,
    actor,
    best_of_n_options,
    failure_documented,
    open_store,
    read_prompt,
    repo_or_cwd,
    settings_from_env,
    task_options,
)
from orch.cli.completion import complete_attempt, complete_task_key

LIST_PAGE = 100  # the newest attempts a table shows unless told otherwise

if TYPE_CHECKING:
    from orch.attempts.dispatch import DispatchRequest
    from orch.config import Settings


@click.group(cls=OrchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="orch", message="%(prog)s (orch-worktrees) %(version)s"
)
def cli() -> None:
    """Run many coding-agent attempts on one repository at once.

    Each attempt gets a committed base, its own branch and git worktree, a row in the
    attempt store and a JSON payload in the inbox that a worker picks up.
    """


@cli.command()
@click.argument("task_key", shell_complete=complete_task_key)
@task_options
@best_of_n_options
@click.option(
    "--base-ref",
    default=None,
    help="Branch, tag, SHA or expression (HEAD~2) to start from; resolved once. "
    "Default: HEAD of the main worktree.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a repository with uncommitted changes unless --base-ref is given.",
)
@click.option(
    "--phase",
    default=None,
    help="The task's phase this attempt is (discovery, planning, implementation...).",
)
@click.option(
    "--reuse-workspace",
    is_flag=True,
    help="Work in the task's existing worktree and branch (a later phase) instead "
    "of new ones; inside a linked worktree or outside git, work where orch runs.",
)
@click.option(
    "--host",
    default=None,
    help="Provision on another machine: 'any', or a host name (see docs/team.md).",
)
@click.option(
    "--sparse",
    "sparse",
    multiple=True,
    metavar="PATH",
    help="Check out only this directory (repeatable; cone-mode sparse checkout). "
    "Default: [workspace] sparse of the repository's config, else everything.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the full attempt record as JSON (with --attempts: every record).",
)
def dispatch(
    task_key: str,
    repo: Path | None,
    base_ref: str | None,
    strict: bool,
    prompt: str | None,
    prompt_file: Path | None,
    allow_empty_prompt: bool,
    workers: tuple[str, ...],
    attempts: int | None,
    phase: str | None,
    reuse_workspace: bool,
    host: str | None,
    sparse: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create an attempt of TASK_KEY: base, branch, worktree, store row and payload.

    Prints the attempt id (or the record with --json); with --attempts N, every id,
    one per line. Exit codes: 2 bad input (an empty prompt without
    --allow-empty-prompt), 3 unusable repository, 4 bad base ref, 5 dirty repository in
    --strict mode, 6 store error, 7 workspace error, 10 a lock stayed busy, 14 some of
    the N attempts failed to provision (the others stand).
    """
    from orch.attempts.dispatch import DispatchRequest, spread_workers

    text = read_prompt(prompt, prompt_file)
    per_attempt = spread_workers(workers, attempts)
    worker = per_attempt[0]
    settings = settings_from_env()
    request = DispatchRequest(
        task_key=task_key,
        repo_path=repo_or_cwd(repo),
        base_ref=base_ref,
        strict=strict,
        prompt=text,
        worker=worker,
        phase=phase,
        reuse_workspace=reuse_workspace,
        host=host,
        sparse=sparse,
        allow_empty_prompt=allow_empty_prompt,
    )
    if attempts is not None or len(workers) > 1:
        return _dispatch_many(request, per_attempt, settings, as_json)
    from orch.attempts.dispatch import dispatch as run_dispatch
    from orch.faults import checkpoint_from_env
    from orch.git import Git

    early_check = startup.take_dirty_check(request.repo_path)
    try:
        result = run_dispatch(
            request,
            settings,
            Git(settings.git_lock_timeout),
            lambda: open_store(settings),
            actor(),
            checkpoint_from_env(os.environ),
            early_dirt_check=early_check,
        )
    finally:
        if early_check is not None:
            early_check.cancel()  # unused (a linked worktree, an error); read ones stay
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        from orch.cli.json_bodies import dispatch_body
        from orch.cli.render import to_json

        click.echo(to_json(**dispatch_body(result)))
    else:
        click.echo(result.attempt.id)


def _dispatch_many(
    request: DispatchRequest,
    workers: tuple[str | None, ...],
    settings: Settings,
    as_json: bool,
) -> None:
    """``orch dispatch --attempts N``: every id made, one per line (or every record);
    exit 14 naming the attempts that failed to provision when not all were made."""
    from orch.attempts.dispatch import dispatch_many
    from orch.errors import NotAllDispatched
    from orch.faults import checkpoint_from_env
    from orch.git import Git

    early_check = startup.take_dirty_check(request.repo_path)
    try:
        result = dispatch_many(
            request,
            workers,
            settings,
            Git(settings.git_lock_timeout),
            lambda: open_store(settings),
            actor(),
            checkpoint_from_env(os.environ),
            early_dirt_check=early_check,
            # each id as soon as its attempt is ready: an interrupted dispatch has said
            # what it made
            on_made=None if as_json else lambda attempt: click.echo(attempt.id),
        )
    finally:
        if early_check is not None:
            early_check.cancel()
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        from orch.cli.json_bodies import dispatch_many_body
        from orch.cli.render import to_json

        click.echo(to_json(**dispatch_many_body(result)))
        if result.failed:
            failure_documented()  # the records made are worth more than the error document
    if result.failed:
        raise NotAllDispatched(result.failure_message())


@cli.command(name="list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATE_NAMES),
    help="Only attempts in this state (repeatable).",
)
@click.option(
    "--task",
    "task_key",
    default=None,
    shell_complete=complete_task_key,
    help="Only attempts of this task key.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help=f"At most this many (the table's default: {LIST_PAGE}).",
)
@click.option("--all", "everything", is_flag=True, help="Every attempt, however many.")
@click.option(
    "--before",
    default=None,
    metavar="ID",
    shell_complete=complete_attempt,
    help="The page after this attempt: those listed after it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(
    states: tuple[str, ...],
    task_key: str | None,
    limit: int | None,
    everything: bool,
    before: str | None,
    as_json: bool,
) -> None:
    """List attempts, newest first, with what each changed.

    The table shows a page (the newest 100; --limit, --all, --before ID for the next
    page) and says on stderr how many more there are, up to 1,000 ("1,000+ older
    attempts": counting further would cost more the longer the history). --json lists
    every attempt unless --limit or --before is given (a script must not act on a list cut
    short without asking), and then says "more": how many were left out ("more_capped":
    true when that count stopped at 1,000 and there are more).

    AHEAD, FILES and +/- count the attempt's committed work against its base_commit, as
    recorded when its branch last moved (by orch work, orch check, orch compare or the
    loop of orch serve); '-' when nothing was recorded yet. orch show counts a live
    worktree as it is. --json adds "checks": the newest check run of each attempt that
    has one, by attempt id; "usage": the tokens and cost its agent reported, by attempt
    id; "task_usage": the same summed by task key.
    """
    from orch.attempts.lifecycle import reap
    from orch.attempts.queries import listing
    from orch.cli.render import attempts_table, to_json
    from orch.models import State, count_text

    settings = settings_from_env()
    store = open_store(settings)
    reap(store, actor(), host=settings.host_name)
    if everything and limit is not None:
        from orch.errors import InvalidInput

        raise InvalidInput("--all and --limit contradict each other: give one")
    if limit is None and not everything and not as_json:
        limit = LIST_PAGE
    found = listing(store, tuple(State(s) for s in states), task_key, limit, before, as_json)
    if as_json:
        click.echo(to_json(**found.to_dict()))
        return
    click.echo(attempts_table(list(found.attempts), dt.datetime.now(dt.UTC)))
    if found.more:
        last = found.attempts[-1].id
        plural = "s" if found.more != 1 or found.more_capped else ""
        click.echo(
            f"{count_text(found.more, found.more_capped)} older attempt{plural} not shown: "
            f"orch list --before {last} (or --all)",
            err=True,
        )


@cli.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(attempt: str, as_json: bool) -> None:
    """Show one attempt and its events. ATTEMPT is an id (or prefix) or a payload path."""
    from orch.attempts.changes import show as run_show
    from orch.attempts.lifecycle import reap
    from orch.cli.render import attempt_detail, to_json
    from orch.git import Git

    settings = settings_from_env()
    store = open_store(settings)
    reap(store, actor(), host=settings.host_name)
    detail = run_show(store, Git(settings.git_lock_timeout), attempt)
    if as_json:
        click.echo(to_json(**detail.to_dict()))
    else:
        click.echo(attempt_detail(detail))


@cli.command()
@click.argument("task_key", shell_complete=complete_task_key)
@click.option(
    "--repo",
    type=click.Path(path_type=Path),
    default=None,
    help="Only this repository's mapping (default: every repository's).",
)
def release(task_key: str, repo: Path | None) -> None:
    """Forget which worktree TASK_KEY's phases reuse; the next phase gets a fresh one.

    The worktree and branch themselves are left alone (orch cleanup removes them).
    """
    from orch.git import Git

    settings = settings_from_env()
    repository = None
    if repo is not None:
        repository = str(Git(settings.git_lock_timeout).discover(repo.absolute()).root)
    count = open_store(settings).release_workspace(task_key, repository)
    click.echo(f"released {count} workspace mapping(s) of task {task_key!r}")


@click.group(cls=OrchGroup)
def db() -> None:
    """Inspect and migrate the attempt store."""


cli.add_command(db)


@db.command()
def upgrade() -> None:
    """Create or migrate the store to this orch's schema."""
    from orch.store import upgrade_store

    settings = settings_from_env()
    rev = upgrade_store(settings.database_url, settings.locks_dir)
    click.echo(f"store at revision {rev} (head)")


@db.command()
def current() -> None:
    """Print the store's schema revision and this orch's head."""
    from orch.store import store_revision
    from orch.store.revision import REVISIONS

    rev, head = store_revision(settings_from_env().database_url)
    if rev == head:
        state = "up to date"
    elif rev is None:
        state = "empty: 'orch db upgrade' creates it"
    elif rev in REVISIONS:
        state = "needs 'orch db upgrade'"
    else:
        state = "written by a newer orch: upgrade orch"
    click.echo(f"store revision {rev or 'none'}, orch head {head}: {state}")


def main() -> None:
    cli(prog_name="orch", complete_var=startup.COMPLETE_VAR)


# each command module and the subcommands it defines (its COMMANDS), imported when one of
# them is used (OrchGroup.add_module); test_cli checks the table against the modules
COMMAND_MODULES = {
    "worker_commands": ("claim", "heartbeat", "finish", "work"),
    "operator_commands": ("wait", "retry", "reassign", "cancel", "send", "log", "ports"),
    "maintenance_commands": ("cleanup", "doctor"),
    "pool_commands": ("pool",),
    "review_commands": ("diff", "compare"),
    "check_commands": ("check",),
    "land_commands": ("land",),
    "pr_commands": ("pr",),
    "serve_commands": ("submit", "loop", "serve"),
    "worktree_commands": ("path", "open", "restore"),
    "event_commands": ("events",),
    "completion": ("completion",),
    "mcp_commands": ("mcp",),
}
DB_COMMAND_MODULES = {"history_commands": ("prune", "stats")}


def _register() -> None:
    for module, names in COMMAND_MODULES.items():
        cli.add_module(f"orch.cli.{module}", names)
    for module, names in DB_COMMAND_MODULES.items():
        db.add_module(f"orch.cli.{module}", names)


_register()
