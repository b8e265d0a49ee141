"""What each run's agent reported it consumed: tokens, cost and model, per run.

Written once per run by whoever ran it, after the run ended; like a run's end it is
history, so it is recorded even after the lease is gone. Read per attempt, in chunks of
ids, only for the runs that reported something.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select, update

from orch.errors import AttemptNotFound
from orch.models import Usage
from orch.store.base import StoreBase
from orch.store.tables import attempt_runs as _R

_IN_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit
_COLUMNS = ("input_tokens", "output_tokens", "cached_tokens", "cost_usd", "model")


class UsageOps(StoreBase):
    def record_usage(
        self, attempt_id: str, number: int, usage: Usage | None, unreadable: int = 0
    ) -> None:
        """Record run ``number``'s usage (None: the agent reported none) and, as an event,
        how many report lines could not be read."""
        with self._write() as conn:
            values = {name: getattr(usage, name) for name in _COLUMNS} if usage else {}
            if values:
                found = conn.execute(
                    update(_R)
                    .where(_R.c.attempt_id == attempt_id, _R.c.number == number)
                    .values(**values)
                )
                if found.rowcount != 1:
                    raise AttemptNotFound(f"attempt {attempt_id} has no run {number}")
            if unreadable:
                self._event(
                    conn, attempt_id, "usage_unreadable", "orch work", run=number, lines=unreadable
                )

    def usage_of(self, attempt_ids: Iterable[str]) -> dict[str, dict[int, Usage]]:
        """Attempt id -> run number -> usage, for the runs whose agent reported any."""
        ids = list(dict.fromkeys(attempt_ids))
        found: dict[str, dict[int, Usage]] = {}
        reported = or_(*(_R.c[name].is_not(None) for name in _COLUMNS))
        for start in range(0, len(ids), _IN_CHUNK):
            chunk: Sequence[str] = ids[start : start + _IN_CHUNK]
            with self._read() as conn:
                rows = conn.execute(
                    select(_R.c.attempt_id, _R.c.number, *(_R.c[name] for name in _COLUMNS))
                    .where(_R.c.attempt_id.in_(chunk), reported)
                    .order_by(_R.c.attempt_id, _R.c.number)
                )
                for row in rows:
                    found.setdefault(row.attempt_id, {})[row.number] = Usage(
                        input_tokens=row.input_tokens,
                        output_tokens=row.output_tokens,
                        cached_tokens=row.cached_tokens,
                        cost_usd=row.cost_usd,
                        model=row.model,
                    )
        return found
