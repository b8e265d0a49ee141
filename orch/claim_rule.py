"""The claim rule: which attempt a worker may take, stated once.

The rule is data: terms on the attempt's columns, grouped into the ways an attempt can
be claimable. The store compiles the same terms into the SQL of its claim statements
(``orch.store.claims``), and ``why_not`` reads them to say why a named attempt cannot be
claimed, so the two can never disagree. This module never touches the store or SQL;
stdlib and ``orch.models`` only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orch.models import State, WorkspaceStatus
from orch.record import record


@record
class Claimant:
    """Who asks: the worker's name, its host, and the clones it has (repository URLs)."""

    worker: str
    host: str
    repository_urls: tuple[str, ...] = ()


# Claimant fields that hold several values (the SQL gets an expanding IN for them).
SEQUENCE_FIELDS = frozenset({"repository_urls"})


@record
class Term:
    """``column`` holds one of ``allowed`` or (``of_claimant``) the claimant's own value
    of that name. ``refusal`` says why not; it may name ``{id}``, ``{value}`` (what the
    column holds) and the claimant's fields."""

    column: str
    allowed: tuple[str | None, ...]
    of_claimant: str | None
    refusal: str

    def claimant_values(self, claimant: Claimant) -> tuple[str, ...]:
        if self.of_claimant is None:
            return ()
        value = getattr(claimant, self.of_claimant)
        return tuple(value) if self.of_claimant in SEQUENCE_FIELDS else (value,)

    def holds(self, row: Any, claimant: Claimant) -> bool:
        value = getattr(row, self.column)
        return value in self.allowed or value in self.claimant_values(claimant)

    def explain(self, row: Any, claimant: Claimant) -> str:
        fields = dataclasses.asdict(claimant)
        return self.refusal.format(id=row.id, value=getattr(row, self.column), **fields)


@record
class Way:
    """One way an attempt is claimable: every term holds. The first term tells the ways
    apart (it reads the workspace status)."""

    name: str
    terms: tuple[Term, ...]


QUEUED = Term("state", (State.QUEUED,), None, "attempt {id} is {value}, not queued")
FOR_THIS_WORKER = Term(
    "worker",
    (None,),
    "worker",
    "attempt {id} is assigned to worker {value!r}, not {worker!r}: "
    "use 'orch reassign {id} --worker {worker}'",
)
# what every claimable attempt is, whichever way
COMMON = (QUEUED, FOR_THIS_WORKER)

READY_HERE = Way(
    "its workspace is ready on the claimant's host",
    (
        Term(
            "workspace_status",
            tuple(s for s in WorkspaceStatus if s.ready_to_run),
            None,
            "attempt {id} has workspace_status {value}: not ready to claim",
        ),
        Term(
            "workspace_host",
            (None,),
            "host",
            "attempt {id}'s worktree is on host {value}, not {host}",
        ),
    ),
)
PROVISIONED_BY_CLAIMANT = Way(
    "the claimant provisions it in its own clone",
    (
        Term(
            "workspace_status",
            (WorkspaceStatus.PENDING,),
            None,
            "attempt {id} has workspace_status {value}: not ready to claim",
        ),
        Term("target_host", ("any",), "host", "attempt {id} is for host {value}"),
        Term(
            "repository_url",
            (),
            "repository_urls",
            "attempt {id} needs a clone of {value} (orch work --repo PATH)",
        ),
    ),
)
# in the order a worker looks: attempts ready on its host before ones it must provision
WAYS = (READY_HERE, PROVISIONED_BY_CLAIMANT)
# every column the rule reads (and ``id``, which the refusals name)
COLUMNS = ("id", *dict.fromkeys(t.column for t in (*COMMON, *(t for w in WAYS for t in w.terms))))


def why_not(row: Any, claimant: Claimant) -> str | None:
    """Why ``claimant`` cannot claim the attempt in ``row`` (anything with the attributes
    named in ``COLUMNS``), or None when it can."""
    for term in COMMON:
        if not term.holds(row, claimant):
            return term.explain(row, claimant)
    way = next((w for w in WAYS if w.terms[0].holds(row, claimant)), None)
    if way is None:
        return WAYS[0].terms[0].explain(row, claimant)
    for term in way.terms[1:]:
        if not term.holds(row, claimant):
            return term.explain(row, claimant)
    return None
