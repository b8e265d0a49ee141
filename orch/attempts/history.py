"""Keeping the store's history in bounds: ``orch db prune`` and ``orch db stats``.

Prune removes the rows of attempts that ended and were cleaned up before a cutoff, a
batch at a time (each batch one short write transaction, so a worker claiming meanwhile
is never stalled for long). Their archives stay on disk: the result names them, since
the store will no longer say where they are.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from orch.attempts.cleanup import parse_age
from orch.errors import InvalidInput, StoreError
from orch.models import CLEANED_UP, TERMINAL_STATES, Attempt
from orch.record import record

if TYPE_CHECKING:
    from orch.store import Store
    from orch.store.history import StoreStats

BATCH = 200  # attempts per write transaction: about 2,000 rows with their events
# a prune of at least this many attempts (about 10,000 rows with what hangs off them)
# refreshes the planner's statistics on PostgreSQL at its end
ANALYZE_AFTER = 1_000


@record
class PruneResult:
    cutoff: dt.datetime
    dry_run: bool
    attempts: int
    rows: dict[str, int]
    archives: tuple[str, ...]  # archives of pruned attempts, left on disk
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "attempts": self.attempts,
            "rows": self.rows,
            "archives": list(self.archives),
            "warnings": list(self.warnings),
        }


def parse_older_than(text: str) -> dt.timedelta:
    """``90d`` and the like (``parse_age``); zero is refused: it would prune everything
    that ended up to this very moment, which is never what a retention period means."""
    age = parse_age(text)
    if age <= dt.timedelta(0):
        raise InvalidInput(f"invalid age {text!r}: give a period longer than zero (e.g. 90d)")
    return age


def prune(
    store: Store,
    older_than: dt.timedelta,
    dry_run: bool = False,
    batch: int = BATCH,
    on_batch: Callable[[list[Attempt]], None] = lambda attempts: None,
    analyze_after: int = ANALYZE_AFTER,
) -> PruneResult:
    """Remove (or with ``dry_run`` count) the rows of attempts that ended and were cleaned
    up more than ``older_than`` ago."""
    cutoff = store.clock() - older_than
    rows: dict[str, int] = {}
    archives: list[str] = []
    total = 0
    for status, state in itertools.product(sorted(CLEANED_UP), sorted(TERMINAL_STATES)):
        last: Attempt | None = None
        while True:
            found = store.prunable(cutoff, batch, status, state, after=last)
            if not found:
                break
            ids = [a.id for a in found]
            counts = store.count_rows_of(ids) if dry_run else store.prune(ids)
            for table, n in counts.items():
                rows[table] = rows.get(table, 0) + n
            total += counts.get("attempts", 0)
            archives.extend(a.archive_path for a in found if a.archive_path)
            on_batch(found)
            # past this batch: what was deleted is gone anyway, what was only counted (or
            # left because it changed meanwhile) must not be read again
            last = found[-1]
            if len(found) < batch:
                break
    warnings: list[str] = []
    if total >= analyze_after and not dry_run:
        try:
            store.refresh_statistics()
        except StoreError as exc:  # the rows are gone either way: the prune succeeded
            warnings.append(
                f"the planner's statistics were not refreshed ({exc.message}); autovacuum "
                "refreshes them later, or run ANALYZE"
            )
    return PruneResult(cutoff, dry_run, total, rows, tuple(archives), tuple(warnings))


def stats(store: Store) -> StoreStats:
    return store.stats()
