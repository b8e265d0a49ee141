"""``orch path``, ``orch open`` and ``orch restore``: an attempt's worktree, for people."""

from __future__ import annotations

import os
from pathlib import Path

import click

from orch.cli.common import open_store, settings_from_env
from orch.cli.completion import complete_attempt


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
def path(attempt: str) -> None:
    """Print ATTEMPT's worktree path: cd "$(orch path ATTEMPT)".

    ATTEMPT is an id, a unique id prefix (4 characters or more) or a payload path.
    Exit codes: 8 no such attempt, or its worktree is gone.
    """
    from orch.attempts.queries import worktree_of

    click.echo(str(worktree_of(open_store(settings_from_env()), attempt)))


@click.command(name="open")
@click.argument("attempt", shell_complete=complete_attempt)
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


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.argument("target", metavar="[PATH]", required=False, type=click.Path(path_type=Path))
def restore(attempt: str, target: Path | None) -> None:
    """Restore ATTEMPT's archived work into a new worktree at PATH.

    PATH defaults to the attempt's old worktree path; a relative PATH is taken from the
    current directory. The commits come back from the archive's bundle (onto the
    attempt's branch, made again if it is gone), the uncommitted changes are applied
    (unstaged) and the untracked files unpacked; then each step is checked. Nothing is
    overwritten. Exit codes: 8 no such attempt, or it has no archive; 7 PATH exists, the
    branch has moved since, or a step failed (what this restore made is removed again).
    """
    from orch.attempts.restore import restore as run_restore
    from orch.cli.common import actor
    from orch.git import Git

    settings = settings_from_env()
    done = run_restore(
        open_store(settings), attempt, target, settings, Git(settings.git_lock_timeout), actor()
    )
    where = f"on branch {done.branch}" if done.branch else f"detached at {done.head[:12]}"
    brought = [
        *(["commits"] if done.branch_created else []),
        *(["uncommitted changes"] if done.patch else []),
        *([f"{len(done.untracked)} untracked file(s)"] if done.untracked else []),
    ]
    what = ", ".join(brought) or "the saved commit"
    click.echo(f"restored {what} of attempt {done.attempt_id} into {done.worktree} ({where})")


COMMANDS = (path, open_command, restore)
