"""The command line: the only place that imports click and maps errors to exit codes."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``orch`` command, with the start-up tricks of ``orch.cli.startup``: a
    dispatch's slowest check may start before click and the store are imported, and a
    finished command exits without the interpreter's teardown."""
    from orch.cli import startup

    startup.start_dirty_check(sys.argv[1:])
    from orch.cli.main import main as run

    try:
        run()
    except SystemExit as exc:
        startup.exit_now(exc.code)
        raise
    startup.exit_now(0)
