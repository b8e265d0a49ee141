"""Pushing an attempt's branch to the repository's remote when a run of ``orch work``
ends (``push = true``, off by default), so that ``orch land`` on another host can fetch
it. A push that fails is a warning (in the attempt's log, and a ``push_failed`` event),
never a failed run: the work is committed on its own host either way. Once the attempt
landed and its branch was removed, the pushed copy goes too (``drop_pushed_branch``)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git, Repository
from orch.models import Attempt
from orch.record import record
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


@record
class PushedCopy:
    """What became of the copy of a landed attempt's branch on the remote, in words."""

    said: str
    deleted: bool = False
    failed: bool = False  # it was to be deleted and could not be (a warning)


def drop_pushed_branch(
    store: Store, settings: Settings, git: Git, repo: Repository, attempt: Attempt, actor: str
) -> PushedCopy | None:
    """Once a landed attempt's branch was removed here: the copy it pushed to the remote
    (``push_remote``), deleted while it is exactly the commit that landed (a lease: a
    commit pushed there since is never lost). Kept when the remote has commits that did
    not land, and while a pull request is open on it (deleting its head would close it).
    None when the branch was never pushed (or fetched) from here. Never raises: the land
    and the removal stand whatever happens to the copy."""
    if not (attempt.landed_tip and attempt.branch_name):
        return None
    remote, branch, landed = settings.push_remote, attempt.branch_name, attempt.landed_tip
    try:
        pushed = git.tracking_commit(repo, remote, branch)
        if pushed is None:
            return None
        if pushed != landed:
            return PushedCopy(f"kept its branch on {remote}: it has commits that did not land")
        if attempt.pr_state == "open":
            return PushedCopy(
                f"kept its branch on {remote}: pull request #{attempt.pr_number} is open on it"
            )
        failed = git.delete_remote_branch(repo, remote, branch, landed)
    except OrchError as exc:
        failed = exc.message
    if failed is not None:
        return PushedCopy(f"its branch {branch} on {remote} was not deleted: {failed}", failed=True)
    with contextlib.suppress(OrchError):  # the copy is gone whether or not this is said
        store.record_event(
            attempt.id, "remote_branch_deleted", actor, remote=remote, branch=branch, commit=landed
        )
    return PushedCopy(f"deleted its branch on {remote}", deleted=True)
