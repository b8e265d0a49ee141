"""How a record becomes JSON: its fields as a dict, datetimes as ISO 8601 text.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any


def plain(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict for JSON: ``dataclasses.asdict``, with each datetime
    field as its ISO 8601 text."""
    out = dataclasses.asdict(record)
    for key, value in out.items():
        if isinstance(value, dt.datetime):
            out[key] = value.isoformat()
    return out
