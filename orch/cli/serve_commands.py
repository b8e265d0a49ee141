"""Commands of the task queue and ``orch serve``: submit, loop, serve."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orch.cli.common import (
    actor,
    best_of_n_options,
    drop_each,
    drop_option,
    open_store,
    read_prompt,
    repo_or_cwd,
    settings_from_env,
    task_options,
)
from orch.cli.completion import complete_task_key

if TYPE_CHECKING:
    from orch.models import QueuedTask

DEFAULT_PORT = 8005


@click.command()
@click.argument("task_key", required=False, shell_complete=complete_task_key)
@task_options
@best_of_n_options
@click.option("--base-ref", default=None, help="The base to dispatch from (default: HEAD).")
@click.option(
    "--list",
    "list_queue",
    is_flag=True,
    help="List the task queue instead (the newest 100 entries, oldest first).",
)
@drop_option("Take a ready entry (its number in 'orch submit --list') out of the task queue.")
@click.option("--json", "as_json", is_flag=True, help="Print the queued task as JSON.")
def submit(
    task_key: str | None,
    prompt: str | None,
    prompt_file: Path | None,
    allow_empty_prompt: bool,
    repo: Path | None,
    workers: tuple[str, ...],
    attempts: int | None,
    base_ref: str | None,
    list_queue: bool,
    drop: tuple[int, ...],
    as_json: bool,
) -> None:
    """Queue TASK_KEY for the loop of 'orch serve' to dispatch; nothing is provisioned yet.

    The loop dispatches it when the task has no live attempt, its retry cooldown is over
    and it has fewer than max_attempts attempts; with --attempts N (or several --worker)
    its one dispatch makes N attempts from one base commit, as 'orch dispatch --attempts
    N' does. Prints the queue entry's number.

    --list lists the queue, each entry with its state, attempts and result. --drop ENTRY
    takes a ready entry out of the queue before the loop dispatches it (exit 8 no such
    entry, 12 one being dispatched, dispatched or ended).
    """
    from orch.errors import InvalidInput

    if list_queue or drop:
        asked = (task_key, prompt, prompt_file, repo, base_ref, attempts)
        if (
            (list_queue and drop)
            or workers
            or allow_empty_prompt
            or any(given is not None for given in asked)
        ):
            raise InvalidInput("--list and --drop take only --json (and not each other)")
        if drop:
            return _drop_tasks(drop, as_json)
        return _list_tasks(as_json)
    if task_key is None:
        raise InvalidInput("name the task to queue (or --list to list the task queue)")
    from orch.git import Git
    from orch.serve.queue import submit as run_submit

    text = read_prompt(prompt, prompt_file)
    settings = settings_from_env()
    task = run_submit(
        open_store(settings),
        Git(settings.git_lock_timeout),
        task_key,
        repo_or_cwd(repo),
        text,
        actor(),
        base_ref=base_ref,
        workers=workers,
        attempts=attempts,
        allow_empty_prompt=allow_empty_prompt,
    )
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(task=task.to_dict()))
    else:
        click.echo(task.id)
    from orch.serve import runtime

    if runtime.running(settings.home, runtime.LOOP) is None:
        click.echo(
            "Warning: no loop runs: 'orch serve' or 'orch loop' dispatches the queue", err=True
        )


LISTED = 100  # the newest entries 'orch submit --list' shows (a year of them is history)


def _list_tasks(as_json: bool) -> None:
    tasks = open_store(settings_from_env()).queued_tasks(newest=LISTED)
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(tasks=[t.to_dict() for t in tasks]))
        return
    if not tasks:
        click.echo("the task queue is empty")
    for task in tasks:
        click.echo(task_line(task))


def _drop_tasks(entries: tuple[int, ...], as_json: bool) -> None:
    """Take ready entries out of the queue (those that cannot be are named, and the first
    one's exit code ends the command)."""
    store = open_store(settings_from_env())
    drop_each(
        entries,
        lambda entry: store.drop_task(entry, actor()),
        lambda t: f"#{t.id} {t.task_key} dropped from the task queue",
        as_json,
    )


def task_line(task: QueuedTask) -> str:
    """One entry of the task queue: the task, how it is to be dispatched, where it is."""
    how = f" x{task.attempts}" if task.attempts > 1 else ""
    if task.workers:
        how += f" for {', '.join(task.workers)}"
    line = f"#{task.id} {task.task_key}{how}: {task.state}"
    if task.made:
        line += f" ({' '.join(task.made)})"
    return f"{line}: {task.reason}" if task.reason else line


@click.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit.")
def loop(once: bool) -> None:
    """Run the heartbeat loop in the foreground ('orch serve' starts it in the background).

    Each cycle ends lost workers' attempts as worker_gone, retries them per policy,
    dispatches queued tasks, lands the land queue ('orch land --queue') in order and writes
    a status snapshot. Exits at once, saying so, when
    another loop already runs for this orch home.
    """
    from orch.serve.loop import run

    settings = settings_from_env()
    if not run(open_store(settings), settings, actor(), once=once, log=_log):
        click.echo("the loop already runs for this orch home: nothing to do")


def _log(line: str) -> None:
    click.echo(line)


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The port to serve the dashboard on (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option(
    "--token",
    default=None,
    envvar="ORCH_SERVE_TOKEN",
    help="The token every request must carry, the printed URL's ?token= "
    "(default: a new random one; env ORCH_SERVE_TOKEN).",
)
@click.option("--stop", "stop_all", is_flag=True, help="Stop the dashboard and the loop.")
def serve(port: int, host: str, token: str | None, stop_all: bool) -> None:
    """Serve the dashboard, starting the heartbeat loop in the background if needed.

    Open the printed URL: it carries the token, which the first visit trades for a
    cookie; every request without the token is refused, on loopback too.

    The loop keeps running after Ctrl-C of the dashboard; 'orch serve --stop' stops both.
    A second 'orch serve' says where the running one is.
    """
    from orch.serve import control, runtime, web

    settings = settings_from_env()
    if stop_all:
        for line in control.stop(settings, settings.cancel_grace):
            click.echo(line)
        return
    held = runtime.take(settings.home, runtime.SERVER)
    if held is None:
        found = runtime.running(settings.home, runtime.SERVER)
        where = found.info.get("url", "?") if found else "(starting)"
        pid = f" (pid {found.pid})" if found else ""
        click.echo(f"orch serve already runs at {where}{pid}; 'orch serve --stop' stops it")
        return
    try:
        if token is not None and not token.strip():
            from orch.errors import InvalidInput

            raise InvalidInput("--token must not be empty")
        if token is not None and not web.is_cookie_safe(token):
            from orch.errors import InvalidInput

            raise InvalidInput("--token may hold only letters, digits and - . _ ~ (it is a cookie)")
        import secrets

        token = token or secrets.token_urlsafe(24)
        store = open_store(settings)
        server = web.DashboardServer(host, port, store, settings, actor(), token)
        try:
            loop_record, started = control.ensure_loop(settings)
        except BaseException:
            server.server_close()
            raise
        verb = "started" if started else "reusing the running"
        click.echo(f"{verb} loop pid {loop_record.pid} (log {runtime.loop_log(settings.home)})")
        url = server.login_url  # the record is private to this user, like the whole home
        runtime.publish(
            settings.home, runtime.SERVER, url=url, host=host, port=server.server_address[1]
        )
        click.echo(f"dashboard at {url}", nl=True)
        signal.signal(signal.SIGTERM, _interrupt)
        web.serve_until_stopped(server)
    finally:
        runtime.withdraw(settings.home, runtime.SERVER)
        held.release()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


COMMANDS = (submit, loop, serve)
