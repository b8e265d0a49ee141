"""The command line: the only place that imports click and maps errors to exit codes."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``orch`` command. A dispatch's slowest check may start before click and the
    store are imported (``orch.cli.early``)."""
    from orch.cli import early

    early.start(sys.argv[1:])
    from orch.cli.main import main as run

    run()
