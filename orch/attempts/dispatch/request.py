"""What a dispatch is asked for and answers, and the pieces every dispatch path shares:
the new attempt's names, the dispatching process, the worktree root check and the dirt
warning. Pure: never touches git, the store or the disk (but for the root check)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orch import naming, private
from orch.config import Settings
from orch.errors import InvalidInput, WorkspaceError, describe_os_error
from orch.git import DirtyPath, PendingDirtyCheck, Repository
from orch.models import Attempt, NewAttempt, WorkerIdentity
from orch.record import record

SHOWN_DIRTY_PATHS = 5


@record
class DispatchRequest:
    task_key: str
    repo_path: Path
    base_ref: str | None  # None: the main worktree's HEAD, not named by the operator
    strict: bool
    prompt: str
    worker: str | None = None
    phase: str | None = None
    reuse_workspace: bool = False
    host: str | None = None  # "any" or a host name: provisioned there by a worker
    sparse: tuple[str, ...] = ()  # cone-mode sparse paths (empty: the repository's default)
    allow_empty_prompt: bool = False  # the attempt needs no prompt (orch.prompt)

    @property
    def phased(self) -> bool:
        return self.phase is not None or self.reuse_workspace


@record
class DispatchResult:
    attempt: Attempt
    warnings: tuple[str, ...] = ()


Checkpoint = Callable[[str], None]


MAX_ATTEMPTS_AT_ONCE = 100  # one best-of-N dispatch; more is a typo, not a plan


def spread_workers(workers: tuple[str, ...], attempts: int | None) -> tuple[str | None, ...]:
    """The worker asked for each of a best-of-N dispatch's attempts: ``workers`` in turn
    (``a b`` over 4 attempts: a, b, a, b), None (any worker) when none was named.
    ``attempts`` None: one attempt per named worker (at least one). More workers than
    attempts is refused: a worker the operator named would get no attempt."""
    for worker in workers:
        if not worker.strip():
            raise InvalidInput("--worker must not be empty")
        if len(worker) > naming.WORKER_MAX:
            raise InvalidInput(
                f"--worker is {len(worker)} characters long, at most {naming.WORKER_MAX} "
                "are allowed"
            )
    if attempts is None:
        attempts = max(1, len(workers))
    if attempts < 1:
        raise InvalidInput("--attempts must be at least 1")
    if attempts > MAX_ATTEMPTS_AT_ONCE:
        raise InvalidInput(
            f"--attempts {attempts}: at most {MAX_ATTEMPTS_AT_ONCE} attempts are made at once"
        )
    if len(workers) > attempts:
        raise InvalidInput(
            f"{len(workers)} workers named for {attempts} attempt{'s' if attempts != 1 else ''}: "
            "give --attempts at least the number of --worker options (or drop --attempts)"
        )
    if not workers:
        return (None,) * attempts
    return tuple(workers[i % len(workers)] for i in range(attempts))


def no_checkpoint(step: str) -> None:
    return None


def describe_dirt(paths: list[DirtyPath]) -> str:
    shown = ", ".join(f"{p.path} ({_kind(p.code)})" for p in paths[:SHOWN_DIRTY_PATHS])
    more = len(paths) - SHOWN_DIRTY_PATHS
    return shown + (f" and {more} more" if more > 0 else "")


def _kind(code: str) -> str:
    if code == "??":
        return "untracked"
    if "D" in code:
        return "deleted"
    if code[0] not in " ?!" and code[1] not in " ?!":
        return "staged and modified"
    return "staged" if code[0] not in " ?!" else "modified"


def dirt_warning(pending: PendingDirtyCheck | None, base_commit: str) -> tuple[str, ...]:
    dirt = pending.result() if pending is not None else None
    if not dirt:
        return ()
    return (
        f"the repository has {len(dirt)} uncommitted path{'s' if len(dirt) != 1 else ''} "
        f"that the attempt does not carry ({describe_dirt(dirt)}); its base is the committed "
        f"HEAD {base_commit[:12]}",
    )


def check_worktree_root(root: Path) -> None:
    try:
        private.make_dir(root, fix_existing=False)  # may be a directory of the user's
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the worktree root {root}: {describe_os_error(exc)}"
        ) from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise WorkspaceError(f"the worktree root {root} is not writable")


def this_process(host: str) -> WorkerIdentity:
    # pid only: a start time needs psutil, too slow to import on every dispatch; doctor
    # pairs a pid with the age of the row instead
    return WorkerIdentity(name="dispatch", host=host, pid=os.getpid())


def new_attempt(
    settings: Settings,
    repo: Repository,
    task_key: str,
    base_ref: str,
    base_commit: str,
    worker: str | None,
    prompt: str,
    attempt_id: str | None = None,
) -> NewAttempt:
    attempt_id = attempt_id or naming.new_attempt_id()
    return NewAttempt(
        id=attempt_id,
        task_key=task_key,
        repository=str(repo.root),
        base_ref=base_ref,
        base_commit=base_commit,
        branch_name=naming.branch_name(settings.branch_prefix, task_key, attempt_id),
        worktree_path=str(
            naming.worktree_path(settings.worktree_root, repo.root, task_key, attempt_id)
        ),
        worker=worker,
        prompt=prompt,
        # who is provisioning, so that doctor can tell a crashed dispatch from a slow one
        dispatcher=this_process(settings.host_name),
        workspace_host=settings.host_name,
    )
