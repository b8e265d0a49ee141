"""``dispatch_many``: best-of-N, N attempts of one task from one resolved base_commit.

One process does for N attempts what N dispatches would: one set of checks (one strict
dirt check, one repository discovery, the base resolved once), one store open, then each
attempt all or nothing on its own (DESIGN.md §2.3), with its own branch, worktree, port
bundle and payload. Its workspace sources start before the store opens
(orch.attempts.dispatch.early): ready pool members first, each claimed by one attempt,
then checkouts made ahead in threads, at most one per core at a time (git's work; the
GIL is free while git runs). The store is written from this thread only: each attempt's
intent, provisioning and finalising in the order of the attempts, while the later
attempts' checkouts go on. An attempt that fails to provision is ``failed`` with its
reason and the others stand. No SQL, subprocess or JSON here: adapters do it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.early import EarlyWork
from orch.attempts.dispatch.pipeline import check_repository
from orch.attempts.dispatch.provision import (
    check_before_intent,
    provision,
    record_new,
    refill_pool,
)
from orch.attempts.dispatch.request import (
    Checkpoint,
    DispatchRequest,
    dirt_warning,
    new_attempt,
    no_checkpoint,
)
from orch.config import Settings
from orch.errors import InvalidInput, OrchError
from orch.git import Git, PendingDirtyCheck
from orch.models import Attempt
from orch.prompt import require_prompt
from orch.record import record
from orch.repo_config import validate_sparse_paths
from orch.workspace import sources

if TYPE_CHECKING:
    from orch.store import Store


@record
class Failed:
    """An attempt that was not made: its id when its intent was recorded (it is then
    ``failed`` in the store with ``reason``), else None."""

    number: int  # 1..N, in the order of the attempts
    attempt_id: str | None
    reason: str
    error: OrchError


@record
class ManyResult:
    """The attempts made, in order, and those that failed (the caller reports them:
    ``orch dispatch`` exits ``NotAllDispatched``)."""

    made: tuple[Attempt, ...]
    failed: tuple[Failed, ...] = ()
    warnings: tuple[str, ...] = ()

    def describe_failed(self) -> str:
        """Each failed attempt's id (or number, when no intent was recorded) and reason."""
        return "; ".join(
            f"{f.attempt_id or f'attempt {f.number} (not recorded)'}: {f.reason}"
            for f in self.failed
        )

    def failure_message(self) -> str:
        total = len(self.made) + len(self.failed)
        return (
            f"{len(self.failed)} of the {total} attempts failed to provision "
            f"({self.describe_failed()}); the other {len(self.made)} stand"
        )


def dispatch_many(
    request: DispatchRequest,
    workers: tuple[str | None, ...],
    settings: Settings,
    git: Git,
    open_store: Callable[[], Store],
    actor: str,
    checkpoint: Checkpoint = no_checkpoint,
    early_dirt_check: PendingDirtyCheck | None = None,
    on_made: Callable[[Attempt], None] | None = None,
) -> ManyResult:
    """One attempt per entry of ``workers`` (the worker asked for each; None: any).
    Refusals before anything is written make none of them. When some attempts failed
    the result names them; when none was made, raises the first failure's own error
    (its exit code, as a single dispatch would), naming every failed attempt.
    ``on_made``: told of each attempt as soon as it is ready (``orch dispatch`` prints its
    id then, so that an interrupted dispatch has named what it made)."""
    count = len(workers)
    if count < 1:
        raise InvalidInput("--attempts must be at least 1")
    if request.phased or request.host is not None:
        raise InvalidInput(
            "--attempts cannot be combined with --phase, --reuse-workspace or --host: "
            "a best-of-N dispatch makes new worktrees on this host"
        )
    naming.validate_task_key(request.task_key)
    task_key = request.task_key
    sparse = validate_sparse_paths(request.sparse)
    repo = git.discover(request.repo_path)
    checked = check_repository(request, sparse, repo, git)
    require_prompt(request.prompt, request.allow_empty_prompt)
    check_before_intent(settings, checked.repo_config)
    spec, base_commit = checked.spec, checked.base_commit
    made: list[Attempt] = []
    failed: list[Failed] = []
    with EarlyWork() as early:
        early.start_sources(git, repo, settings, task_key, base_commit, spec, checkpoint, count)
        if not (request.strict or checked.explicit_base):
            early.check_dirt(git, repo, early_dirt_check)
        early.read_facts(git, repo)
        store = open_store()
        facts = early.facts()
        for number, worker in enumerate(workers, start=1):
            source = early.sources[number - 1] if number <= len(early.sources) else None
            new = new_attempt(
                settings,
                repo,
                task_key,
                checked.base_ref,
                base_commit,
                worker,
                request.prompt,
                attempt_id=source.attempt_id if isinstance(source, sources.Ahead) else None,
            )
            new = dataclasses.replace(new, repository_url=facts.url, checkout=spec)
            if source is not None and source.path is not None:
                new = dataclasses.replace(new, worktree_path=str(source.path))
            attempt_id: str | None = None
            try:
                recorded = record_new(new, settings, store, actor, source)
                attempt_id = recorded.id
                checkpoint("intent-recorded")
                ready = provision(
                    recorded,
                    repo,
                    settings,
                    git,
                    store,
                    actor,
                    checkpoint,
                    checked.repo_config,
                    source,
                    facts.hooks,
                    refill=False,
                )
            except OrchError as exc:
                # provision rolled its own work back and marked the attempt failed
                failed.append(Failed(number, attempt_id, exc.message, exc))
                continue
            made.append(ready)
            if on_made is not None:
                on_made(ready)
        warnings = dirt_warning(early.dirt_check, base_commit)
    if made:
        refill_pool(settings, repo, spec)
    result = ManyResult(tuple(made), tuple(failed), warnings)
    if failed and not made:
        first = failed[0].error
        message = f"none of the {count} attempts was made: {result.describe_failed()}"
        try:
            error = type(first)(message)
        except TypeError:  # an error that needs more than a message: its own words
            error = first
        raise error from first
    return result
