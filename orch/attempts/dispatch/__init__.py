"""The dispatch use case: a committed base, a branch, a worktree, a row and a payload.

All or nothing (DESIGN.md §2.3): every check a user can fail runs before anything is
written; then the store records the intent (``workspace_status=provisioning``), git does
its work, the payload is written, and only then is the row finalised (``ready``). Any
failure after the intent undoes the git work and leaves the attempt ``failed`` with the
reason. A crash between two steps leaves a ``provisioning`` row that names the branch and
worktree, which ``orch doctor`` repairs.

- ``pipeline``: ``dispatch``, the checks and the choice of use case;
- ``best_of``: ``dispatch_many``, N attempts of one task from one base commit;
- ``early``: what runs while the store opens (workspace source, dirt check, URL);
- ``provision``: intent, branch, worktree, set-up, payload, finalise or roll back;
- ``in_place``: reused worktrees and attempts that run where orch was started;
- ``another_host``: attempts provisioned by a worker on another host;
- ``request``: the request, the result and the names of a new attempt.
"""

from __future__ import annotations

from orch.attempts.dispatch.best_of import Failed, ManyResult, dispatch_many
from orch.attempts.dispatch.pipeline import dispatch
from orch.attempts.dispatch.provision import PORTS_EXCLUDE, create_and_provision, provision
from orch.attempts.dispatch.request import (
    SHOWN_DIRTY_PATHS,
    Checkpoint,
    DispatchRequest,
    DispatchResult,
    check_worktree_root,
    describe_dirt,
    new_attempt,
    spread_workers,
    this_process,
)

__all__ = [
    "PORTS_EXCLUDE",
    "SHOWN_DIRTY_PATHS",
    "Checkpoint",
    "DispatchRequest",
    "DispatchResult",
    "Failed",
    "ManyResult",
    "check_worktree_root",
    "create_and_provision",
    "describe_dirt",
    "dispatch",
    "dispatch_many",
    "new_attempt",
    "provision",
    "spread_workers",
    "this_process",
]
