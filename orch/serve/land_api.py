"""The dashboard's land queue: ``GET /api/lands`` lists it with each entry's result, and
``POST /api/lands`` (the Land button: ``{"attempt": ID, "strategy": ...}``) queues a land
for the loop, through the use case ``orch land --queue`` runs. The server never lands
itself: the loop does, one at a time, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orch.attempts.land.build import Strategy
from orch.attempts.land.queue import queue_lands
from orch.attempts.land.request import LandRequest
from orch.attempts.queries import looks_like_path
from orch.config import Settings
from orch.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from orch.store import Store

SHOWN = 50  # the newest entries the dashboard lists


def lands_body(store: Store) -> dict[str, Any]:
    """``GET /api/lands``: the newest entries, oldest first, as ``orch land --queue --json``."""
    return {"lands": [e.to_dict() for e in store.queued_lands(limit=SHOWN)]}


def queue_body(
    store: Store, settings: Settings, body: dict[str, Any], actor: str
) -> dict[str, Any]:
    """``POST /api/lands``: queue the land of ``attempt`` with ``strategy`` (default
    squash) and, optionally, ``into`` a branch."""
    attempt, strategy, into = body.get("attempt"), body.get("strategy", "squash"), body.get("into")
    if not isinstance(attempt, str) or not attempt:
        raise InvalidInput("a land needs a JSON body with an 'attempt' id")
    if looks_like_path(attempt):  # the CLI reads a payload by path; over HTTP, no file
        raise NotFound(f"no attempt {attempt!r}: name it by id")
    if strategy not in {str(s) for s in Strategy}:
        names = ", ".join(str(s) for s in Strategy)
        raise InvalidInput(f"unknown strategy {strategy!r} (one of {names})")
    if into is not None and (not isinstance(into, str) or not into.strip()):
        raise InvalidInput("'into' must name a branch")
    request = LandRequest(refs=(attempt,), into=into, strategy=Strategy(strategy))
    [entry] = queue_lands(store, settings, request.refs, request, actor)
    return {"land": entry.to_dict()}
