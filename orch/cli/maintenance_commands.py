"""Commands that keep disk and store tidy: cleanup and doctor."""

from __future__ import annotations

import os
import sys
import threading

import click

from orch.cli.common import STATE_NAMES, actor, open_store, settings_from_env
from orch.cli.completion import complete_attempt, complete_task_key

EXIT_PROBLEMS_LEFT = 18  # orch doctor: problems found and not (all) repaired
EXIT_SKIPPED = 20  # orch cleanup: at least one attempt was skipped (left as it was)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


@click.command()
@click.argument("attempts", nargs=-1, shell_complete=complete_attempt)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATE_NAMES),
    help="Attempts in this state (repeatable).",
)
@click.option(
    "--task",
    "task_key",
    default=None,
    shell_complete=complete_task_key,
    help="Attempts of this task key.",
)
@click.option("--older-than", default=None, help="Ended longer ago than this: 7d, 12h, 30m.")
@click.option("--all-terminal", is_flag=True, help="Every attempt that has ended.")
@click.option("--dry-run", is_flag=True, help="Print what would go and the disk it frees.")
@click.option(
    "--force",
    is_flag=True,
    help="Also clean queued attempts, and save unsaved work to the archive first "
    "instead of skipping.",
)
@click.option("--keep-branch", is_flag=True, help="Remove the worktree but keep the branch.")
@click.option(
    "--to-pool",
    is_flag=True,
    help="Return worktrees with nothing unsaved to the repository's warm pool (up to its "
    "size) instead of deleting them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def cleanup(
    ctx: click.Context,
    attempts: tuple[str, ...],
    states: tuple[str, ...],
    task_key: str | None,
    older_than: str | None,
    all_terminal: bool,
    dry_run: bool,
    force: bool,
    keep_branch: bool,
    to_pool: bool,
    as_json: bool,
) -> None:
    """Remove the worktrees, branches and payloads of ended attempts, losing nothing.

    Attempts whose worker may be alive, or that have not ended, are skipped with the
    reason. Uncommitted changes, untracked files and commits that no other branch or
    remote keeps make orch skip the attempt, or with --force save them under
    $ORCH_HOME/archive first (the attempt becomes 'archived'; 'orch show' says where).
    Running it again is a quiet success: already clean attempts are only counted.
    Exit 0 when nothing was skipped, 20 when any attempt was skipped (left as it was).
    """
    from orch.attempts.cleanup import CleanupRequest, parse_age
    from orch.attempts.cleanup import cleanup as run_cleanup
    from orch.faults import checkpoint_from_env
    from orch.git import Git
    from orch.models import State

    request = CleanupRequest(
        refs=attempts,
        states=tuple(State(s) for s in states),
        task_key=task_key,
        older_than=parse_age(older_than) if older_than is not None else None,
        all_terminal=all_terminal,
        dry_run=dry_run,
        force=force,
        keep_branch=keep_branch,
        to_pool=to_pool,
    )
    settings = settings_from_env()
    progress = _Progress(enabled=not as_json and sys.stderr.isatty())
    result = run_cleanup(
        open_store(settings),
        request,
        settings,
        Git(settings.git_lock_timeout),
        actor(),
        on_item=progress.tick,
        checkpoint=checkpoint_from_env(os.environ),
    )
    progress.done()
    items, count = result.items, result.totals()
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(dry_run=dry_run, items=[i.to_dict() for i in items], totals=count))
        if count["skip"]:
            ctx.exit(EXIT_SKIPPED)
        return
    verb = {
        "remove": "would remove" if dry_run else "removed",
        "archive": "would archive" if dry_run else "archived",
        "skip": "skipped",
    }
    for item in items:
        if item.action == "clean":
            continue  # nothing happened to it: counted in the summary, not a line each
        what = ", ".join(item.removed) or "nothing"
        line = f"{verb[item.action]:<14} {item.attempt.id}  {item.attempt.task_key}"
        if item.action in ("remove", "archive"):
            line += f"  ({what}"
            line += f"; {_size(item.bytes)})" if dry_run else ")"
            if item.archive_path:
                line += f"  saved to {item.archive_path}"
            elif item.action == "archive":
                line += f"  {item.reason}"
        else:
            line += f": {item.reason}"
        click.echo(line)
        copy = item.remote_branch
        if copy is not None:
            if copy.failed:
                click.echo(f"Warning: {item.attempt.id}: {copy.said}", err=True)
            else:
                click.echo(f"{'':<14} {item.attempt.id}  {copy.said}")
    summary = (
        f"{count['remove'] + count['archive']} to clean up, {_size(count['bytes'])} would be freed"
        if dry_run
        else f"{count['remove']} removed, {count['archive']} archived"
    )
    click.echo(f"{summary}, {count['skip']} skipped, {count['clean']} already clean")
    if count["skip"]:
        ctx.exit(EXIT_SKIPPED)


class _Progress:
    """A one-line progress counter on a terminal (attempts finish in any order)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.count, self.lock = enabled, 0, threading.Lock()

    def tick(self, item: object) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.count += 1
            click.echo(f"\rcleaning up: {self.count} done", nl=False, err=True)

    def done(self) -> None:
        if self.enabled and self.count:
            click.echo("\r" + " " * 40 + "\r", nl=False, err=True)


@click.command()
@click.option("--fix", is_flag=True, help="Repair what was found (saving unsaved work first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(ctx: click.Context, fix: bool, as_json: bool) -> None:
    """Reconcile the store with git and the disk; --fix repairs.

    Finds attempts stuck in provisioning, rows whose worktree is gone, worktrees,
    directories and branches under orch's names that no attempt owns, payloads without
    attempts and attempts without payloads, and git's stale worktree bookkeeping. Nothing
    with unsaved work is removed before it is saved under $ORCH_HOME/archive.
    Exit 0 when all is well (or all was repaired), 18 when problems remain.
    """
    from orch.attempts.doctor import doctor as run_doctor
    from orch.faults import checkpoint_from_env
    from orch.git import Git

    settings = settings_from_env()
    findings = run_doctor(
        open_store(settings),
        settings,
        Git(settings.git_lock_timeout),
        actor(),
        fix,
        checkpoint_from_env(os.environ),
    )
    left = [f for f in findings if not f.fixed]
    if as_json:
        from orch.cli.render import to_json

        click.echo(
            to_json(fix=fix, findings=[f.to_dict() for f in findings], problems_left=len(left))
        )
    else:
        for f in findings:
            status = "fixed" if f.fixed else ("FAILED" if f.error else "found")
            click.echo(f"{status:<6} {f.kind:<19} {f.subject}: {f.detail}")
            if f.fixed:
                click.echo(
                    f"       did: {f.repair}"
                    + (f"; saved to {f.archive_path}" if f.archive_path else "")
                )
            elif f.error:
                click.echo(f"       could not {f.repair}: {f.error}")
            else:
                click.echo(f"       --fix would: {f.repair}")
        if not findings:
            click.echo("all consistent: store, worktrees, branches and payloads agree")
        elif left:
            click.echo(
                f"{len(left)} problem(s) left" + ("" if fix else "; run 'orch doctor --fix'")
            )
    if left:
        ctx.exit(EXIT_PROBLEMS_LEFT)


COMMANDS = (cleanup, doctor)
