"""Crash points for orch's own crash-safety tests.

``ORCH_CRASH_AT=<step>`` makes the process kill itself with SIGKILL when it reaches that
step of dispatch, cleanup or doctor, exactly as an operator's kill -9 would; the tests
then check that ``orch doctor --fix`` leaves a consistent state. Unset, it costs nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping


def checkpoint_from_env(env: Mapping[str, str]) -> Callable[[str], None]:
    target = env.get("ORCH_CRASH_AT", "")
    if not target:
        return _noop

    def crash_at(step: str) -> None:
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash_at


def _noop(step: str) -> None:
    return None
