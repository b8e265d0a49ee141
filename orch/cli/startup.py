"""Every trick that makes ``orch`` start or end faster, and what each one buys.

A command is a short-lived process: for ``orch --help``, ``orch list`` and a dispatch the
interpreter's start-up and teardown are a large share of its time. These are the only
tricks; each stays while it measurably pays, and no other module plays such games.
Numbers: medians of interleaved runs with and without the trick (20 for ``--help`` and
``list``, 10-15 for a cold dispatch in a 1,000- and a 10,000-file repository), measured
2026-12-07 on a shared 2-core machine under heavy load (load average 18-25): what a busy
machine sees, with a spread of several hundred ms for a dispatch.

1. The exit without teardown (``exit_now``): once output is flushed and the atexit
   handlers have run, ``os._exit``, skipping the interpreter's freeing of every module
   (SQLAlchemy's are many). ``orch --help`` 184 against 201 ms, ``orch list`` 798
   against 1,136 ms, a dispatch at 1k files 2,005 against 2,455 ms.
2. The dirt check started from a glance at ``sys.argv`` (``start_dirty_check``): a
   non-strict dispatch from the main worktree's HEAD runs ``git status`` there; started
   before click and the store are imported, git works on the second core while Python
   imports. A dispatch at 10k files 2,656 against 2,922 ms; at 1k files (a ``git
   status`` of a few ms) no gain (2,005 against 1,775 ms, within the spread). The glance
   knows dispatch's options by hand (``DISPATCH_VALUE_OPTIONS``, ``WITHOUT_CHECK``): a
   test keeps them equal to click's.
3. The login name without ``getpass`` (``login_name``): ``getpass`` and ``termios`` cost
   0.7 ms of import (``-X importtime``) on every command that names its actor, too little
   to see in a dispatch's spread (2,005 against 1,998 ms at 1k files); kept because a
   test holds a dispatch's imports to what it uses.

4. Background work starts last (``start_last``): the event deliverer a change asks for
   (``orch.attempts.events.kick``) is started by ``exit_now`` once the store is closed and
   the output flushed, right before ``os._exit``, instead of when click closes the
   command, and it waits for this process to end before it runs
   (``processes.spawn_detached(after_exit=True)``): the deliverer is a second interpreter
   importing the store (about 300 ms of CPU), and started beside the command's own end
   (closing the store, SQLite's checkpoint, the exit) it slowed that end: 3.5 ms without
   a child, 8.5 ms with one (medians of 20 interleaved runs, load 3.4). ``orch cancel``
   with three sinks: ``docs/roadmaps/archive/events.md``.

Measured and dropped: a shorter thread switch interval while a checkout is made ahead
(``sys.setswitchinterval(0.0005)``; 10k files 2,656 against 2,668 ms, 1k files 2,005
against 1,872 ms).

Nothing here may change what a command does: a trick that cannot apply (another thread
still running, output that cannot be flushed, a glance that guessed wrong) steps aside.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable, Sequence
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
        "--attempts",
        "--base-ref",
        "--phase",
        "--host",
        "--sparse",
    )
)
# any of these means no dirt check of the main worktree (or a bare --help)
WITHOUT_CHECK = frozenset(("--strict", "--base-ref", "--reuse-workspace", "--host", "--help", "-h"))
# set when a shell asks for completions (``orch.cli.completion``): the words are in
# COMP_WORDS, nothing runs, and the answer is due within a key press, so no dirt check
COMPLETE_VAR = "_ORCH_COMPLETE"

_pending: tuple[Path, PendingDirtyCheck] | None = None


# -- 1. the exit without teardown -----------------------------------------------------------


def exit_now(code: object) -> None:
    """End the process at once if the command is done: no other thread running (the
    interpreter would wait for it), an exit status (not a message to print), and standard
    output and error flushed before and after the atexit handlers. Else return, and the
    normal exit takes over. Either way what ``start_last`` was given starts first."""
    import os
    import threading

    if threading.active_count() > 1:
        return run_last()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        return run_last()  # a message to print: the normal exit does that
    if not _flushed():
        return run_last()
    atexit._run_exitfuncs()
    if not _flushed():  # what the atexit handlers wrote
        return run_last()
    run_last()
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
    import os

    if COMPLETE_VAR in os.environ:
        return  # a completion request: argv is not what will run
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


# -- 3. the login name without getpass ------------------------------------------------------


def login_name() -> str:
    """The login name as ``getpass.getuser`` finds it, without importing ``getpass`` (and
    ``termios``); the uid when the account has no name."""
    import os

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


# -- 4. background work started last -------------------------------------------------------

# what the command asked to start once it has ended; None while no command line is ending
# (orch used in process: a test's runner, a server's handler)
_last: list[Callable[[], None]] | None = None


def command_line_runs() -> None:
    """``orch.cli.main`` is running a command line: ``start_last`` may defer to its end."""
    global _last
    _last = []


def start_last(start: Callable[[], None]) -> bool:
    """Run ``start`` (which must not raise) as the command's last act, after its output
    and its store are done with; False when no command line is ending in this process
    (then the caller starts it now)."""
    if _last is None:
        return False
    _last.append(start)
    return True


def run_last() -> None:
    """Run what ``start_last`` was given, once."""
    global _last
    pending, _last = _last or [], None
    for start in pending:
        start()
