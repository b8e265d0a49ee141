"""Counts that stop at a cap: the SQL behind ``COUNT_CAP`` (orch.models.counts).

An exact count passes over every entry it counts, so it grows with the history. These
count the rows themselves, newest first, at most ``cap + 1`` of them: read down an index
that leads to the newest-first column (after the filter's own columns), the read stops
there however many rows the table holds. Without the order PostgreSQL may read the table
itself until it has enough rows, which for a rare value is the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, Select, Table, func, literal_column, select

# what a bounded count's rows hold: no column, so an index alone can answer
_ONE: ColumnClause[int] = literal_column("1")


def rows_of(table: Table) -> Select[Any]:
    """``SELECT 1 FROM table``: the rows a bounded count counts (filter it, then count)."""
    return select(_ONE).select_from(table)


def count_up_to(query: Select[Any], newest: ColumnElement[Any], cap: int) -> Select[Any]:
    """How many rows ``query`` (from ``rows_of``) yields, stopping at ``cap + 1``."""
    first = query.order_by(newest.desc()).limit(cap + 1).subquery()
    return select(func.count()).select_from(first)


def counts_by(
    table: Table,
    column: ColumnElement[Any],
    values: Iterable[str],
    newest: ColumnElement[Any],
    cap: int,
) -> Select[Any]:
    """One statement, one row: for each of ``values``, how many rows have ``column``
    equal to it, each count stopping at ``cap + 1`` (one labelled column per value)."""
    return select(
        *(
            count_up_to(rows_of(table).where(column == value), newest, cap)
            .scalar_subquery()
            .label(value)
            for value in values
        )
    )
