"""Counts the everyday paths show stop at ``COUNT_CAP``.

A count is a pass over every entry it counts, so an exact count of ended attempts grows
with the history: the dashboard's counts per state and the listing's "N more" cost ten
times more with 100k ended attempts than with 1k. Counted with ``LIMIT COUNT_CAP + 1``,
such a count reads at most that many index entries whatever the history holds, is exact
below the cap, and past it says only "at least": shown as ``1,000+``. Standard library
only.
"""

from __future__ import annotations

COUNT_CAP = 1000


def capped(found: int, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """A count the store stopped at ``cap + 1`` -> (what to show, whether it is a floor)."""
    return min(found, cap), found > cap


def count_text(count: int, is_floor: bool) -> str:
    """``953``, ``1,000+``: a floor says so."""
    return f"{count:,}+" if is_floor else f"{count:,}"
