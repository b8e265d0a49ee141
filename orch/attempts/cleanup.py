"""The cleanup use case: remove the worktrees, branches and payloads of ended attempts.

Nothing is lost: an attempt whose worker may still be alive, that has not ended, or that
another live attempt still works in, is skipped with the reason; work that removal would
lose (uncommitted changes, untracked files, commits no other branch or remote keeps, and
that did not land with ``orch land``) makes
orch skip the attempt, or with ``--force`` first save it under ``$ORCH_HOME/archive``.
Each attempt is handled in this order, so that a crash between any two steps leaves state
that a rerun or ``orch doctor --fix`` completes: archive (manifest last), worktree, branch
(only while it still points where it was checked), payload, then the row. Removing what is
already gone is a quiet success. Attempts are handled in parallel: removal is disk-bound.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.lifecycle import reap
from orch.attempts.occupant import worktree_lock_path
from orch.attempts.push import PushedCopy, drop_pushed_branch
from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import InvalidInput, OrchError
from orch.fslock import try_lock
from orch.git import Git, Repository
from orch.models import HOLDS_WORKTREE, OCCUPIES_WORKTREE, Attempt, State, WorkspaceStatus
from orch.record import record
from orch.system import archive, inbox
from orch.workspace import pool, removal

if TYPE_CHECKING:
    from orch.store import Store

Checkpoint = Callable[[str], None]


@record
class CleanupRequest:
    refs: tuple[str, ...] = ()
    states: tuple[State, ...] = ()
    task_key: str | None = None
    older_than: dt.timedelta | None = None
    all_terminal: bool = False
    dry_run: bool = False
    force: bool = False
    keep_branch: bool = False
    to_pool: bool = False  # return clean worktrees to the warm pool instead of deleting them


@record
class CleanupItem:
    attempt: Attempt
    action: str  # remove | archive | skip | clean (nothing left to remove)
    reason: str
    bytes: int | None = None
    archive_path: str | None = None
    removed: tuple[str, ...] = ()  # what was removed: worktree, branch, payload
    # a landed attempt's branch pushed to the remote: what became of that copy
    remote_branch: PushedCopy | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "attempt": self.attempt.id,
            "task_key": self.attempt.task_key,
            "action": self.action,
            "reason": self.reason,
            "bytes": self.bytes,
            "archive_path": self.archive_path,
            "removed": list(self.removed),
            "remote_branch": self.remote_branch.said if self.remote_branch else None,
            "worktree_path": self.attempt.worktree_path,
            "branch_name": self.attempt.branch_name,
        }


def parse_age(text: str) -> dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` or ``2w``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = naming.whole_number(text[:-1]), text[-1:].lower()
    if unit not in units or number is None:
        raise InvalidInput(f"invalid age {text!r}: use a number and s, m, h, d or w (e.g. 7d)")
    return dt.timedelta(seconds=number * units[unit])


@record
class Selection:
    """The attempts a cleanup looks at, and how many more it selected that hold no
    worktree any more (counted by the store, never loaded: a year of history is a count)."""

    attempts: list[Attempt]
    already_clean: int = 0


def select(store: Store, request: CleanupRequest) -> Selection:
    if request.refs:
        named = {a.id: a for a in (find_attempt(store, r) for r in request.refs)}
        return Selection(list(named.values()))
    if not (request.all_terminal or request.states or request.task_key or request.older_than):
        raise InvalidInput(
            "name attempts, or select them with --all-terminal, --state, --task or --older-than"
        )
    cutoff = store.clock() - request.older_than if request.older_than is not None else None
    # without --state, only ended attempts
    states = request.states or tuple(s for s in State if s.terminal)
    attempts = store.list_attempts(
        states=states, task_key=request.task_key, workspaces=OCCUPIES_WORKTREE, ended_before=cutoff
    )
    if request.states or request.task_key or cutoff is not None:
        clean = store.count_attempts(
            states=states,
            task_key=request.task_key,
            workspaces=[w for w in WorkspaceStatus if w not in OCCUPIES_WORKTREE],
            ended_before=cutoff,
        )
    else:
        # every ended attempt: all of them, less the live ones and the ended ones that
        # still occupy a worktree (just read); a plain count is the cheapest there is
        live = store.count_attempts(states=[s for s in State if s.live])
        clean = max(0, store.count_attempts() - live - len(attempts))
    return Selection(attempts, clean)


@record
class CleanupResult:
    """What a cleanup did to each attempt it looked at, and how many of those it selected
    were already clean (not looked at one by one; named attempts are items all the same)."""

    items: list[CleanupItem]
    already_clean: int = 0

    def totals(self) -> dict[str, int]:
        out = {"remove": 0, "archive": 0, "skip": 0, "clean": self.already_clean, "bytes": 0}
        for item in self.items:
            out[item.action] += 1
            out["bytes"] += item.bytes or 0
        return out


def cleanup(
    store: Store,
    request: CleanupRequest,
    settings: Settings,
    git: Git,
    actor: str,
    on_item: Callable[[CleanupItem], None] = lambda item: None,
    checkpoint: Checkpoint = lambda step: None,
    workers: int = 4,
) -> CleanupResult:
    reap(store, actor, host=settings.host_name)
    selection = select(store, request)
    attempts = selection.attempts
    repos: dict[str, Repository | OrchError] = {}
    for a in attempts:
        if a.repository not in repos:
            try:
                repos[a.repository] = git.discover(Path(a.repository))
            except OrchError as exc:
                repos[a.repository] = exc

    def handle(attempt: Attempt) -> CleanupItem:
        repo = repos[attempt.repository]
        elsewhere = attempt.workspace_host not in (None, settings.host_name)
        if elsewhere:
            item = CleanupItem(
                attempt, "skip", f"its worktree is on host {attempt.workspace_host}: clean up there"
            )
        elif isinstance(repo, OrchError):
            item = CleanupItem(attempt, "skip", f"repository unusable: {repo.message}")
        else:
            item = _handle(store, attempt, repo, request, settings, git, actor, checkpoint)
        on_item(item)
        return item

    if request.dry_run or workers <= 1 or len(attempts) <= 1:
        return CleanupResult([handle(a) for a in attempts], selection.already_clean)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return CleanupResult(list(pool.map(handle, attempts)), selection.already_clean)


def _blocker(store: Store, attempt: Attempt, force: bool) -> str | None:
    """Why this attempt must not be touched, or None."""
    if attempt.workspace_status == WorkspaceStatus.PROVISIONING:
        return "still provisioning (if its dispatch died, run 'orch doctor --fix')"
    if attempt.state == State.RUNNING:
        return "its worker is alive (cancel it first)"
    if attempt.state == State.QUEUED and not force:
        return "queued, not ended (cancel it, or --force)"
    if attempt.worktree_path:
        for other in store.attempts_using_worktree(attempt.worktree_path):
            if other.id != attempt.id and not other.terminal:
                return f"attempt {other.id} ({other.state}) still works in this worktree"
    return None


def _handle(
    store: Store,
    attempt: Attempt,
    repo: Repository,
    request: CleanupRequest,
    settings: Settings,
    git: Git,
    actor: str,
    checkpoint: Checkpoint,
) -> CleanupItem:
    if not attempt.workspace_status.occupies_worktree:
        return CleanupItem(attempt, "clean", f"workspace already {attempt.workspace_status}")
    blocker = _blocker(store, attempt, request.force)
    if blocker:
        return CleanupItem(attempt, "skip", blocker)
    worktree = Path(attempt.worktree_path) if attempt.worktree_path else None
    lock = None
    if worktree is not None and worktree.is_dir():
        lock = try_lock(worktree_lock_path(worktree, settings), f"{actor} cleanup")
        if lock is None:
            return CleanupItem(attempt, "skip", "an agent is still running in its worktree")
    try:
        return _remove(store, attempt, repo, worktree, request, settings, git, actor, checkpoint)
    except OrchError as exc:
        return CleanupItem(attempt, "skip", f"failed: {exc.message}")
    finally:
        if lock is not None:
            lock.release()


def _remove(
    store: Store,
    attempt: Attempt,
    repo: Repository,
    worktree: Path | None,
    request: CleanupRequest,
    settings: Settings,
    git: Git,
    actor: str,
    checkpoint: Checkpoint,
) -> CleanupItem:
    policy = removal.Policy(
        archive=_archive_of(attempt, settings),
        keep_branch=request.keep_branch,
        # what landed is saved, even squashed into the target; commits made since are not
        saved=(attempt.landed_tip,) if attempt.landed_tip else (),
    )
    present = worktree is not None and worktree.is_dir()
    if present and worktree is not None and pool.is_pool_path(settings, repo, worktree):
        present = False  # already back in the warm pool (a cleanup --to-pool cut short)
    found = removal.survey(git, repo, worktree, attempt.branch_name, policy, present=present)
    work, branch_tip = found.work, found.branch_tip
    action = "remove"
    if not work.empty:
        if not request.force:
            return CleanupItem(
                attempt,
                "skip",
                f"would lose {work.describe()}; --force saves it to the archive first",
            )
        action = "archive"
    size = archive.disk_usage(worktree) if request.dry_run and present and worktree else None
    payload = Path(attempt.payload_path) if attempt.payload_path else None
    removed = tuple(
        what
        for what, there in (
            ("worktree", present),
            ("branch", bool(branch_tip)),
            ("payload", bool(payload and payload.exists())),
        )
        if there
    )
    reason = f"saves {work.describe()} first" if action == "archive" else "nothing unsaved"
    if request.dry_run:
        return CleanupItem(attempt, action, reason, size, None, removed)

    if attempt.state == State.QUEUED:
        # --force on a queued attempt: end it first so that no worker claims it meanwhile
        attempt, _ = store.cancel(attempt.id, "cancelled by cleanup --force", actor)
    # ended attempts that reused this worktree (follow-ups) lose it too, payload and all;
    # asked before the worktree goes (back to the pool, a dispatch may take it at once)
    sharing = [
        a
        for a in store.attempts_using_worktree(attempt.worktree_path or "")
        if a.workspace_status.holds_worktree and a.id != attempt.id
    ]
    # a worktree deleted by hand has git's bookkeeping of it dropped too (not prunable);
    # a branch that moved since it was checked is kept (compare-and-delete)
    done = removal.carry_out(
        git,
        repo,
        found,
        policy,
        checkpoint,
        hand_back=(
            (lambda path: pool.give_back(git, repo, settings, path, attempt.checkout))
            if request.to_pool and action == "remove"
            else None
        ),
    )
    saved = done.archive_path
    if done.worktree == "to the pool":
        removed = tuple("worktree (to the pool)" if r == "worktree" else r for r in removed)
    if branch_tip and not done.branch:
        removed = tuple(r for r in removed if r != "branch")
    # what landed is in the target: the copy its worker pushed goes too
    copy = drop_pushed_branch(store, settings, git, repo, attempt, actor) if done.branch else None
    for other in sharing:
        if other.payload_path:
            inbox.remove_payload(Path(other.payload_path))
    if payload is not None:
        inbox.remove_payload(payload)
        checkpoint("payload-removed")
    status = WorkspaceStatus.ARCHIVED if saved else WorkspaceStatus.REMOVED
    ids = [attempt.id, *(a.id for a in sharing)]
    for attempt_id in ids:  # no dev server runs in a worktree that is gone
        store.release_ports(attempt_id, actor, f"workspace {status}")
    store.mark_workspace(ids, HOLDS_WORKTREE, status, actor, archive_path=saved)
    return CleanupItem(attempt, action, reason, size, saved, removed, copy)


def _archive_of(attempt: Attempt, settings: Settings) -> removal.Archive:
    return removal.Archive(
        settings.home / "archive",
        attempt.id,
        {
            "attempt_id": attempt.id,
            "task_key": attempt.task_key,
            "base_commit": attempt.base_commit,
            "saved_by": "orch cleanup --force",
        },
    )
