"""Domain records built in memory, for the unit tests of code that only reads them.

Never stored: an attempt made here has never been through the store, so its fields are
whatever a test says, consistent or not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from orch.models import Attempt, State, WorkspaceStatus

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def an_attempt(**changes: Any) -> Attempt:
    """A queued attempt with a ready workspace, created two hours before ``NOW``."""
    base = Attempt(
        id="deadbeef",
        task_key="fix-login",
        attempt_number=1,
        state=State.QUEUED,
        workspace_status=WorkspaceStatus.READY,
        repository="/src/repo",
        base_ref="HEAD",
        base_commit="c" * 40,
        branch_name="orch/fix-login-deadbeef",
        worktree_path="/wt/repo/fix-login-deadbeef",
        worker=None,
        payload_path="/home/inbox/deadbeef.json",
        prompt="Fix the login\nwith care",
        reason=None,
        created_at=NOW - dt.timedelta(hours=2),
        updated_at=NOW,
    )
    return dataclasses.replace(base, **changes)
