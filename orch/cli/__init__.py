"""The command line: the only place that imports click and maps errors to exit codes."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``orch`` command, with the start-up tricks of ``orch.cli.startup``: a
    dispatch's slowest check may start before click and the store are imported, a
    finished command exits without the interpreter's teardown, and the background work
    it asked for (an event deliverer) starts only then."""
    from orch.cli import startup

    startup.start_dirty_check(sys.argv[1:])
    startup.command_line_runs()
    from orch.cli.main import main as run

    try:
        run()
    except SystemExit as exc:
        startup.exit_now(exc.code)
        raise
    except BaseException:
        startup.run_last()  # a bug's traceback, ^C: what the command asked for still starts
        raise
    startup.exit_now(0)
