"""``orch land``: take attempts' committed work into a target branch."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orch.cli.common import (
    REPO_OPTION,
    actor,
    drop_each,
    drop_option,
    open_store,
    settings_from_env,
)
from orch.cli.completion import complete_attempt
from orch.errors import OrchError

if TYPE_CHECKING:
    from orch.attempts.land import LandOutcome, LandRequest
    from orch.config import Settings
    from orch.git import Git, PendingDirtyCheck
    from orch.models import QueuedLand

STRATEGIES = ("squash", "rebase", "merge", "ff-only")


@click.command()
@click.argument("attempts", nargs=-1, shell_complete=complete_attempt)
@click.option(
    "--into",
    default=None,
    metavar="BRANCH",
    help="The target branch (default: the branch the attempt's base_ref named, else the "
    "branch checked out in the main worktree).",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="squash",
    show_default=True,
    help="squash: one commit; rebase: the attempt's commits replayed; merge: a merge "
    "commit; ff-only: only when the target is an ancestor of the attempt's tip.",
)
@click.option("--message", default=None, help="The squash or merge commit's message.")
@click.option("--no-check", is_flag=True, help="Do not run [review] check on the result.")
@click.option(
    "--resolve",
    is_flag=True,
    help="On a conflict, also send the attempt a follow-up naming the target commit and "
    "the conflicting paths, so that its agent rebases.",
)
@click.option("--keep", is_flag=True, help="Keep the attempt's worktree and branch after it lands.")
@click.option("--dry-run", is_flag=True, help="Say whether it would conflict, and the diffstat.")
@click.option("--force", is_flag=True, help="Land a running attempt's committed work.")
@click.option(
    "--strict", is_flag=True, help="Refuse an attempt with uncommitted work in its worktree."
)
@click.option(
    "--queue",
    is_flag=True,
    help="Queue the lands for the loop of orch serve / orch loop, which lands them in "
    "order; without ATTEMPTS, list the land queue with each entry's result.",
)
@drop_option("Take a waiting entry (its number in 'orch land --queue') out of the land queue.")
@REPO_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print each attempt's outcome as JSON.")
def land(
    attempts: tuple[str, ...],
    into: str | None,
    strategy: str,
    message: str | None,
    no_check: bool,
    resolve: bool,
    keep: bool,
    dry_run: bool,
    force: bool,
    strict: bool,
    queue: bool,
    drop: tuple[int, ...],
    repo: Path | None,
    as_json: bool,
) -> None:
    """Land ATTEMPTS' committed work into their target branch, in order.

    Conflicts are found without touching any worktree; the result is built with git's
    plumbing, checked with [review] check in a scratch worktree (unless --no-check), and
    the target moves only by compare-and-swap (a commit made to it meanwhile is never
    overwritten: the result is built again, a few times at most). A worktree that has the
    target checked out follows like git merge --ff-only; one whose uncommitted changes
    touch the landed files is refused before anything moves. Unless --keep, a landed
    attempt's worktree and branch are removed (orch cleanup's rules). Each attempt lands
    onto the result of the one before; one that fails is reported and skipped.

    Exit codes: 0 landed (or already landed); 21 a conflict (--dry-run: it would
    conflict); 22 refused (a running attempt without --force, no commits, nothing
    new to land, not a local branch, a dirty checkout of the target, --strict and
    uncommitted work, ff-only impossible); 8 unknown attempt or its branch is gone;
    12 the target kept moving; 14 the check failed on the result, or (several attempts)
    not all landed; 7 a git command failed or git is older than 2.38.

    --queue records the lands instead (exit 0; 8 an unknown attempt, 12 one that already
    waits in the queue): the loop of orch serve lands them in order, one at a time, and
    'orch land --queue' without ATTEMPTS lists each entry with its result. --drop ENTRY
    takes a waiting entry out of the queue (8 no such entry, 12 one being landed or
    ended).
    """
    from orch.errors import InvalidInput, NotAllLanded
    from orch.git import Git

    if drop:
        if attempts:
            raise InvalidInput("--drop takes entries of the land queue, not attempts")
        return _drop(settings_from_env(), drop, as_json)
    if not attempts and not queue:
        raise InvalidInput("name the attempts to land (or --queue to list the land queue)")
    if queue and (dry_run or force or strict):
        raise InvalidInput("--queue takes no --dry-run, --force or --strict")
    settings = settings_from_env()
    git = Git(settings.git_lock_timeout)
    early = {} if queue or (dry_run and not strict) else _look_early(settings, git, attempts)
    try:
        from orch.attempts.land import LandRequest, Strategy
        from orch.attempts.land import land as run_land
        from orch.faults import checkpoint_from_env

        repository = str(git.discover(repo.absolute()).root) if repo is not None else None
        request = LandRequest(
            refs=attempts,
            into=into,
            strategy=Strategy(strategy),
            message=message,
            check=not no_check,
            resolve=resolve,
            keep=keep,
            dry_run=dry_run,
            force=force,
            strict=strict,
            repository=repository,
        )
        if queue:
            return _queue(settings, request, as_json)
        outcomes = run_land(
            open_store(settings),
            settings,
            git,
            request,
            actor(),
            os.environ,
            checkpoint_from_env(os.environ),
            on_outcome=lambda outcome: None if as_json else _print(outcome, len(attempts) > 1),
            early=early,
        )
    finally:
        for unused in early.values():  # those the land did not take (it stops its own)
            unused.cancel()
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(outcomes=[o.to_dict() for o in outcomes]))
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return
    if as_json:
        from orch.cli.common import failure_documented

        failure_documented()
    error = failed[0].error
    if len(outcomes) == 1 and error is not None:
        raise error
    names = ", ".join(o.attempt.id if o.attempt else o.ref for o in failed)
    raise NotAllLanded(f"{len(failed)} of {len(outcomes)} attempts did not land: {names}")


def _look_early(
    settings: Settings, git: Git, refs: tuple[str, ...]
) -> dict[str, PendingDirtyCheck]:
    """Start looking at each named attempt's uncommitted work now, before the store is
    open: in a large worktree ``git status`` takes about as long as importing the store,
    and runs beside it. The worktree is found by the attempt id its name ends in; the land
    uses a look only when the store names the same worktree (and stops the others).

    At normal priority: at nice 19 the kernel left it queued behind this process on one
    core instead of moving it to the idle one (a 50k-file look took 630 ms instead of
    140, and the land waited for it)."""
    from orch.naming import worktrees_named

    early = {}
    for ref in dict.fromkeys(refs):
        found = worktrees_named(settings.worktree_root, ref)
        if len(found) == 1:
            with contextlib.suppress(OSError, OrchError):
                early[str(found[0])] = git.start_dirty_check(found[0])
    return early


def _print(outcome: LandOutcome, several: bool) -> None:
    """One attempt's outcome; a single attempt's failure is the funnel's one line."""
    for warning in outcome.warnings:
        click.echo(f"Warning: {warning}", err=True)
    who = outcome.attempt.id if outcome.attempt is not None else outcome.ref
    if outcome.result == "landed":
        click.echo(
            f"{who} landed into {outcome.target} as {(outcome.commit or '')[:12]} "
            f"({outcome.strategy}; check {outcome.check})"
        )
    elif outcome.result == "already landed":
        click.echo(f"{who} already landed into {outcome.target} as {(outcome.commit or '')[:12]}")
    elif outcome.result == "would land":
        click.echo(
            f"{who} would land into {outcome.target} cleanly ({outcome.strategy}, onto "
            f"{(outcome.old or '')[:12]}):"
        )
        click.echo((outcome.diffstat or "").rstrip("\n") or " (no changes)")
    elif outcome.error is not None and several:
        prefix = "would conflict: " if outcome.result == "would conflict" else ""
        click.echo(f"{who}: {prefix}{outcome.error.message}", err=True)
    if outcome.followup:
        click.echo(f"{who}: {outcome.followup}")
    if outcome.removed:
        click.echo(f"{who}: {outcome.removed}")


def _queue(settings: Settings, request: LandRequest, as_json: bool) -> None:
    """``--queue``: queue the lands, or list the queue."""
    from orch.attempts.land.queue import queue_lands
    from orch.cli.render import to_json

    store = open_store(settings)
    if request.refs:
        queued = queue_lands(store, settings, request.refs, request, actor())
        if as_json:
            click.echo(to_json(queued=[q.to_dict() for q in queued]))
            return
        for entry in queued:
            click.echo(
                f"{entry.attempt_id} queued to land (entry {entry.id}, {entry.strategy}"
                f"{' into ' + entry.into_branch if entry.into_branch else ''})"
            )
        from orch.serve import runtime

        if runtime.running(settings.home, runtime.LOOP) is None:
            click.echo(
                "Warning: no loop runs: 'orch serve' or 'orch loop' lands the queue", err=True
            )
        return
    entries = store.queued_lands()
    if as_json:
        click.echo(to_json(lands=[e.to_dict() for e in entries]))
        return
    if not entries:
        click.echo("the land queue is empty")
    for entry in entries:
        click.echo(queue_line(entry))


def _drop(settings: Settings, entries: tuple[int, ...], as_json: bool) -> None:
    """``--drop``: take waiting entries out of the land queue (those that cannot be are
    named, and the first one's exit code ends the command)."""
    store = open_store(settings)
    drop_each(
        entries,
        lambda entry: store.drop_land(entry, actor()),
        lambda e: f"#{e.id} {e.attempt_id} dropped from the land queue",
        as_json,
    )


def queue_line(entry: QueuedLand) -> str:
    """One entry of the land queue: what is asked, where it is, and its result."""
    into = f" into {entry.target or entry.into_branch}" if entry.target or entry.into_branch else ""
    head = f"#{entry.id} {entry.attempt_id} {entry.strategy}{into}: {entry.state}"
    if entry.result is None:
        return head
    if entry.landed_commit:
        return f"{head}, {entry.result} as {entry.landed_commit[:12]}"
    return f"{head}, {entry.result}: {entry.reason}" if entry.reason else f"{head}, {entry.result}"


COMMANDS = (land,)
