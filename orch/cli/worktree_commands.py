"""``orch path``, ``orch open`` and ``orch restore``: an attempt's worktree, for people."""

from __future__ import annotations

import os

import click

from orch.cli.common import open_store, settings_from_env


@click.command()
@click.argument("attempt")
def path(attempt: str) -> None:
    """Print ATTEMPT's worktree path: cd "$(orch path ATTEMPT)".

    ATTEMPT is an id, a unique id prefix (4 characters or more) or a payload path.
    Exit codes: 8 no such attempt, or its worktree is gone.
    """
    from orch.attempts.queries import worktree_of

    click.echo(str(worktree_of(open_store(settings_from_env()), attempt)))


@click.command(name="open")
@click.argument("attempt")
def open_command(attempt: str) -> None:
    """Open ATTEMPT's worktree in $VISUAL, else $EDITOR.

    Exits with the editor's status. Exit codes: 8 no such attempt, or its worktree is
    gone; 11 neither $VISUAL nor $EDITOR is set, or the editor cannot be started.
    """
    from orch.attempts.queries import worktree_of
    from orch.system import editor

    where = worktree_of(open_store(settings_from_env()), attempt)
    editor.editor_command(os.environ)  # refuse before anything else when none is set
    code = editor.open_in_editor(where, os.environ)
    if code:
        click.get_current_context().exit(code)


COMMANDS = (path, open_command)
