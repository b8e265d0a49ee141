"""The retry use case: a new attempt of the same task, fresh branch and worktree.

The new attempt starts from the previous attempt's recorded ``base_commit`` (never
re-resolved) unless the operator moves it with another base ref. A per-task cooldown and
a maximum number of attempts are honoured, and no retry happens while an attempt of the
task is live; the store re-checks the last two atomically, so racing retries make one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.dispatch import DispatchResult, create_and_provision, new_attempt
from orch.attempts.lifecycle import reap
from orch.attempts.queries import find_attempt, looks_like_path
from orch.config import Settings
from orch.errors import AmbiguousAttempt, AttemptNotFound, RetryRefused
from orch.git import Git
from orch.models import Attempt
from orch.record import record
from orch.repo_config import load_repo_config

if TYPE_CHECKING:
    from orch.store import Store


@record
class RetryPolicy:
    cooldown: float  # seconds since the previous attempt ended
    max_attempts: int


def previous_attempt(store: Store, ref: str) -> Attempt:
    """``ref`` is an attempt (id, prefix, payload path) or a task key (its newest attempt)."""
    try:
        return find_attempt(store, ref)
    except AttemptNotFound:
        if looks_like_path(ref):
            raise
    newest = store.latest_attempt(ref)
    if not newest:
        raise AttemptNotFound(f"no attempt or task {ref!r} in the store")
    if len(newest) > 1:
        raise AmbiguousAttempt(
            f"task {ref!r} has attempts in {len(newest)} repositories: name the attempt id"
        )
    return newest[0]


def refusal(latest: Attempt, policy: RetryPolicy, now: dt.datetime) -> str | None:
    """Why the task whose newest attempt is ``latest`` may not have another one now."""
    if not latest.terminal:
        return (
            f"task {latest.task_key!r} has a live attempt ({latest.id}, {latest.state}): "
            "wait for it, or cancel it first"
        )
    if exhausted(latest, policy):
        return (
            f"task {latest.task_key!r} already has {latest.attempt_number} attempts "
            f"(max_attempts {policy.max_attempts}); raise it with --max-attempts"
        )
    waited = cooldown_left(latest, policy, now)
    if waited > 0:
        return (
            f"task {latest.task_key!r} is cooling down: retry allowed in "
            f"{waited:.0f}s (cooldown {policy.cooldown:g}s; --cooldown 0 skips)"
        )
    return None


def exhausted(latest: Attempt, policy: RetryPolicy) -> bool:
    """The task whose newest attempt is ``latest`` has had every attempt it may have."""
    return latest.attempt_number >= policy.max_attempts


def cooldown_left(latest: Attempt, policy: RetryPolicy, now: dt.datetime) -> float:
    """Seconds until the cooldown after ``latest`` ended is over (0 when it is)."""
    ended = latest.finished_at or latest.updated_at
    return max(0.0, policy.cooldown - (now - ended).total_seconds())


def retry(
    store: Store,
    ref: str,
    settings: Settings,
    git: Git,
    policy: RetryPolicy,
    actor: str,
    base_ref: str | None = None,
    prompt: str | None = None,
    worker: str | None = None,
) -> DispatchResult:
    reap(store, actor, host=settings.host_name)
    previous = previous_attempt(store, ref)
    latest = store.latest_attempt(previous.task_key, previous.repository)[0]
    why = refusal(latest, policy, store.clock())
    if why is not None:
        raise RetryRefused(why)
    repo = git.discover(Path(previous.repository))
    if base_ref is not None:
        base_commit = git.resolve_commit(repo, base_ref)
    else:
        base_ref, base_commit = previous.base_ref, previous.base_commit or ""
    new = new_attempt(
        settings,
        repo,
        previous.task_key,
        base_ref,
        base_commit,
        worker if worker is not None else previous.worker,
        prompt if prompt is not None else previous.prompt,
    )
    # the same checkout as the attempt it retries: sparse paths, submodules, LFS
    new = dataclasses.replace(new, checkout=previous.checkout)
    return create_and_provision(
        new,
        repo,
        settings,
        git,
        store,
        actor,
        retry_of=latest.attempt_number,
        repo_config=load_repo_config(repo.root),
    )
