"""``orch db prune`` and ``orch db stats``: the store's history, its size and its end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from orch.cli.common import open_store, settings_from_env
from orch.cli.maintenance_commands import _size

if TYPE_CHECKING:
    from orch.models import Attempt


@click.command()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Remove attempts that ended and were cleaned up longer ago than this (e.g. 90d).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def prune(older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove the rows of attempts that ended and were cleaned up before then.

    Each attempt goes with its events, runs, messages, port lease and the deliveries of
    its events, in small batches (a worker's claim never waits long). Attempts still
    holding a worktree are never removed. Their archives stay on disk and are listed.
    """
    from orch.attempts.history import parse_older_than
    from orch.attempts.history import prune as run_prune

    age = parse_older_than(older_than)

    def named(batch: list[Attempt]) -> None:
        # as each batch goes: a prune cut off later (the store gone, Ctrl-C) has still
        # said where the archives of the attempts it removed are
        for attempt in batch:
            if attempt.archive_path:
                click.echo(f"archive kept  {attempt.archive_path}")

    store = open_store(settings_from_env())
    result = run_prune(store, age, dry_run=dry_run, on_batch=(lambda b: None) if as_json else named)
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(**result.to_dict()))
        return
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    rows = ", ".join(f"{n} {table}" for table, n in sorted(result.rows.items()) if n)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {result.attempts} attempt(s) that ended before "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC ({rows or 'no rows'}); "
        f"{len(result.archives)} archive(s) left on disk"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(as_json: bool) -> None:
    """Show the store's size, its rows per table, and attempts per state."""
    import dataclasses

    from orch.attempts.history import stats as read_stats

    found = read_stats(open_store(settings_from_env()))
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(**dataclasses.asdict(found)))
        return
    click.echo(f"store: {found.backend}, {_size(found.size_bytes)}")
    for table, n in found.rows.items():
        click.echo(f"  {table:<18} {n:>10} rows")
    click.echo("attempts by state: " + _counts(found.states))
    click.echo("attempts by workspace: " + _counts(found.workspaces))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"


COMMANDS = (prune, stats)  # of orch db
