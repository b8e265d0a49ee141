"""Commands that review what attempts did: diff, compare.

Git writes its output itself, straight to standard output or to the pager (file names
and contents need not be UTF-8, and a large diff is never held in memory): with colour
and through the pager only when standard output is a terminal, plain otherwise, as git
itself does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from orch.cli.common import open_store, settings_from_env
from orch.cli.completion import complete_attempt, complete_attempt_or_task_key

if TYPE_CHECKING:
    from orch.attempts.review import AttemptDiff
    from orch.git import DiffFormat, DiffRange, Git, Repository

_PAGER_OPTION = click.option(
    "--no-pager", is_flag=True, help="Never page the output (like git --no-pager)."
)


@click.command()
@click.argument("attempt", shell_complete=complete_attempt)
@click.option("--stat", "as_stat", is_flag=True, help="Only a diffstat per file.")
@click.option("--name-only", is_flag=True, help="Only the names of the changed files.")
@click.option(
    "--committed",
    is_flag=True,
    help="Only the commits since the base, without the worktree's uncommitted changes "
    "and untracked files.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the changed files (status, additions, deletions), the commits and the "
    "totals as JSON.",
)
@_PAGER_OPTION
def diff(
    attempt: str, as_stat: bool, name_only: bool, committed: bool, as_json: bool, no_pager: bool
) -> None:
    """Show what ATTEMPT changed against its recorded base_commit.

    That is the commits on its branch since the base plus, unless --committed, its
    worktree's uncommitted changes and untracked (not ignored) files, read without
    taking the worktree's index lock. Without a worktree, the branch is shown; without
    the branch either, the commit its archive recorded. ATTEMPT is an id (or a prefix
    of 4+ characters) or a payload path. Exit codes: 8 unknown attempt, or its branch
    and worktree are gone; 7 a git command failed.
    """
    from orch.attempts.review import changes, diff_body, locate, with_untracked
    from orch.errors import InvalidInput
    from orch.git import Git

    if as_stat and name_only:
        raise InvalidInput("give either --stat or --name-only, not both")
    settings = settings_from_env()
    git = Git(settings.git_lock_timeout)
    found = locate(open_store(settings), git, attempt, committed=committed)
    if as_json:
        from orch.cli.render import to_json

        got = changes(git, found)
        for note in found.notes + got.notes:
            click.echo(f"Note: {note}", err=True)
        click.echo(to_json(**diff_body(found, got, committed=committed)))
        return
    if as_stat and _quick_stat(git, found, no_pager=no_pager):
        return
    with with_untracked(git, found) as ready:
        for note in ready.notes:
            click.echo(f"Note: {note}", err=True)
        fmt: DiffFormat = "stat" if as_stat else "name-only" if name_only else "patch"
        _emit(git, ready.range, fmt, ready.repository, no_pager=no_pager)


def _quick_stat(git: Git, found: AttemptDiff, *, no_pager: bool) -> bool:
    """Print the ``--stat`` of a live worktree's diff without a private index, when that
    gives git's exact answer (``orch.attempts.review.worktree_stat``); False when not."""
    from orch.attempts.review import worktree_stat
    from orch.system.pager import is_terminal

    out = _stdout_fd()
    terminal = out is not None and is_terminal(out)
    width = shutil.get_terminal_size().columns if terminal else None
    quick = worktree_stat(git, found, color=terminal, stat_width=width)
    if quick is None:
        return False
    for note in quick.notes:
        click.echo(f"Note: {note}", err=True)
    if out is None:  # standard output is not a file (click's test runner)
        click.echo(quick.output, nl=False)
        return True
    sys.stdout.flush()
    with _destination(git, found.repository, out, terminal=terminal, no_pager=no_pager) as fd:
        _write_all(fd, quick.output)
    return True


@click.command()
@click.argument("first", metavar="TASK|A", shell_complete=complete_attempt_or_task_key)
@click.argument("second", metavar="[B]", required=False, shell_complete=complete_attempt)
@click.option(
    "--worktree",
    is_flag=True,
    help="A B: each side as its worktree is now: uncommitted changes and untracked files too.",
)
@click.option("--stat", "as_stat", is_flag=True, help="A B: only a diffstat per file.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: TASK: each attempt's row and the collisions; A B: the changed files.",
)
@_PAGER_OPTION
def compare(
    first: str, second: str | None, worktree: bool, as_stat: bool, as_json: bool, no_pager: bool
) -> None:
    """Compare the attempts of TASK, or the results of two attempts A and B.

    One argument, a task key: one row per attempt of the task (worker, state, exit code,
    duration, commits ahead of its base_commit, files, lines added and removed, the
    newest check's result), then the files that more than one attempt changed, where
    their results collide. Committed work is compared, each against its own base_commit.
    Exit 8 when the task has no attempts.

    Two arguments, two attempts: how the result of B differs from that of A, the diff
    from A's tip to B's tip (with --worktree, from A's worktree to B's as they are, read
    through a private index, never the worktrees' own). Attempts of different
    repositories are refused (exit 2); exit 8 for an unknown attempt.
    """
    from orch.attempts.review import comparison
    from orch.git import Git

    settings = settings_from_env()
    git = Git(settings.git_lock_timeout)
    if second is None:
        _compare_task(first, worktree or as_stat, as_json)
        return
    found = comparison(open_store(settings), git, first, second, worktree=worktree)
    for side in (found.first, found.second):
        for note in side.notes:
            click.echo(f"Note: {note}", err=True)
    if as_json:
        from orch.cli.render import to_json
        from orch.cli.review_render import comparison_body

        body = comparison_body(found, git.changed_files(found.range), worktree)
        click.echo(to_json(**body))
        return
    fmt: DiffFormat = "stat" if as_stat else "patch"
    _emit(git, found.range, fmt, found.first.repository, no_pager=no_pager)


def _emit(
    git: Git, where: DiffRange, fmt: DiffFormat, repository: Repository, *, no_pager: bool
) -> None:
    """git's output for ``where`` on standard output, written by git itself: on a
    terminal coloured and through the pager (unless ``no_pager``), plain otherwise."""
    from orch.system.pager import is_terminal

    out = _stdout_fd()
    if out is None:  # standard output is not a file (click's test runner): no fd for git
        click.echo(git.diff_output(where, fmt, color=False), nl=False)
        return
    terminal = is_terminal(out)
    width = shutil.get_terminal_size().columns if terminal else None
    sys.stdout.flush()
    with _destination(git, repository, out, terminal=terminal, no_pager=no_pager) as fd:
        git.diff_into(where, fmt, fd, color=terminal, stat_width=width)


@contextlib.contextmanager
def _destination(
    git: Git, repository: Repository, out: int, *, terminal: bool, no_pager: bool
) -> Iterator[int]:
    """Where the output goes: the pager's input on a terminal (unless ``no_pager``, or
    no pager is configured), else ``out``."""
    from orch.system.pager import finish_pager, pager_command, start_pager

    if terminal and not no_pager:
        command = pager_command(os.environ, git.config_value(repository, "core.pager"))
        pager = start_pager(command, os.environ) if command else None
        if pager is not None and pager.stdin is not None:
            try:
                yield pager.stdin.fileno()
            finally:
                finish_pager(pager)
            return
    yield out


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``; a reader that stops early (a pager quit) is no failure."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass


def _compare_task(task_key: str, diff_options: bool, as_json: bool) -> None:
    from orch.attempts.compare import compare_task
    from orch.cli.compare_render import comparison_text
    from orch.cli.render import to_json
    from orch.errors import InvalidInput
    from orch.git import Git

    if diff_options:
        raise InvalidInput("--worktree and --stat compare two attempts (orch compare A B)")
    settings = settings_from_env()
    found = compare_task(open_store(settings), Git(settings.git_lock_timeout), task_key)
    click.echo(to_json(**found.to_dict()) if as_json else comparison_text(found))


def _stdout_fd() -> int | None:
    """The file descriptor of the process's standard output, unless it was replaced."""
    if sys.stdout is not sys.__stdout__ or sys.__stdout__ is None:
        return None
    try:
        return sys.__stdout__.fileno()
    except (OSError, ValueError):
        return None


COMMANDS = (diff, compare)
