"""A dispatch for another host: the attempt is recorded with its committed base, and a
worker on the named host (or any) with a clone of the repository provisions its branch
and worktree when it claims it (``provision_claimed``, called by orch.attempts.worker).
The recording side makes nothing on its own disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.provision import provision
from orch.attempts.dispatch.request import DispatchRequest, DispatchResult, check_worktree_root
from orch.attempts.intent import record_intent
from orch.config import Settings
from orch.errors import WorkspaceError
from orch.git import Git, Repository
from orch.models import Attempt, Lease, NewAttempt
from orch.repo_config import load_repo_config

if TYPE_CHECKING:
    from orch.store import Store


def for_another_host(
    request: DispatchRequest,
    task_key: str,
    repo: Repository,
    base_ref: str,
    base_commit: str,
    url: str,
    store: Store,
    actor: str,
) -> DispatchResult:
    """Record the attempt; say which worker it waits for."""
    new = NewAttempt(
        id=naming.new_attempt_id(),
        task_key=task_key,
        repository=str(repo.root),
        base_ref=base_ref,
        base_commit=base_commit,
        branch_name=None,
        worktree_path=None,
        worker=request.worker,
        prompt=request.prompt,
        target_host=request.host,
        repository_url=url,
    )
    attempt = record_intent(store, new, actor)
    where = "any host" if request.host == "any" else f"host {request.host}"
    return DispatchResult(
        attempt=attempt,
        warnings=(
            f"waiting for a worker on {where} with a clone of {url} "
            "(orch work --repo PATH) to create its branch and worktree",
        ),
    )


def provision_claimed(
    lease: Lease, repo: Repository, settings: Settings, git: Git, store: Store, actor: str
) -> Attempt:
    """The claiming side: make the branch and worktree of an attempt sent to this host,
    in its clone ``repo``, at the recorded ``base_commit`` (fetched if the clone lacks
    it). Raises ``WorkspaceError`` when the base is not to be had; any failure after the
    intent is rolled back by ``provision``, which marks the attempt failed."""
    attempt = lease.attempt
    base = attempt.base_commit or ""
    if not git.has_commit(repo, base):
        git.fetch_origin(repo)
    if not git.has_commit(repo, base):
        raise WorkspaceError(
            f"base commit {base[:12]} is not in the clone at {repo.root} (even after fetch)"
        )
    branch = naming.branch_name(settings.branch_prefix, attempt.task_key, attempt.id)
    path = naming.worktree_path(settings.worktree_root, repo.root, attempt.task_key, attempt.id)
    check_worktree_root(settings.worktree_root)
    begun = store.begin_provisioning_here(
        attempt.id, lease.token, str(repo.root), branch, str(path), settings.host_name, actor
    )
    return provision(
        begun, repo, settings, git, store, actor, lambda step: None, load_repo_config(repo.root)
    )
