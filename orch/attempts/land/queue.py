"""The land queue of ``orch serve``: ``orch land --queue`` (and the dashboard's Land
button) records lands; the loop lands them in order, one at a time, each with the use case
``orch land`` runs, and records each one's result on its entry (the landed commit, a
conflict's paths, a failed check, a refusal's one line).

One at a time: a loop lands its queue in order, so two entries into one target never race
(and the target's lock serialises them with any ``orch land`` run by hand meanwhile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from orch.attempts.land.build import Strategy
from orch.attempts.land.one import land_one
from orch.attempts.land.refusals import refuse_early
from orch.attempts.land.request import LandOutcome, LandRequest
from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import CheckFailed, LandConflict, LandRefused, NotFound, OrchError, TargetMoved
from orch.git import Git
from orch.models import LandQueueState, QueuedLand

if TYPE_CHECKING:
    from orch.store import Store

PATHS_KEPT = 50  # a conflict's paths kept on its entry (the event keeps as many)
# the result word of each kind of failure (any other error: "failed")
_RESULT_OF: tuple[tuple[type[OrchError], str], ...] = (
    (LandConflict, "conflict"),
    (CheckFailed, "check failed"),
    (LandRefused, "refused"),
    (NotFound, "not found"),
    (TargetMoved, "target moved"),
)


def queue_lands(
    store: Store, settings: Settings, refs: Sequence[str], request: LandRequest, actor: str
) -> list[QueuedLand]:
    """Queue a land of each attempt of ``refs``, in order, for the loop of this host (the
    repository's path is a path here); every ref is found and checked first (what ``orch
    land`` refuses before looking at git: one being landed, one still live, one without a
    branch), so an unknown or refused one queues nothing."""
    attempts = [find_attempt(store, ref) for ref in refs]
    for attempt in attempts:
        refuse_early(store, settings, request, attempt)
    return [
        store.queue_land(
            attempt.id,
            request.repository or attempt.repository,
            settings.host_name,
            request.into,
            str(request.strategy),
            request.message,
            request.check,
            request.keep,
            request.resolve,
            actor,
        )
        for attempt in attempts
    ]


def recover(store: Store, host: str) -> None:
    """Entries a loop of ``host`` left ``landing`` when it died (only this loop lands this
    host's entries: whatever is ``landing`` when it starts a cycle was left by a dead
    one; another host's loop never touches them): landed when the attempt
    is, queued again otherwise (a land killed half-way left its target at its old commit
    or its new one, and an intent ``orch doctor --fix`` completes; landing it again says
    which)."""
    for entry in store.queued_lands([LandQueueState.LANDING], host=host):
        attempt = store.get(entry.attempt_id)
        if attempt.landed:
            store.move_land(
                entry.id,
                LandQueueState.LANDING,
                LandQueueState.DONE,
                result="landed",
                target=attempt.landed_into,
                landed_commit=attempt.landed_commit,
            )
        else:
            store.move_land(entry.id, LandQueueState.LANDING, LandQueueState.QUEUED)


def land_queue(
    store: Store, settings: Settings, git: Git, actor: str, environ: Mapping[str, str]
) -> list[QueuedLand]:
    """Land every entry queued on this host, in order; the entries as they ended."""
    recover(store, settings.host_name)
    done = []
    for entry in store.queued_lands([LandQueueState.QUEUED], host=settings.host_name):
        ended = land_entry(store, settings, git, entry, actor, environ)
        if ended is not None:
            done.append(ended)
    return done


def land_entry(
    store: Store,
    settings: Settings,
    git: Git,
    entry: QueuedLand,
    actor: str,
    environ: Mapping[str, str],
) -> QueuedLand | None:
    """Land one entry with ``orch land``'s own use case and record its result; None when
    another loop took it first."""
    if store.move_land(entry.id, LandQueueState.QUEUED, LandQueueState.LANDING) is None:
        return None
    request = LandRequest(
        refs=(entry.attempt_id,),
        into=entry.into_branch,
        strategy=Strategy(entry.strategy),
        message=entry.message,
        check=entry.run_check,
        resolve=entry.resolve,
        keep=entry.keep,
        repository=entry.repository,
    )
    try:
        outcome = land_one(
            store, settings, git, request, entry.attempt_id, actor, environ, lambda step: None, {}
        )
    except OrchError as exc:
        outcome = LandOutcome(entry.attempt_id, "failed", error=exc)
    return _record(store, entry, outcome)


def _record(store: Store, entry: QueuedLand, outcome: LandOutcome) -> QueuedLand | None:
    error = outcome.error
    if error is None:
        return store.move_land(
            entry.id,
            LandQueueState.LANDING,
            LandQueueState.DONE,
            result=outcome.result,
            target=outcome.target,
            landed_commit=outcome.commit,
        )
    word = next((w for kind, w in _RESULT_OF if isinstance(error, kind)), "failed")
    paths = list(error.paths[:PATHS_KEPT]) if isinstance(error, LandConflict) else None
    return store.move_land(
        entry.id,
        LandQueueState.LANDING,
        LandQueueState.FAILED,
        result=word,
        target=outcome.target,
        paths=paths,
        exit_code=error.exit_code,
        reason=error.message,
    )
