"""``orch land``: take attempts' committed work into a target branch, safely.

Conflicts are found and the result is built without touching any worktree
(orch.git.landing); the check runs on the merged result (``verify``); the target moves
only by compare-and-swap under a per-target lock, after an intent naming the result is
recorded (``one``); ``orch doctor --fix`` completes or clears an intent a crash left
(``recovery``). ``orch land A B C`` lands in order, each onto the result of the one
before; one that fails is reported and skipped, the rest go on.

The modules: ``request`` (what is asked, what is answered), ``refusals`` (what refuses a
land before the lock), ``target`` (which branch, its lock), ``build`` (the strategies),
``checkouts`` (a checked-out target: refused when dirty, then following), ``verify`` (the
check on the result), ``one`` (one attempt, start to end), ``recovery`` (after a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from orch.attempts.land.build import Strategy
from orch.attempts.land.one import land_one
from orch.attempts.land.recovery import complete_landing
from orch.attempts.land.request import LandOutcome, LandRequest
from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git, PendingDirtyCheck

if TYPE_CHECKING:
    from orch.store import Store

DRY_RUNS_AT_ONCE = 4

__all__ = ["LandOutcome", "LandRequest", "Strategy", "complete_landing", "land"]


def land(
    store: Store,
    settings: Settings,
    git: Git,
    request: LandRequest,
    actor: str,
    environ: Mapping[str, str],
    checkpoint: Callable[[str], None] = lambda step: None,
    on_outcome: Callable[[LandOutcome], None] = lambda outcome: None,
    early: dict[str, PendingDirtyCheck] | None = None,
) -> list[LandOutcome]:
    """Land each attempt of ``request.refs`` in order; a failure is its outcome's error
    (the caller decides the exit code), and the next attempt goes on. ``early``: looks
    at the attempts' uncommitted work the caller started (by worktree_path): each land
    takes its own; the caller stops those left."""
    early = {} if early is None else early

    def one(ref: str) -> LandOutcome:
        try:
            return land_one(store, settings, git, request, ref, actor, environ, checkpoint, early)
        except OrchError as exc:
            return LandOutcome(ref, "failed", error=exc)

    if request.dry_run and len(request.refs) > 1:
        # a dry run changes nothing and tries each attempt onto the target as it is: side
        # by side (most of its time goes to starting git processes); imported only here:
        # a land of one attempt does not pay for it (nor for the logging it imports)
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(DRY_RUNS_AT_ONCE) as pool:
            results = pool.map(one, request.refs)
    else:
        results = map(one, request.refs)
    outcomes = []
    for outcome in results:  # in order either way
        on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes
