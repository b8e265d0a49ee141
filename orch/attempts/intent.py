"""Recording a new attempt's intent, whatever random id it was given, through an outage.

Attempt ids are 32 random bits, short enough to type. In a store with tens of thousands
of attempts two of them collide about once in a hundred thousand dispatches; the store
then refuses the second (``AttemptIdTaken``) and it is recorded under a fresh id, with
the names that were made from the old one made again.

A store that cannot be reached is ridden out (``orch.outage``). A try whose answer was
lost may have committed, so before trying again the store is asked whether this very
intent is recorded: it is never recorded twice, nor refused as a collision with itself.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from orch import naming
from orch.errors import AttemptIdTaken
from orch.models import Attempt, NewAttempt
from orch.outage import STORE_PATIENCE, Patience, ride_out

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
    patience: Patience = STORE_PATIENCE,
    sleep: Callable[[float], object] = time.sleep,
) -> Attempt:
    """``store.create_attempt``, drawing a fresh id if this one is taken. ``renamed``
    returns the attempt under a new id (default: only the id changes)."""
    for tries_left in reversed(range(ID_TRIES)):
        try:
            return ride_out(_creating(store, new, actor, retry_of), patience, sleep=sleep)
        except AttemptIdTaken:
            if not tries_left:
                raise
            fresh = naming.new_attempt_id()
            new = renamed(new, fresh) if renamed else dataclasses.replace(new, id=fresh)
    raise AssertionError("unreachable: the last try returns or raises")


def _creating(
    store: Store, new: NewAttempt, actor: str, retry_of: int | None
) -> Callable[[], Attempt]:
    """One try after another of recording ``new``; from the second on, the previous try's
    lost answer is looked for first."""
    tried = False

    def create() -> Attempt:
        nonlocal tried
        if tried:
            recorded = _recorded(store, new)
            if recorded is not None:
                return recorded
        tried = True
        return store.create_attempt(new, actor, retry_of=retry_of)

    return create


def _recorded(store: Store, new: NewAttempt) -> Attempt | None:
    """The attempt a lost try recorded for ``new``, if it did (same id and same names: the
    names are made from the id, so another dispatch cannot have them)."""
    for attempt in store.get_many([new.id]):
        same = (attempt.task_key, attempt.repository, attempt.branch_name, attempt.worktree_path)
        if same == (new.task_key, new.repository, new.branch_name, new.worktree_path):
            return attempt
    return None
