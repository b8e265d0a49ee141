"""The command line: the only place that imports click and maps errors to exit codes."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``orch`` command. A dispatch's slowest check may start before click and the
    store are imported (``orch.cli.early``)."""
    from orch.cli import early

    early.start(sys.argv[1:])
    from orch.cli.main import main as run

    try:
        run()
    except SystemExit as exc:
        _exit_now(exc.code)
        raise
    _exit_now(0)


def _exit_now(code: object) -> None:
    """End the process without tearing the interpreter down.

    By now the command has closed what it opened (the store on click's context close)
    and only the interpreter's own teardown is left: freeing every module (SQLAlchemy's
    are many) cost 30-40 ms per command here, more than some commands' own work. So once
    output is flushed and the atexit handlers have run, the process exits at once. Not
    while another thread still runs (the interpreter would wait for it), and not when
    flushing fails (the normal exit reports that)."""
    import atexit
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
