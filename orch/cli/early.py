"""Work a dispatch can start before the command line is parsed.

A non-strict dispatch from the main worktree's HEAD checks that worktree for uncommitted
changes, to say which ones the attempt does not carry. On a large repository that
``git status`` is as long as the whole Python start-up, and the start-up leaves the
second core idle: so ``orch dispatch`` starts it from a glance at the arguments, before
click and the store are imported. The glance can be wrong (an option's value that looks
like a flag): the check is only used if the real dispatch asks for the same directory
and needs a dirt check there, and is cancelled otherwise.
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orch.git import PendingDirtyCheck

# any of these means no dirt check of the main worktree (or a bare --help)
_WITHOUT_CHECK = ("--strict", "--base-ref", "--reuse-workspace", "--host", "--help", "-h")

_pending: tuple[Path, PendingDirtyCheck] | None = None


def start(args: Sequence[str]) -> None:
    """Start the dirt check if ``args`` (``sys.argv[1:]``) look like a dispatch that
    will want one."""
    global _pending
    if not args or args[0] != "dispatch":
        return
    try:
        where = Path.cwd()
    except OSError:
        return  # the current directory is gone: the dispatch says so itself
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg in _WITHOUT_CHECK or arg.split("=", 1)[0] in _WITHOUT_CHECK:
            return
        if arg == "--repo" and rest:
            where = Path(rest.pop(0))
        elif arg.startswith("--repo="):
            where = Path(arg.removeprefix("--repo="))
    from orch.errors import GitError
    from orch.git import Git

    try:
        _pending = (where.absolute(), Git().start_dirty_check(where, yield_cpu=True))
    except (OSError, GitError):
        return  # no such directory, or no git: the dispatch says so itself
    atexit.register(_cancel)


def take(repo_path: Path) -> PendingDirtyCheck | None:
    """The early check if it ran in ``repo_path``; one started elsewhere is cancelled."""
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return None
    where, check = pending
    if where == repo_path:
        return check
    check.cancel()
    return None


def _cancel() -> None:
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        pending[1].cancel()
