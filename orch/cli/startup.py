"""Every trick that makes ``orch`` start or end faster, and what each one buys.

A command is a short-lived process: for ``orch --help``, ``orch list`` and a dispatch the
interpreter's start-up and teardown are a large share of the time. The tricks below are the
only ones; each is kept while it measurably pays, and no other module plays such games.
Numbers: median wall time of 15-20 interleaved runs with and without the trick, on a
1,000-file repository, on a shared 2-core machine under heavy load (so: what a loaded
machine sees; the ratios matter more than the milliseconds).

1. The exit without teardown (``exit_now``): once output is flushed and the atexit
   handlers have run, ``os._exit``, skipping the interpreter's freeing of every module
   (SQLAlchemy's are many). Measured: ``orch list`` 798 vs 1,136 ms, ``orch --help``
   184 vs 201 ms, ``orch dispatch`` DISPATCH_EXIT.
2. The dirt check started from a glance at ``sys.argv`` (``start_dirty_check``): a
   non-strict dispatch from the main worktree's HEAD runs ``git status`` there; it starts
   before click and the store are imported, so git uses the second core while Python
   imports. The glance knows dispatch's options by hand (``DISPATCH_VALUE_OPTIONS``,
   ``WITHOUT_CHECK``): a test keeps them equal to click's. Measured: ``orch dispatch``
   DISPATCH_EARLY.

Measured and dropped: DROPPED.

Nothing here may change what a command does: a trick that cannot apply (a thread still
running, output that cannot be flushed, a glance that guessed wrong) steps aside.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orch.git import PendingDirtyCheck

# dispatch's options that take a value (the glance skips the value); a test compares them
# with click's, so that an option's value is never taken for an option
DISPATCH_VALUE_OPTIONS = frozenset(
    (
        "--repo",
        "--prompt",
        "--prompt-file",
        "--worker",
        "--base-ref",
        "--phase",
        "--host",
        "--sparse",
    )
)
# any of these means no dirt check of the main worktree (or a bare --help)
WITHOUT_CHECK = frozenset(("--strict", "--base-ref", "--reuse-workspace", "--host", "--help", "-h"))

_pending: tuple[Path, PendingDirtyCheck] | None = None


# -- 1. the exit without teardown -----------------------------------------------------------


def exit_now(code: object) -> None:
    """End the process at once if the command is done: no other thread running (the
    interpreter would wait for it), an exit status (not a message to print), and standard
    output and error flushed before and after the atexit handlers. Else return, and the
    normal exit takes over."""
    import os
    import threading

    if threading.active_count() > 1:
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        return  # a message to print: the normal exit does that
    if not _flushed():
        return
    atexit._run_exitfuncs()
    if not _flushed():  # what the atexit handlers wrote
        return
    os._exit(status & 0xFF)


def _flushed() -> bool:
    """Flush standard output and error; False if either is gone (closed by the caller:
    the normal exit says how it went) or cannot be flushed."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            return False
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            return False
    return True


# -- 2. the dirt check started before click -------------------------------------------------


def start_dirty_check(args: Sequence[str]) -> None:
    """Start the dirt check if ``args`` (``sys.argv[1:]``) look like a dispatch that
    will want one. The glance can be wrong: the check is only used if the real dispatch
    asks for the same directory and needs a dirt check there (``take_dirty_check``), and
    is cancelled otherwise."""
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
        name, has_value = arg.split("=", 1)[0], "=" in arg
        if name in WITHOUT_CHECK:
            return
        if name not in DISPATCH_VALUE_OPTIONS or has_value:
            if name == "--repo":
                where = Path(arg.removeprefix("--repo="))
            continue
        value = rest.pop(0) if rest else None
        if name == "--repo" and value is not None:
            where = Path(value)
    from orch.errors import GitError
    from orch.git import Git

    try:
        _pending = (where.absolute(), Git().start_dirty_check(where, yield_cpu=True))
    except (OSError, GitError):
        return  # no such directory, or no git: the dispatch says so itself
    atexit.register(_cancel)


def take_dirty_check(repo_path: Path) -> PendingDirtyCheck | None:
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
