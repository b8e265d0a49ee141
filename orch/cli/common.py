"""What every command shares: the error funnel, settings, the store, who is acting."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from orch.cli import startup
from orch.errors import InvalidInput, OrchError
from orch.models import ENTRY_MAX, State

if TYPE_CHECKING:
    from orch.config import Settings
    from orch.store import Store

# the choices of --state options, in the order the states are defined
STATE_NAMES = tuple(str(s) for s in State)


JSON_FLAG = "--json"


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for ``--json`` (before any ``--``, after which the
    words are an agent's)."""
    words = args[: args.index("--")] if "--" in args else args
    return JSON_FLAG in words


class OrchGroup(click.Group):
    """The one funnel: an ``OrchError`` becomes ``Error: <message>`` on stderr and its exit
    code; with ``--json`` the same failure is also a JSON object on stdout, so a script
    reads one format whatever happens. Any other exception is a bug and keeps its
    traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # subcommand name -> the module whose COMMANDS define it, imported only when a
        # command of it is asked for: a command line imports its own command's module,
        # not every command's (``orch --help`` lists them all, and so imports them all)
        self._modules: dict[str, str] = {}

    def add_module(self, module: str, names: tuple[str, ...]) -> None:
        """Subcommands ``names``, defined by ``module``'s ``COMMANDS``, loaded when used."""
        for name in names:
            self._modules[name] = module

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self._modules.get(cmd_name)
        if module is not None:
            self._load(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._modules})

    def every_command(self) -> dict[str, click.Command]:
        """Every subcommand, each module loaded (what walks the whole command tree)."""
        for module in set(self._modules.values()):
            self._load(module)
        return dict(self.commands)

    def _load(self, module: str) -> None:
        import importlib

        named = [name for name, source in self._modules.items() if source == module]
        for command in importlib.import_module(module).COMMANDS:
            self.add_command(command)
        for name in named:
            del self._modules[name]
        missing = [name for name in named if name not in self.commands]
        if missing:  # the table in orch.cli.main and the module disagree: a bug
            raise RuntimeError(f"{module} defines no command {', '.join(missing)}")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            ctx.meta["orch.json"] = wants_json(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchError as exc:
            if ctx.meta.get("orch.json"):
                click.echo(render_error(exc.exit_code, exc.code_name, exc.message))
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            if ctx.meta.get("orch.json"):
                click.echo(render_error(exc.exit_code, InvalidInput.__name__, exc.format_message()))
            raise


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """Every subcommand of ``group`` by name, lazily defined ones loaded."""
    return group.every_command() if isinstance(group, OrchGroup) else dict(group.commands)


def failure_documented() -> None:
    """The command printed its own ``--json`` document for the failure it is about to
    raise (``orch dispatch --attempts``: the attempts made and those that failed): the
    funnel then prints only the line on stderr, so stdout holds one document."""
    click.get_current_context().meta["orch.json"] = False


def render_error(code: int, name: str, message: str) -> str:
    from orch.cli.render import error_json

    return error_json(code, name, message)


def settings_from_env(**overrides: Any) -> Settings:
    """The settings, once the orch home they name is known to be safe to use."""
    from orch import private
    from orch.config import resolve

    settings = resolve(os.environ, overrides)
    private.secure_home(settings.home, settings.sqlite_file)
    return settings


def open_store(
    settings: Settings, kick: bool = True, *, worker_say: Callable[[str], None] | None = None
) -> Store:
    """The store, closed with the command, its connections named after it (``orch work
    HOST``); with ``kick``, a change that writes events starts their delivery in the
    background (``orch.attempts.events.kick``).

    For a worker (``worker_say``: where it says trouble), a process idle most of its life
    among many others on one server: no connection is kept between transactions, and a
    connection the server cannot give now ("too many clients") is asked for again with
    the back-off of ``orch.outage``, saying so, instead of ending the worker."""
    from orch.outage import STORE_PATIENCE
    from orch.store import Connecting
    from orch.store import open_store as _open

    def waiting(exc: OrchError, pause: float) -> None:
        if worker_say is not None:
            worker_say(
                f"orch work: no connection to the store ({exc.message}); "
                f"trying again in {pause:.1f} s"
            )

    context = click.get_current_context()
    store = _open(
        settings.database_url,
        settings.locks_dir,
        synchronous=settings.sqlite_synchronous,
        connecting=Connecting(
            application_name=f"{command_name(context)} {settings.host_name}",
            pooler=settings.pooler,
            listen_url=settings.listen_url,
            hold_idle=worker_say is None,
            connect_patience=None if worker_say is None else STORE_PATIENCE,
            on_connect_retry=waiting,
        ),
    )
    context.call_on_close(store.close)
    if kick:
        from orch.attempts.events.kick import Kicker

        kicker = Kicker(store, settings, os.environ)
        store.on_events = kicker
        # runs before store.close; the deliverer itself starts after it, as the process ends
        context.call_on_close(lambda: kicker.finish(startup.start_last))
    return store


def command_name(context: click.Context) -> str:
    """``orch`` and the subcommands that lead to this one (``orch db upgrade``), whatever
    the program was called (``python -m orch``)."""
    names: list[str] = []
    while context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return " ".join(["orch", *reversed(names)])


def repo_or_cwd(repo: Path | None) -> Path:
    """The repository a command was pointed at: ``--repo``, else the current directory.

    A current directory that was removed (the shell still stands in it) is named as such,
    not taken for a missing git or a bug."""
    if repo is not None:
        return repo.absolute()
    try:
        return Path.cwd()
    except FileNotFoundError as exc:
        from orch.errors import RepositoryError

        raise RepositoryError(
            "the current directory no longer exists (it was removed): "
            "cd into the repository, or name it with --repo"
        ) from exc


def actor() -> str:
    # the host name as gethostname() gives it, without importing socket (`orch --help`)
    return f"{startup.login_name()}@{os.uname().nodename} pid {os.getpid()}"


_F = TypeVar("_F", bound=Callable[..., Any])


REPO_OPTION = click.option(
    "--repo",
    type=click.Path(path_type=Path),
    default=None,
    help="The repository (default: the one containing the current directory).",
)


WORKER_HELP = "The worker or worker kind that should take it."


class _Entry(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


_E = TypeVar("_E", bound=_Entry)


def drop_option(help: str) -> Callable[[_F], _F]:
    """``--drop ENTRY`` (repeatable): entries of a queue, by number."""
    return click.option(
        "--drop",
        "drop",
        type=click.IntRange(min=1, max=ENTRY_MAX),  # past it the store cannot hold one
        multiple=True,
        metavar="ENTRY",
        help=help,
    )


def drop_each(
    entries: tuple[int, ...],
    drop_one: Callable[[int], _E],
    said: Callable[[_E], str],
    as_json: bool,
) -> None:
    """Drop each entry in turn and say what was dropped, also when some could not be: the
    first refusal is raised after (its exit code; the others are named in its line), and
    ``--json`` lists the dropped entries and the refused ones in one document."""
    from orch.cli.render import to_json
    from orch.errors import OrchError

    dropped: list[_E] = []
    refused: list[tuple[int, OrchError]] = []
    for entry in dict.fromkeys(entries):
        try:
            dropped.append(drop_one(entry))
        except OrchError as exc:
            refused.append((entry, exc))
    if as_json:
        click.echo(
            to_json(
                dropped=[d.to_dict() for d in dropped],
                refused=[
                    {"entry": n, "error": exc.message, "exit_code": exc.exit_code}
                    for n, exc in refused
                ],
            )
        )
    else:
        for item in dropped:
            click.echo(said(item))
    if refused:
        if as_json:
            failure_documented()
        first = refused[0][1]
        if len(refused) > 1:
            others = ", ".join(f"#{n}" for n, _ in refused[1:])
            first.args = (f"{first.message} (and {others}: refused too)",)
        raise first


def best_of_n_options(command: _F) -> _F:
    """``--worker`` (repeatable) and ``--attempts N``: the options of a best-of-N task,
    shared by ``dispatch`` and ``submit`` (whose loop dispatches it the same way)."""
    command = click.option(
        "--attempts",
        type=int,
        default=None,
        metavar="N",
        help="Best-of-N: make N attempts of the task from one base commit, each with its "
        "own branch, worktree and ports (default: one per --worker, else 1).",
    )(command)
    return click.option(
        "--worker",
        "workers",
        multiple=True,
        help=f"{WORKER_HELP} Repeatable: the attempts go to the workers in turn.",
    )(command)


def task_options(command: _F) -> _F:
    """The options every command that starts a task shares (``dispatch``, ``submit``);
    each adds its own ``--worker``."""
    for option in reversed(
        (
            REPO_OPTION,
            click.option("--prompt", default=None, help="What the agent should do."),
            click.option(
                "--prompt-file",
                type=click.Path(path_type=Path),
                default=None,
                help="Read the prompt from a file ('-' for standard input).",
            ),
            click.option(
                "--allow-empty-prompt",
                is_flag=True,
                help="Accept an empty prompt (an attempt whose agent needs none); "
                "refused otherwise.",
            ),
        )
    ):
        command = option(command)
    return command


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    if prompt is not None and prompt_file is not None:
        raise InvalidInput("give either --prompt or --prompt-file, not both")
    if prompt_file is None:
        return prompt or ""
    try:
        if str(prompt_file) == "-":
            return sys.stdin.read()
        return prompt_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the prompt file {prompt_file}: {exc}") from exc
