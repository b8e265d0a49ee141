"""Dispatches that make no worktree: a later phase in the task's existing worktree
(``--reuse-workspace``), and an attempt that runs where orch was started (a linked
worktree, or a directory outside git).

Each records its intent and finishes in place (orch.workspace.reuse): a port bundle and
a payload, no branch, no worktree. Never removes or moves a worktree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.request import DispatchRequest, DispatchResult, this_process
from orch.attempts.intent import record_intent
from orch.config import Settings
from orch.git import Git, Repository, worktree_registered
from orch.models import NewAttempt, WorkspaceStatus
from orch.repo_config import RepoConfig
from orch.workspace import pool
from orch.workspace.owners import Owner, owner_of
from orch.workspace.reuse import finish_in_place, refuse_if_busy

if TYPE_CHECKING:
    from orch.store import Store


def reuse(
    request: DispatchRequest,
    task_key: str,
    repo: Repository,
    repo_config: RepoConfig,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
) -> DispatchResult | None:
    """A later phase in the task's existing worktree and branch, or None if it has none."""
    mapped = store.task_workspace(str(repo.root), task_key)
    if mapped is None:
        return None
    worktree = Path(mapped.worktree_path)
    if not worktree.is_dir() or not worktree_registered(worktree):
        return None  # cleaned up since: a fresh workspace, registered anew
    if pool.in_a_pool(worktree) and not _still_the_tasks(settings, repo, store, worktree, task_key):
        return None  # returned to the warm pool since (cleanup --to-pool): a fresh one
    refuse_if_busy(store, worktree)
    head = git.head_commit(worktree)
    new = _attempt_in(
        worktree,
        request,
        task_key,
        str(repo.root),
        git.current_branch(worktree) or mapped.branch_name,
        head,
        mapped.branch_name,
        settings.host_name,
    )
    created = record_intent(store, new, actor)
    attempt = finish_in_place(
        store, settings, created, WorkspaceStatus.REUSED, actor, repo_config.port_slots
    )
    return DispatchResult(attempt=attempt)


def _still_the_tasks(
    settings: Settings, repo: Repository, store: Store, worktree: Path, task_key: str
) -> bool:
    """Whether a worktree taken from the warm pool still belongs to ``task_key``: not back
    in the pool, and not claimed by another task's attempt after it went back."""
    owned = owner_of(worktree, settings, store, repo)
    if owned.owner is Owner.POOL:
        return False
    return all(a.task_key == task_key for a in owned.attempts)


def in_place(
    request: DispatchRequest,
    task_key: str,
    repo: Repository | None,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
) -> DispatchResult:
    """Provisioning skipped: the attempt runs where orch was started (a linked worktree,
    or a directory outside git)."""
    if repo is not None and repo.invoked_root is not None:
        place = repo.invoked_root
        status = WorkspaceStatus.SKIPPED_IN_WORKTREE
        refuse_if_busy(store, place)
        branch, base = git.current_branch(place), git.head_commit(place)
        repository = str(repo.root)
    else:
        place = request.repo_path
        status, branch, base, repository = WorkspaceStatus.SKIPPED_NOT_GIT, None, None, str(place)
    new = _attempt_in(
        place,
        request,
        task_key,
        repository,
        branch or ("HEAD" if base else "-"),
        base,
        branch,
        settings.host_name,
    )
    created = record_intent(store, new, actor)
    attempt = finish_in_place(
        store, settings, created, status, actor, write_ports_file=repo is not None
    )
    return DispatchResult(
        attempt=attempt,
        warnings=(f"provisioning skipped ({status}): the attempt runs in {place}",),
    )


def _attempt_in(
    place: Path,
    request: DispatchRequest,
    task_key: str,
    repository: str,
    base_ref: str,
    base_commit: str | None,
    branch: str | None,
    host: str,
) -> NewAttempt:
    """An attempt that works in an existing place (no branch or worktree of its own)."""
    return NewAttempt(
        id=naming.new_attempt_id(),
        task_key=task_key,
        repository=repository,
        base_ref=base_ref,
        base_commit=base_commit,
        branch_name=branch,
        worktree_path=str(place),
        worker=request.worker,
        prompt=request.prompt,
        dispatcher=this_process(host),
        phase=request.phase,
    )
