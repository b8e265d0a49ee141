"""Recording a new attempt's intent, whatever random id it was given.

Attempt ids are 32 random bits, short enough to type. In a store with tens of thousands
of attempts two of them collide about once in a hundred thousand dispatches; the store
then refuses the second (``AttemptIdTaken``) and it is recorded under a fresh id, with
the names that were made from the old one made again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from orch import naming
from orch.errors import AttemptIdTaken
from orch.models import Attempt, NewAttempt

if TYPE_CHECKING:
    from orch.store import Store

ID_TRIES = 3


def record_intent(
    store: Store,
    new: NewAttempt,
    actor: str,
    *,
    retry_of: int | None = None,
    renamed: Callable[[NewAttempt, str], NewAttempt] | None = None,
) -> Attempt:
    """``store.create_attempt``, drawing a fresh id if this one is taken. ``renamed``
    returns the attempt under a new id (default: only the id changes)."""
    for _ in range(ID_TRIES - 1):
        try:
            return store.create_attempt(new, actor, retry_of=retry_of)
        except AttemptIdTaken:
            fresh = naming.new_attempt_id()
            new = renamed(new, fresh) if renamed else dataclasses.replace(new, id=fresh)
    return store.create_attempt(new, actor, retry_of=retry_of)
