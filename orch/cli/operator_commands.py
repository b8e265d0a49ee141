"""Commands an operator runs on attempts: wait, retry, reassign, cancel, send, log."""

from __future__ import annotations

from pathlib import Path

import click

from orch.cli.common import actor, open_store, settings_from_env
from orch.cli.completion import complete_attempt, complete_attempt_or_task_key

EXIT_ALL_SUCCEEDED = 0
EXIT_SOME_UNSUCCESSFUL = 14
EXIT_TIMED_OUT = 15


@click.command()
@click.argument("attempts", nargs=-1, required=True, shell_complete=complete_attempt)
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, help="Give up after this many seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def wait(
    ctx: click.Context, attempts: tuple[str, ...], timeout: float | None, as_json: bool
) -> None:
    """Block until every ATTEMPT (id or payload path) has ended.

    Exit 0 when all succeeded, 14 when some ended otherwise, 15 on timeout.
    """
    import datetime as dt

    from orch.attempts.lifecycle import wait as run_wait
    from orch.cli.render import attempts_table, to_json

    settings = settings_from_env()
    outcome = run_wait(open_store(settings), attempts, timeout, actor(), host=settings.host_name)
    if as_json:
        click.echo(
            to_json(
                attempts=[a.to_dict() for a in outcome.attempts],
                timed_out=outcome.timed_out,
                all_succeeded=outcome.all_succeeded,
            )
        )
    else:
        click.echo(attempts_table(list(outcome.attempts), dt.datetime.now(dt.UTC)))
    if outcome.timed_out:
        click.echo(f"Error: timed out after {timeout:g}s", err=True)
        ctx.exit(EXIT_TIMED_OUT)
    if not outcome.all_succeeded:
        ctx.exit(EXIT_SOME_UNSUCCESSFUL)


@click.command()
@click.argument("ref", metavar="ATTEMPT|TASK_KEY", shell_complete=complete_attempt_or_task_key)
@click.option("--base-ref", default=None, help="Move the base (default: the same base_commit).")
@click.option("--prompt", default=None, help="A new prompt (default: the previous one).")
@click.option("--worker", default=None, help="Another worker (default: the previous one).")
@click.option(
    "--cooldown",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds the task must rest after its last attempt ended (default 10).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse once the task has this many attempts (default 5).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new attempt as JSON.")
def retry(
    ref: str,
    base_ref: str | None,
    prompt: str | None,
    worker: str | None,
    cooldown: float | None,
    max_attempts: int | None,
    as_json: bool,
) -> None:
    """Start a new attempt of a task with a fresh branch and worktree. Exit 16 if refused."""
    from orch.attempts.retry import RetryPolicy
    from orch.attempts.retry import retry as run_retry
    from orch.cli.render import to_json
    from orch.git import Git

    settings = settings_from_env()
    policy = RetryPolicy(
        cooldown=settings.retry_cooldown if cooldown is None else cooldown,
        max_attempts=settings.max_attempts if max_attempts is None else max_attempts,
    )
    result = run_retry(
        open_store(settings),
        ref,
        settings,
        Git(settings.git_lock_timeout),
        policy,
        actor(),
        base_ref=base_ref,
        prompt=prompt,
        worker=worker,
    )
    if as_json:
        click.echo(to_json(attempt=result.attempt.to_dict(), warnings=list(result.warnings)))
    else:
        click.echo(result.attempt.id)


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--worker", required=True, help="The worker or worker kind to hand it to.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds between SIGTERM and SIGKILL for a local agent (default 10).",
)
def reassign(attempt: str, worker: str, grace: float | None) -> None:
    """Move a queued or running ATTEMPT to another worker; the old one is fenced out."""
    from orch.attempts.lifecycle import reassign as run_reassign

    settings = settings_from_env()
    moved, signalled = run_reassign(
        open_store(settings),
        attempt,
        worker,
        settings,
        actor(),
        settings.cancel_grace if grace is None else grace,
    )
    extra = f" (previous agent {signalled})" if signalled else ""
    click.echo(f"{moved.id} queued for worker {moved.worker}{extra}")


@click.command()
@click.argument("attempts", nargs=-1, required=True, shell_complete=complete_attempt)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds between SIGTERM and SIGKILL for a local agent (default 10).",
)
@click.option("--reason", default=None, help="Why (kept in the attempt's events).")
def cancel(attempts: tuple[str, ...], grace: float | None, reason: str | None) -> None:
    """End ATTEMPT(s) as cancelled and stop a running local agent.

    Follow-ups still waiting are dropped: each is listed (its first line).
    Cancelling an attempt that already ended changes nothing and says so (exit 0).
    """
    from orch.attempts.lifecycle import cancel as run_cancel

    settings = settings_from_env()
    store = open_store(settings)
    for ref in attempts:
        outcome = run_cancel(
            store,
            ref,
            actor(),
            settings.cancel_grace if grace is None else grace,
            reason,
            settings.host_name,
        )
        if not outcome.changed:
            click.echo(
                f"{outcome.attempt.id} already ended ({outcome.attempt.state}): nothing to do"
            )
        else:
            extra = f"; agent {outcome.signalled}" if outcome.signalled else ""
            click.echo(f"{outcome.attempt.id} cancelled{extra}")
            if outcome.dropped:
                count = len(outcome.dropped)
                click.echo(f"  {count} follow-up{'s' if count != 1 else ''} dropped, never run:")
                for msg in outcome.dropped:
                    first = msg.body.strip().splitlines()[0] if msg.body.strip() else ""
                    click.echo(f"    {msg.id}  {first[:100]}")


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.argument("message", required=False)
@click.option(
    "--file",
    "message_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the message from a file.",
)
def send(attempt: str, message: str | None, message_file: Path | None) -> None:
    """Send ATTEMPT a follow-up MESSAGE, run in the same worktree.

    A live attempt gets it queued for its worker; an attempt that has ended gets a
    continuation attempt that reuses its worktree and branch (prints the new id).
    """
    from orch.attempts.lifecycle import send as run_send
    from orch.errors import InvalidInput

    if (message is None) == (message_file is None):
        raise InvalidInput("give the message as an argument or with --file, not both")
    if message_file is not None:
        try:
            message = message_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read {message_file}: {exc}") from exc
    settings = settings_from_env()
    outcome = run_send(open_store(settings), attempt, message or "", actor(), settings)
    if outcome.message is not None:
        click.echo(f"message {outcome.message.id} queued for attempt {outcome.message.attempt_id}")
    elif outcome.continuation is not None:
        click.echo(
            f"{outcome.continuation.id}: attempt {outcome.continuation.attempt_number} of "
            f"{outcome.continuation.task_key!r} continues in {outcome.continuation.worktree_path}"
        )


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--tail", type=click.IntRange(min=1), default=None, help="Only the last N lines.")
def log(attempt: str, tail: int | None) -> None:
    """Print ATTEMPT's prompt and run history, then its agent output log."""
    from orch.attempts.queries import show
    from orch.system import processes

    settings = settings_from_env()
    detail = show(open_store(settings), attempt)
    click.echo(f"# prompt\n{detail.attempt.prompt}\n")
    for run in detail.runs:
        click.echo(
            f"# run {run.number} started {run.started_at.isoformat(timespec='seconds')}, "
            f"exit {run.exit_code if run.exit_code is not None else '(running)'}: "
            f"{' '.join(run.command)[:200]}"
        )
        if run.number > 1:
            click.echo(f"  follow-up: {run.prompt}")
    dropped = detail.dropped_messages
    for msg in detail.messages:
        if msg in dropped:
            click.echo(f"# follow-up dropped (the attempt ended before it ran): {msg.body}")
        elif msg.delivered_at is None:
            click.echo(f"# follow-up waiting: {msg.body}")
    path = settings.logs_dir / f"{detail.attempt.id}.log"
    lines = processes.log_tail(path, tail, max_bytes=1 << 62) if tail else None
    if lines is None:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
    if lines:
        click.echo("# log " + str(path))
        click.echo("\n".join(lines))


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--get", "slot", default=None, help="Print only this slot's port (e.g. web).")
@click.option(
    "--export", "as_export", is_flag=True, help="Print export lines to eval in sh, bash or zsh."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ports(attempt: str, slot: str | None, as_export: bool, as_json: bool) -> None:
    """Show ATTEMPT's port bundle: eval "$(orch ports ATTEMPT --export)"."""
    from orch.attempts.queries import find_attempt
    from orch.errors import InvalidInput, NotFound
    from orch.system import ports as port_files

    store = open_store(settings_from_env())
    found = find_attempt(store, attempt)
    bundle = store.port_bundle(found.id)
    if bundle is None:
        raise NotFound(f"attempt {found.id} holds no port bundle")
    if slot is not None:
        if slot not in bundle.ports:
            # the attempt exists: a slot name it does not have is bad input, not a lookup miss
            raise InvalidInput(f"no port slot {slot!r} (slots: {', '.join(bundle.ports)})")
        click.echo(bundle.ports[slot])
    elif as_export:
        click.echo("\n".join(port_files.export_lines(bundle)))
    elif as_json:
        from orch.cli.render import to_json

        click.echo(
            to_json(attempt=found.id, start=bundle.start, size=bundle.size, ports=bundle.ports)
        )
    else:
        click.echo(f"block {bundle.start}-{bundle.end} ({bundle.size} ports)")
        for name, port in bundle.ports.items():
            click.echo(f"{name:<12} {port}")


COMMANDS = (wait, retry, reassign, cancel, send, log, ports)
