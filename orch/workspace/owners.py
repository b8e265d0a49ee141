"""Who owns a worktree path: a live attempt, the warm pool, a dispatch in progress, or nobody.

The one answer that doctor and dispatch both ask before they touch a worktree (DESIGN.md
§2.3, §7). A path is a pool member's while it is in a pool directory with a marker
(``orch.workspace.pool``); a dispatch's while it is making the worktree ahead of its
intent (a live marker under ``$ORCH_HOME/checkouts``, ``orch.workspace.ahead``); an
attempt's while a live row of the store names it. Reads only: never removes or moves.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.git import Repository
from orch.models import Attempt
from orch.record import record
from orch.system import processes
from orch.workspace import ahead, pool

if TYPE_CHECKING:
    from orch.store import Store

# a marker older than this names no dispatch still at work, whatever its pid says (the
# pid may have been reused); a dispatch takes seconds
MARKER_STALE_AFTER = dt.timedelta(minutes=10)


class Owner(enum.Enum):
    ATTEMPT = "attempt"  # a live row of the store names the path
    POOL = "pool"  # a pool member (ready, in the making or set aside)
    DISPATCH = "dispatch"  # a dispatch is making it ahead of its intent
    NOBODY = "nobody"


@record
class Ownership:
    owner: Owner
    attempts: tuple[Attempt, ...] = ()  # the live attempts that name it (Owner.ATTEMPT)

    @property
    def owned(self) -> bool:
        return self.owner is not Owner.NOBODY


def owner_of(
    path: Path, settings: Settings, store: Store, repo: Repository | None = None
) -> Ownership:
    """Who owns the worktree at ``path``. ``repo``: the repository whose pool is asked
    about (None: no pool is). The marker is read before the store: a dispatch records
    its intent before it drops its marker, so one of the two always shows it."""
    if repo is not None and pool.is_pool_path(settings, repo, path):
        return Ownership(Owner.POOL)
    if any(m.worktree == path and making(m) for m in ahead.markers(settings)):
        return Ownership(Owner.DISPATCH)
    attempts = tuple(store.live_attempts_using_worktree(str(path)))
    if attempts:
        return Ownership(Owner.ATTEMPT, attempts)
    return Ownership(Owner.NOBODY)


def making(marker: ahead.Marker) -> bool:
    """Whether the dispatch that wrote ``marker`` is still at work."""
    try:
        age = time.time() - marker.file.stat().st_mtime
    except OSError:
        return False  # gone meanwhile: its dispatch recorded its intent
    if age >= MARKER_STALE_AFTER.total_seconds():
        return False  # far older than a dispatch
    return processes.is_alive(marker.pid, None)
