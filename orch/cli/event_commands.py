"""``orch events``: the event stream, the deliveries that failed, and the deliverer."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from orch.cli.common import open_store, settings_from_env
from orch.cli.completion import complete_attempt

if TYPE_CHECKING:
    from orch.models import AttemptEvent
    from orch.store import Store


@click.group(invoke_without_command=True)
@click.option(
    "--attempt",
    "attempt_ref",
    default=None,
    shell_complete=complete_attempt,
    help="Only this attempt's events.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they come.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many of the newest events to list.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON (with --follow: one event document per line).",
)
@click.option("--failed", is_flag=True, help="List the deliveries that failed for good.")
@click.option(
    "--retry",
    "retry_event",
    type=int,
    default=None,
    metavar="EVENT_ID",
    help="Try the failed deliveries of this event again.",
)
@click.option("--all-failed", is_flag=True, help="Try every failed delivery again.")
@click.pass_context
def events(
    ctx: click.Context,
    attempt_ref: str | None,
    follow: bool,
    limit: int,
    as_json: bool,
    failed: bool,
    retry_event: int | None,
    all_failed: bool,
) -> None:
    """List (and with --follow, follow) the events of attempts: every change of an
    attempt's state or workspace, its checks and lands.

    Events also go to the sinks configured in orch.toml or the user config ([[hooks]],
    [[webhooks]], [notify]), each once; --failed lists the deliveries that failed for
    good, and --retry EVENT_ID (or --all-failed) tries them again (exit 8: no such
    event; 2: it has no failed deliveries).
    """
    if ctx.invoked_subcommand is not None:
        return
    from orch.attempts.events import listing
    from orch.cli.render import to_json
    from orch.git import Git

    settings = settings_from_env()
    store = open_store(settings)
    for line in listing.secrets_in_git(store, settings, Git(settings.git_lock_timeout)):
        click.echo(f"warning: {line}", err=True)
    if retry_event is not None or all_failed:
        if retry_event is not None and all_failed:
            from orch.errors import InvalidInput

            raise InvalidInput("give --retry EVENT_ID or --all-failed, not both")
        again = listing.retry(store, settings, os.environ, retry_event)
        if as_json:
            click.echo(to_json(deliveries=[d.to_dict() for d in again]))
        else:
            click.echo(f"{len(again)} deliveries pending again: " + ", ".join(d.key for d in again))
        return
    if failed:
        gone = listing.failed(store)
        if as_json:
            click.echo(to_json(deliveries=[d.to_dict() for d in gone]))
        for d in [] if as_json else gone:
            click.echo(
                f"event {d.event_id} ({d.kind}) to {d.sink}: {d.tries} tries, "
                f"last {d.last_error or '?'}"
            )
        return
    attempt_id = store.get(attempt_ref).id if attempt_ref is not None else None
    shown = listing.recent(store, attempt_id, limit)
    if as_json and not follow:
        click.echo(to_json(events=listing.documents(store, shown)))
        return
    _print(store, shown, as_json)
    if follow:
        after = shown[-1].id if shown else 0
        try:
            for batch in listing.follow(store, attempt_id, after):
                _print(store, batch, as_json)
        except KeyboardInterrupt:
            return


def _print(store: Store, batch: list[AttemptEvent], as_json: bool) -> None:
    from orch.attempts.events import listing

    for doc in listing.documents(store, batch):
        if as_json:
            click.echo(json.dumps(doc, sort_keys=True, ensure_ascii=False))
            continue
        attempt = doc["attempt"] or {}
        state = f" -> {doc['state']}" if doc["state"] else ""
        detail = ", ".join(f"{k}={v}" for k, v in sorted(doc["detail"].items()) if v is not None)
        click.echo(
            f"{doc['id']:>6} {doc['created_at'][:19]} {doc['attempt_id']} "
            f"{attempt.get('task_key', '?')} {doc['kind']}{state}"
            + (f"  {detail[:120]}" if detail else "")
        )
    # a pipe (orch events -f | grep …) sees each line as it comes
    sys.stdout.flush()


@events.command()
@click.option("--lock-fd", type=int, default=None, hidden=True)
def deliver(lock_fd: int | None) -> None:
    """Deliver pending events to the configured sinks, then exit (a command that makes a
    change starts this in the background when no loop runs). Exits at once when another
    deliverer runs for this store."""
    from orch import fslock
    from orch.attempts.events.kick import deliver_until_idle, lock_path

    settings = settings_from_env()
    held = fslock.HeldLock(lock_path(settings), lock_fd) if lock_fd is not None else None
    store = open_store(settings, kick=False)
    if not deliver_until_idle(store, settings, os.environ, _log, held):
        click.echo("another deliverer runs for this store: nothing to do")


def _log(line: str) -> None:
    import datetime as dt

    click.echo(f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} pid {os.getpid()}: {line}")


COMMANDS = (events,)
