"""A dispatch for another host: the attempt is recorded with its committed base, and a
worker on the named host (or any) with a clone of the repository provisions its branch
and worktree when it claims it (orch.attempts.worker). Makes nothing on this disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.request import DispatchRequest, DispatchResult
from orch.attempts.intent import record_intent
from orch.git import Repository
from orch.models import NewAttempt

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
