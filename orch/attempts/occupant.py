"""The one process that works in an attempt's worktree at a time: an agent or a check.

Whoever runs a process in a worktree (the worker for its agent, ``orch check`` for the
repository's check command) first takes the worktree's lock and hands its descriptor to
that process, so the lock stays held while the process lives, even if orch itself is
killed. Cleanup takes the same lock before it removes a worktree. Nothing here runs a
process or reads the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from orch.config import Settings
from orch.git import worktree_admin_dir


def worktree_lock_path(worktree: Path, settings: Settings) -> Path:
    """The lock file of ``worktree``: in git's administrative directory of the worktree,
    else (a worktree git does not know) under orch's own locks."""
    admin = worktree_admin_dir(worktree)
    if admin is not None and admin.is_dir():
        return admin / "orch-agent.lock"
    digest = hashlib.sha256(str(worktree.resolve()).encode()).hexdigest()[:16]
    return settings.locks_dir / "worktrees" / f"{digest}.lock"
