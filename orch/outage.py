"""Riding out an outage of the attempt store: the one place that waits for it to come back.

A command that must not give up at the first dropped connection (the worker's loop and its
heartbeat, ``orch wait``) runs its store call through ``ride_out``. Only
``StoreUnavailable`` is tried again, with exponential back-off and jitter (so that many
workers cut off by one server restart do not all come back in the same instant), until a
bounded deadline; any other error, a schema too new or a broken rule, is raised at once.
The clock, the sleep and the random source are arguments, so a test drives it without
waiting. This module never talks to the store itself; it imports only ``orch.errors``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from orch.errors import StoreUnavailable
from orch.record import record

_T = TypeVar("_T")


@record
class Patience:
    """How long, and how often, a store that cannot be reached is tried again."""

    limit: float = 120.0  # seconds from the first try; then the last error is raised
    first_delay: float = 0.1
    max_delay: float = 5.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delay(self, attempt: int, unit_random: float) -> float:
        """The pause after the ``attempt``-th failure (from 0); ``unit_random`` in [0, 1)."""
        base = min(self.first_delay * 2.0**attempt, self.max_delay)
        return base * (1 - self.jitter + 2 * self.jitter * unit_random)


# A restart or failover of PostgreSQL takes seconds to a minute: two minutes covers it,
# and a worker that waits longer than that is better told so than left hanging.
STORE_PATIENCE = Patience()


def ride_out(
    call: Callable[[], _T],
    patience: Patience = STORE_PATIENCE,
    *,
    until: float | None = None,
    on_retry: Callable[[StoreUnavailable, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    unit_random: Callable[[], float] = random.random,
) -> _T:
    """``call()``, tried again while the store is unavailable, for up to ``patience.limit``
    seconds (and never past ``until``, a time on ``clock``).

    ``on_retry(error, pause)`` is told before each pause (to say so on stderr, say).
    ``sleep`` may be an ``Event.wait``: when it returns true the caller was told to stop,
    and the last error is raised instead of trying again.
    """
    deadline = clock() + patience.limit
    if until is not None:
        deadline = min(deadline, until)
    failures = 0
    while True:
        try:
            return call()
        except StoreUnavailable as exc:
            pause = patience.delay(failures, unit_random())
            if clock() + pause > deadline:
                raise
            if on_retry is not None:
                on_retry(exc, pause)
            if sleep(pause):
                raise
            failures += 1
