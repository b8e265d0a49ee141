"""The dashboard's attempts page (``GET /api/attempts``): its query read and checked, one
page of ``orch list --json`` answered.

Always a page, newest first, so that the first view and each update cost the same with a
year of history as with a day's: ``limit`` (at most ``MAX_PAGE``), ``before`` (an attempt
id, the cursor of the next older page; ``more`` says how many are left, counted up to the
cap), ``state`` (repeatable) and ``task`` (a task key, matched exactly, as ``orch list
--task``: the filter reads the attempts' task index; a substring would read every row).
A bad value is refused with one line saying what is allowed, never a Python message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orch import naming
from orch.attempts.queries import listing
from orch.errors import InvalidInput
from orch.models import State

if TYPE_CHECKING:
    from orch.store import Store

Query = dict[str, list[str]]
# an attempt's record is about 2 KB (its prompt included), so a page stays near 100 KB
PAGE = 50
MAX_PAGE = 500
# what the endpoint reads; ``token`` is the reader's credential (orch.serve.web)
KNOWN = ("limit", "before", "state", "task", "token")


def page_body(store: Store, query: Query) -> dict[str, Any]:
    """The body of ``orch list --json`` with the same filters, one page of it."""
    unknown = sorted(set(query) - set(KNOWN))
    if unknown:
        raise InvalidInput(
            f"bad query: no parameter {unknown[0]!r} (the attempts page reads "
            f"{', '.join(KNOWN[:-1])})"
        )
    found = listing(store, states(query), one(query, "task"), limit(query), one(query, "before"))
    return found.to_dict()


def one(query: Query, name: str) -> str | None:
    """The parameter's value; given twice, which one was meant is unknown: refused."""
    values = query.get(name, [])
    if len(values) > 1:
        raise InvalidInput(f"bad query: '{name}' given {len(values)} times")
    return values[0] if values else None


def limit(query: Query) -> int:
    given = one(query, "limit")
    if given is None:
        return PAGE
    number = naming.whole_number(given.strip())
    if number is None or not 1 <= number <= MAX_PAGE:
        raise InvalidInput(
            f"bad query: limit must be a whole number from 1 to {MAX_PAGE}, not {given!r}"
        )
    return number


def states(query: Query) -> tuple[State, ...]:
    names = [str(s) for s in State]
    wrong = [s for s in query.get("state", []) if s not in names]
    if wrong:
        raise InvalidInput(f"bad query: state must be one of {', '.join(names)}, not {wrong[0]!r}")
    return tuple(State(s) for s in dict.fromkeys(query.get("state", [])))
