"""Pushing an attempt's branch to the repository's remote when a run of ``orch work``
ends (``push = true``, off by default), so that ``orch land`` on another host can fetch
it. A push that fails is a warning (in the attempt's log, and a ``push_failed`` event),
never a failed run: the work is committed on its own host either way."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git
from orch.models import Attempt
from orch.system import processes

if TYPE_CHECKING:
    from orch.store import Store


def push_branch(
    store: Store, settings: Settings, git: Git, attempt: Attempt, actor: str
) -> str | None:
    """Push the attempt's branch when configured; the warning line when it failed."""
    if not settings.push or not attempt.branch_name or not attempt.repository:
        return None
    remote, branch = settings.push_remote, attempt.branch_name
    try:
        repo = git.discover(Path(attempt.repository))
        tip = git.branch_commit(repo, branch)
        if tip is None:
            failed: str | None = "the branch is gone"
        else:
            failed = git.push_branch(repo, remote, branch)
        if failed is None:
            store.record_event(
                attempt.id, "branch_pushed", actor, remote=remote, branch=branch, commit=tip
            )
            return None
        store.record_event(
            attempt.id, "push_failed", actor, remote=remote, branch=branch, error=failed
        )
    except OrchError as exc:  # the store or git itself: still only a warning
        failed = exc.message
    line = f"orch work: pushing {branch} to {remote} failed: {failed}"
    with contextlib.suppress(OSError):  # said on stderr all the same
        processes.append_log(settings.logs_dir / f"{attempt.id}.log", line + "\n")
    return line
