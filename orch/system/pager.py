"""Paging long output the way git does: which pager, and running it.

The pager is ``GIT_PAGER``, else git's ``core.pager`` (the caller reads it), else
``PAGER``, else ``less``; an empty one or ``cat`` means none. Like git, ``LESS`` defaults
to ``FRX`` (quit when it fits one screen, pass colours through, leave the screen as it
was) and ``LV`` to ``-c``, and the command runs through ``sh -c``. Only the caller knows
whether standard output is a terminal: nothing here decides to page.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping


def pager_command(environ: Mapping[str, str], configured: str | None = None) -> str | None:
    """The pager git would use (``configured``: the repository's ``core.pager``)."""
    for candidate in (environ.get("GIT_PAGER"), configured, environ.get("PAGER")):
        if candidate is not None:
            chosen = candidate
            break
    else:
        chosen = "less"
    chosen = chosen.strip()
    return None if chosen in ("", "cat") else chosen


def start_pager(command: str, environ: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
    """Start ``command`` reading from a pipe (``stdin`` of the result); None when it
    cannot start (the caller then writes to its own output)."""
    env = dict(environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        return subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, env=env)
    except OSError:
        return None


def finish_pager(proc: subprocess.Popen[bytes]) -> None:
    """Close the pager's input and wait until the reader quits it."""
    if proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    proc.wait()


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
