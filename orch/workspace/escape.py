"""Escape detection: did an agent change files outside its own worktree?

Before an agent runs, the worker fingerprints the main worktree and every sibling
worktree of the repository whose attempt is idle (no agent of its own); afterwards it
compares those that are still idle. A difference is recorded as an ``escape_warning``
event on the attempt, shown by ``orch show``. This is a warning, not proof: an operator
editing the main worktree at the same time looks the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch.errors import OrchError
from orch.git import Git, fingerprint
from orch.models import HOLDS_WORKTREE, Attempt, State

if TYPE_CHECKING:
    from orch.store import Store

Snapshot = dict[str, dict[str, tuple[str, int, int]]]
SHOWN = 10


def watched(store: Store, attempt: Attempt) -> list[Path]:
    """The main worktree and the idle sibling worktrees of ``attempt``'s repository."""
    paths = [Path(attempt.repository)]
    # only the attempts that hold a worktree, read through an index (those of other
    # repositories are few, and skipped here: a filter on the repository too would let the
    # database walk the repository's whole history instead)
    for other in store.list_attempts(workspaces=HOLDS_WORKTREE):
        if (
            other.repository == attempt.repository
            and other.worktree_path
            and other.worktree_path != attempt.worktree_path
            and other.state != State.RUNNING
            and Path(other.worktree_path).is_dir()
        ):
            paths.append(Path(other.worktree_path))
    return list(dict.fromkeys(paths))


def snapshot(git: Git, paths: list[Path]) -> Snapshot:
    shots = {}
    for path in paths:
        try:
            shots[str(path)] = fingerprint(git, path)
        except OrchError:
            continue  # gone or unreadable: nothing to compare
    return shots


def changes(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """Per worktree, the paths whose state differs between the two snapshots."""
    found = {}
    for path, old in before.items():
        new = after.get(path)
        if new is None:
            continue
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            found[path] = changed
    return found


def check(
    store: Store, git: Git, attempt: Attempt, before: Snapshot, actor: str
) -> dict[str, list[str]]:
    still_idle = {str(p) for p in watched(store, attempt)}
    after = snapshot(git, [Path(p) for p in before if p in still_idle])
    found = changes({p: s for p, s in before.items() if p in still_idle}, after)
    for path, changed in found.items():
        store.record_event(
            attempt.id,
            "escape_warning",
            actor,
            worktree=path,
            changed=changed[:SHOWN],
            count=len(changed),
        )
    return found
