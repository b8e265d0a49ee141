"""Commands a worker runs: claim, heartbeat, finish, and the reference runtime ``work``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from orch.cli.common import actor, open_store, settings_from_env
from orch.cli.completion import complete_attempt
from orch.errors import InvalidInput
from orch.models import WORKER_END_STATES, Attempt


@click.command()
@click.argument("attempt", required=False, shell_complete=complete_attempt)
@click.option("--worker", "worker_name", required=True, help="This worker's name or kind.")
@click.option(
    "--pid",
    type=int,
    default=None,
    help="The process that does the work, watched for liveness "
    "(default: the process that ran 'orch claim').",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def claim(attempt: str | None, worker_name: str, pid: int | None, as_json: bool) -> None:
    """Claim ATTEMPT, or the oldest queued attempt for --worker; print it and the lease.

    Prints "ATTEMPT LEASE". Exit 17 when nothing can be claimed.
    """
    from orch.attempts.lifecycle import claim as run_claim
    from orch.attempts.lifecycle import local_worker
    from orch.cli.render import to_json
    from orch.errors import NotClaimable

    settings = settings_from_env()
    identity = local_worker(
        worker_name, pid if pid is not None else os.getppid(), settings.host_name
    )
    lease = run_claim(open_store(settings), identity, settings.lease_ttl, actor(), attempt)
    if lease is None:
        raise NotClaimable(f"no queued attempt for worker {worker_name!r}")
    if as_json:
        click.echo(
            to_json(
                attempt=lease.attempt.to_dict(),
                lease=lease.token,
                lease_expires_at=lease.expires_at.isoformat(),
                lease_ttl_seconds=settings.lease_ttl,
            )
        )
    else:
        click.echo(f"{lease.attempt.id} {lease.token}")


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--lease", "token", type=int, required=True, help="The lease token from claim.")
def heartbeat(attempt: str, token: int) -> None:
    """Renew the lease on ATTEMPT. Exit 13 once the lease was taken away."""
    from orch.attempts.queries import find_attempt

    settings = settings_from_env()
    store = open_store(settings)
    lease = store.heartbeat(find_attempt(store, attempt).id, token, settings.lease_ttl)
    click.echo(f"lease {lease.token} until {lease.expires_at.isoformat(timespec='seconds')}")


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--lease", "token", type=int, required=True, help="The lease token from claim.")
@click.option(
    "--state",
    type=click.Choice([str(s) for s in WORKER_END_STATES]),
    required=True,
    help="How the attempt ended.",
)
@click.option("--exit-code", type=int, default=None, help="The agent's exit code.")
@click.option("--summary", default=None, help="A short summary of how it ended.")
def finish(
    attempt: str, token: int, state: str, exit_code: int | None, summary: str | None
) -> None:
    """Report how ATTEMPT ended. Exit 13 if the lease was taken away meanwhile."""
    from orch.attempts.queries import find_attempt
    from orch.models import State

    store = open_store(settings_from_env())
    ended = store.finish(
        find_attempt(store, attempt).id, token, State(state), actor(), exit_code, summary
    )
    click.echo(f"{ended.id} {ended.state}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--worker",
    "worker_name",
    default=None,
    envvar="ORCH_WORKER",
    help="This worker's name or kind (default: $ORCH_WORKER or 'local').",
)
@click.option(
    "--agent",
    "template",
    default=None,
    help="A ready-made agent command: claude, codex, gemini or aider.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Work on at most one attempt (with --concurrency N, on at most N claimed "
    "together), then exit.",
)
@click.option(
    "--concurrency",
    "concurrency_text",
    default="1",
    metavar="N",
    help="Run up to N attempts at once in this one process (default 1).",
)
@click.option(
    "--attempt",
    "attempt_ref",
    default=None,
    shell_complete=complete_attempt,
    help="Work on this attempt only.",
)
@click.option(
    "--idle-poll",
    type=click.FloatRange(min=0.05),
    default=1.0,
    help="Seconds between looks for work when idle.",
)
@click.option(
    "--repo",
    "clones",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A clone of a repository on this host: also take attempts dispatched "
    "with --host for this host or any, provisioned here (repeatable).",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="Print no line per claim, run end and finish (trouble is still said).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def work(
    worker_name: str | None,
    template: str | None,
    once: bool,
    concurrency_text: str,
    attempt_ref: str | None,
    idle_poll: float,
    clones: tuple[Path, ...],
    quiet: bool,
    command: tuple[str, ...],
) -> None:
    """Claim attempts and run an agent in each one's worktree: orch work -- my-agent --flag

    The command may use {prompt}, {payload}, {worktree}, {attempt}, {branch},
    {base_commit} and {task_key}; its environment carries ORCH_ATTEMPT_ID, ORCH_PAYLOAD,
    ORCH_WORKTREE, ORCH_BRANCH, ORCH_BASE_COMMIT, ORCH_PROMPT, ORCH_PROMPT_HISTORY,
    ORCH_FOLLOW_UP and ORCH_PORT_<NAME>. A follow-up resumes the agent's session with
    --agent claude or codex; any other command gets the original prompt with the
    follow-ups appended as {prompt} and ORCH_PROMPT.
    End the agent's options before {prompt} ('--'): a prompt may start with '-'. In
    'sh -c', use "$ORCH_PROMPT", never {prompt} (that makes the prompt shell code).
    The first SIGTERM or Ctrl-C drains (the current attempt finishes normally); a second
    one stops the agent and finishes the attempt as cancelled.
    Each finished attempt is a line on stdout as it ends (ID STATE SUMMARY); each claim
    and run end a line on stderr; --quiet prints neither.
    With --concurrency N it runs up to N attempts at once, each alone in its worktree,
    with one claim for all free slots and one heartbeat statement for all held leases;
    the signals drain or stop all of them.
    """
    from orch.attempts.concurrent_worker import ConcurrentWorker
    from orch.attempts.lifecycle import local_worker
    from orch.attempts.worker import WorkerConfig, WorkerRuntime, agent_command, resume_command
    from orch.outage import ride_out

    concurrency = _concurrency(concurrency_text)
    if concurrency > 1 and attempt_ref is not None:
        raise InvalidInput("--attempt works on one attempt: it takes no --concurrency above 1")
    settings = settings_from_env()
    argv = agent_command(template, command, settings.agent_args)
    config = WorkerConfig(
        identity=local_worker(worker_name or "local", os.getpid(), settings.host_name),
        command=argv,
        resume_command=resume_command(template, settings.agent_args),
        once=once,
        attempt_ref=attempt_ref,
        concurrency=concurrency,
        idle_poll=idle_poll,
        clones=tuple(c.absolute() for c in clones),
    )

    def said(line: str) -> None:
        click.echo(line, err=True)  # click.echo flushes: a log under nohup fills as it goes

    def ended(attempt: Attempt) -> None:
        click.echo(f"{attempt.id} {attempt.state} {attempt.summary or ''}".rstrip())

    # many workers starting at once may find the server full ("too many clients") or
    # down: they wait for it as for any outage (each connection asked for patiently)
    store = ride_out(
        lambda: open_store(settings, worker_say=said),
        on_retry=lambda exc, pause: said(
            f"orch work: opening the store failed ({exc.message}); trying again in {pause:.1f} s"
        ),
    )
    # --concurrency 1 is exactly the one-at-a-time worker
    runtime = (WorkerRuntime if concurrency == 1 else ConcurrentWorker)(
        store,
        settings,
        config,
        actor(),
        say=said,
        progress=None if quiet else said,
        report=None if quiet else ended,
    )

    def _on_signal(signum: int, _frame: object) -> None:
        runtime.signal()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    runtime.run()


def _concurrency(text: str) -> int:
    """``--concurrency``: a whole number of at least 1 (one line and exit 2 otherwise)."""
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidInput(f"--concurrency must be a whole number of at least 1, not {text!r}")
    return value


COMMANDS = (claim, heartbeat, finish, work)
