"""Shell completion: ``orch completion bash|zsh|fish`` and the completers of attempt ids
and task keys.

Click's own machinery does the work: the script a shell sources runs ``orch`` again with
``_ORCH_COMPLETE`` set (``COMPLETE_VAR``) for every key press, and click answers from
the command tree (commands, options, the ``--state`` choices of ``orch.models``) and from
the completers here (attempt ids and task keys, read from the store by
``orch.store.glance``: SQLite read directly, read-only, never SQLAlchemy). Such a request
is a process of its own per key press, so this module imports nothing heavy, and a
completer never creates, migrates or writes anything: where the store is missing,
corrupt, busy or on PostgreSQL, it offers nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from orch.cli.startup import COMPLETE_VAR
from orch.errors import OrchError

PROG_NAME = "orch"
SHELLS = ("bash", "zsh", "fish")
_PATH_START = (".", "~", os.sep)


def complete_attempt(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Attempt ids starting with ``incomplete``, newest first; file names once the word
    looks like a path (an ATTEMPT may be a payload path)."""
    if incomplete.startswith(_PATH_START) or os.sep in incomplete:
        return [CompletionItem(incomplete, type="file")]
    return _from_store("attempt_ids", incomplete)


def complete_task_key(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Task keys starting with ``incomplete``, the most recently attempted first."""
    return _from_store("task_keys", incomplete)


def complete_attempt_or_task_key(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Attempt ids, then task keys (``orch retry ATTEMPT|TASK_KEY``)."""
    return [*complete_attempt(ctx, param, incomplete), *complete_task_key(ctx, param, incomplete)]


def _from_store(kind: str, prefix: str) -> list[CompletionItem]:
    sqlite_file = _sqlite_file()
    if sqlite_file is None:
        return []  # PostgreSQL (it would need a driver and a connection), or bad settings
    from orch.store import glance

    read = glance.attempt_ids if kind == "attempt_ids" else glance.task_keys
    return [CompletionItem(s.value, help=s.about) for s in read(sqlite_file, prefix)]


def _sqlite_file() -> Path | None:
    """The embedded store's file as the settings name it; None on PostgreSQL, or when the
    settings cannot be read (that command will say why; completion stays quiet)."""
    from orch.config import resolve

    try:
        return resolve(os.environ).sqlite_file
    except (OrchError, OSError, ValueError):
        return None


@click.command(short_help="Print the completion script of bash, zsh or fish.")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the script that lets SHELL complete orch's commands, options, states,
    attempt ids and task keys.

    \b
    bash: orch completion bash > ~/.local/share/bash-completion/completions/orch
    zsh:  orch completion zsh > ~/.zfunc/_orch   (~/.zfunc in fpath, before compinit)
    fish: orch completion fish > ~/.config/fish/completions/orch.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    script_class = get_completion_class(shell)
    assert script_class is not None  # SHELLS are the shells click knows
    click.echo(script_class(root, {}, PROG_NAME, COMPLETE_VAR).source())


COMMANDS = (completion,)
