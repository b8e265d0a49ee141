"""``orch submit``: record a ready task for the loop to dispatch; nothing is provisioned.

Everything a dispatch would refuse up front (a bad task key, not a repository, an
unknown base ref) is refused here instead, so a submitted task that fails later fails
for a reason that arose later. The base ref is resolved again at dispatch, once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch import spread_workers
from orch.git import Git
from orch.models import QueuedTask
from orch.prompt import require_prompt

if TYPE_CHECKING:
    from orch.store import Store


def submit(
    store: Store,
    git: Git,
    task_key: str,
    repo_path: Path,
    prompt: str,
    actor: str,
    base_ref: str | None = None,
    workers: tuple[str, ...] = (),
    attempts: int | None = None,
    allow_empty_prompt: bool = False,
) -> QueuedTask:
    """Queue the task; the loop dispatches it later (an empty prompt is refused here, so
    the loop allows the one it was given). ``workers`` and ``attempts`` as ``orch
    dispatch`` takes them: the loop's one dispatch makes ``attempts`` attempts (default:
    one per worker, else 1) from one base commit, going to the workers in turn."""
    key = naming.validate_task_key(task_key)
    count = len(spread_workers(workers, attempts))  # dispatch's own checks, refused now
    repo = git.discover(repo_path)
    git.resolve_commit(repo, base_ref if base_ref is not None else "HEAD")
    require_prompt(prompt, allow_empty_prompt)
    return store.submit_task(key, str(repo.root), base_ref, prompt, workers, count, actor)
