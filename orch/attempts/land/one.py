"""Landing one attempt: every refusal first, then, under the target's lock, build the
result, record the intent, check the result, move the target by compare-and-swap, let a
checked-out target's worktree follow, record the land; then remove the attempt's
worktree and branch (cleanup's one path) unless ``--keep``.

The order keeps every crash repairable (``orch doctor --fix``, orch.attempts.land.recovery):
the intent names the result before the target moves, so that after a kill -9 the target
is at its old commit (the intent is cleared) or at the result (the land is recorded),
never elsewhere; nothing is removed before the land is recorded. A target that moved
meanwhile is never overwritten: the result is built (and checked) again on its new
commit, ``MOVES`` times at most.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.cleanup import CleanupRequest, cleanup
from orch.attempts.land.build import build
from orch.attempts.land.request import LandOutcome, LandRequest
from orch.attempts.land.target import Target, landing_into, resolve_target
from orch.attempts.land.verify import Verdict, check_result, scratch_path
from orch.attempts.lifecycle import send
from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import (
    CheckFailed,
    Conflict,
    LandConflict,
    LandRefused,
    NotFound,
    OrchError,
    TargetMoved,
)
from orch.git import DiffRange, Git, PendingDirtyCheck, Repository
from orch.models import Attempt, Landed

if TYPE_CHECKING:
    from orch.store import Store

MOVES = 3  # how many results a land builds before a target that keeps moving wins
SHOWN = 3  # paths named in a line, then a count
Checkpoint = Callable[[str], None]


def land_one(
    store: Store,
    settings: Settings,
    git: Git,
    request: LandRequest,
    ref: str,
    actor: str,
    environ: Mapping[str, str],
    checkpoint: Checkpoint,
) -> LandOutcome:
    attempt = find_attempt(store, ref)
    if attempt.landed:
        return LandOutcome(
            ref,
            "already landed",
            attempt,
            attempt.landed_into,
            attempt.landed_strategy,
            commit=attempt.landed_commit,
            removed=(
                None
                if request.dry_run
                else _remove(store, settings, git, request, attempt, actor, checkpoint)
            ),
        )
    _refuse_early(store, settings, request, attempt)
    repo = git.discover(Path(attempt.repository))
    if request.repository is not None and Path(request.repository) != repo.root:
        raise LandRefused(
            f"attempt {attempt.id} belongs to the repository {repo.root}, not to "
            f"{request.repository}: its target must be a branch of its own repository"
        )
    git.require_merge_tree()
    tip = _tip(git, repo, attempt)
    dirt = _start_dirt(git, attempt)
    try:
        warnings = _uncommitted(attempt, dirt, strict=True) if request.strict else ()
        target = resolve_target(git, repo, attempt, request.into)
        try:
            with landing_into(repo, target):
                outcome = _land_locked(
                    store,
                    settings,
                    git,
                    repo,
                    request,
                    ref,
                    attempt,
                    target,
                    tip,
                    actor,
                    environ,
                    checkpoint,
                )
        except LandConflict as exc:
            if request.dry_run:
                return LandOutcome(
                    ref,
                    "would conflict",
                    attempt,
                    target.branch,
                    str(request.strategy),
                    error=exc,
                )
            return _conflicted(store, settings, request, ref, attempt, target, exc, actor)
        if not request.strict:
            warnings = _uncommitted(attempt, dirt, strict=False)
    finally:
        if dirt is not None:
            dirt.close()
    outcome = dataclasses.replace(outcome, warnings=warnings + outcome.warnings)
    if outcome.result != "landed":
        return outcome
    landed = store.get(attempt.id)
    removed = _remove(store, settings, git, request, landed, actor, checkpoint)
    return dataclasses.replace(outcome, attempt=landed, removed=removed)


def _refuse_early(store: Store, settings: Settings, request: LandRequest, attempt: Attempt) -> None:
    """Refusals that need neither git nor the target."""
    if attempt.landing_commit is not None:
        raise Conflict(
            f"attempt {attempt.id} is being landed by another orch land (or by one that was "
            "killed: run 'orch doctor --fix')"
        )
    if attempt.workspace_host not in (None, settings.host_name):
        raise LandRefused(
            f"the work of attempt {attempt.id} is on host {attempt.workspace_host}: land it there"
        )
    if not request.force:
        if attempt.state.live:
            raise LandRefused(
                f"attempt {attempt.id} is {attempt.state}: its agent may still commit; wait "
                "for it, or --force lands what it has committed so far"
            )
        for other in store.attempts_using_worktree(attempt.worktree_path or ""):
            if other.id != attempt.id and other.state.live:
                raise LandRefused(
                    f"attempt {other.id} ({other.state}) still works on the branch of attempt "
                    f"{attempt.id}: wait for it, or --force"
                )
    if not attempt.branch_name or not attempt.base_commit:
        raise LandRefused(f"attempt {attempt.id} has no branch of its own to land")


def _tip(git: Git, repo: Repository, attempt: Attempt) -> str:
    """The attempt's branch tip, refused when the branch is gone or has no commits."""
    assert attempt.branch_name is not None and attempt.base_commit is not None
    tip = git.branch_commit(repo, attempt.branch_name)
    if tip is None:
        saved = f"; its work was saved to {attempt.archive_path}" if attempt.archive_path else ""
        raise NotFound(
            f"the branch {attempt.branch_name} of attempt {attempt.id} is gone: "
            f"nothing to land{saved}"
        )
    if tip == attempt.base_commit or git.commits_ahead(repo.root, attempt.base_commit, tip) == 0:
        raise LandRefused(
            f"attempt {attempt.id} has no commits since its base_commit "
            f"{attempt.base_commit[:12]}: nothing to land (only committed work lands)"
        )
    return tip


def _start_dirt(git: Git, attempt: Attempt) -> PendingDirtyCheck | None:
    """The attempt's uncommitted work, looked at in the background meanwhile."""
    path = Path(attempt.worktree_path) if attempt.worktree_path else None
    if path is None or not attempt.workspace_status.holds_worktree or not path.is_dir():
        return None
    try:
        return git.start_dirty_check(path, yield_cpu=True)
    except OSError:
        return None


def _uncommitted(attempt: Attempt, dirt: PendingDirtyCheck | None, strict: bool) -> tuple[str, ...]:
    if dirt is None:
        return ()
    found = dirt.result() or []
    if not found:
        return ()
    line = (
        f"attempt {attempt.id} has {len(found)} uncommitted path{'s' if len(found) != 1 else ''} "
        f"in its worktree ({_few([d.path for d in found])}): only committed work lands"
    )
    if strict:
        raise LandRefused(line + " (--strict)")
    return (line,)


def _few(paths: list[str]) -> str:
    more = len(paths) - SHOWN
    return ", ".join(paths[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _land_locked(
    store: Store,
    settings: Settings,
    git: Git,
    repo: Repository,
    request: LandRequest,
    ref: str,
    attempt: Attempt,
    target: Target,
    tip: str,
    actor: str,
    environ: Mapping[str, str],
    checkpoint: Checkpoint,
) -> LandOutcome:
    git_dir = repo.common_dir
    strategy = request.strategy
    now = store.get(attempt.id)  # another land of it may have held the lock before this one
    if now.landed:
        return LandOutcome(
            ref,
            "already landed",
            now,
            now.landed_into,
            now.landed_strategy,
            commit=now.landed_commit,
        )
    intended: str | None = None  # this land's intent, once recorded
    try:
        for _ in range(MOVES):
            old = git.ref_target(git_dir, target.ref)
            if old is None:
                raise LandRefused(f"the target branch {target.branch} was deleted meanwhile")
            built = build(git, git_dir, attempt, strategy, target.branch, old, tip, request.message)
            checkpoint("conflict-tested")
            if request.dry_run:
                stat = git.diff_output(
                    DiffRange(old, built.commit, git_dir=git_dir), "stat", color=False
                ).decode(errors="replace")
                return LandOutcome(
                    ref,
                    "would land",
                    attempt,
                    target.branch,
                    str(strategy),
                    old,
                    built.commit,
                    diffstat=stat,
                )
            checkouts = _checkouts(git, repo, target)
            _refuse_dirty_checkouts(git, repo, target, checkouts, old, built.commit)
            intent = {
                "into": target.branch,
                "from": old,
                "tip": tip,
                "strategy": str(strategy),
                "by": actor,
                "check_worktree": str(scratch_path(settings, attempt)),
            }
            store.begin_landing(attempt.id, built.commit, intent, actor, replacing=intended)
            intended = built.commit
            checkpoint("intent-recorded")
            verdict = (
                check_result(
                    store, settings, git, repo, attempt, built.commit, actor, environ, checkpoint
                )
                if request.check
                else Verdict("skipped")
            )
            if not verdict.lands:
                run = verdict.run
                raise CheckFailed(
                    f"the check of attempt {attempt.id} on its result {built.commit[:12]} "
                    f"{'timed out' if run and run.timed_out else 'failed'} ('orch log "
                    f"{attempt.id}'): {target.branch} was not moved"
                )
            reason = f"orch land {attempt.id} ({strategy})"
            if not git.compare_and_swap(git_dir, target.ref, built.commit, old, reason):
                continue  # the target moved meanwhile: build on its new commit
            # from here on the intent stays until the land is recorded: doctor completes it
            intended = None
            checkpoint("target-moved")
            warnings = _follow(git, target, checkouts, old, built.commit)
            landed = Landed(built.commit, tip, target.branch, str(strategy), actor)
            recorded = store.record_landed(
                attempt.id, landed, actor, old=old, check=_check_words(verdict)
            )
            checkpoint("recorded")
            return LandOutcome(
                ref,
                "landed",
                recorded or attempt,
                target.branch,
                str(strategy),
                old,
                built.commit,
                _check_words(verdict),
                warnings,
            )
        raise TargetMoved(
            f"{target.branch} moved {MOVES} times while attempt {attempt.id} was landing onto "
            "it: nothing was overwritten; try again"
        )
    except BaseException:
        if intended is not None:
            with contextlib.suppress(OrchError):
                store.clear_landing(attempt.id, intended, actor, "the land did not complete")
        raise


def _check_words(verdict: Verdict) -> str:
    return "skipped (--no-check)" if verdict.result == "skipped" else verdict.result


def _checkouts(git: Git, repo: Repository, target: Target) -> list[Path]:
    """The worktrees that have the target branch checked out."""
    return [
        Path(entry["worktree"])
        for entry in git.list_worktrees(repo)
        if entry.get("branch") == target.ref and "worktree" in entry
    ]


def _refuse_dirty_checkouts(
    git: Git, repo: Repository, target: Target, checkouts: list[Path], old: str, new: str
) -> None:
    """A checkout of the target whose uncommitted changes touch the landed files is
    refused before anything moves (it could not follow)."""
    if not checkouts:
        return
    landed = git.changed_paths(repo.root, old, new)
    for path in checkouts:
        touched = git.dirty_among(path, landed)
        if touched:
            raise LandRefused(
                f"{target.branch} is checked out at {path} with uncommitted changes to files "
                f"the land changes ({_few(touched)}): commit or stash them first"
            )


def _follow(git: Git, target: Target, checkouts: list[Path], old: str, new: str) -> tuple[str, ...]:
    """Bring each checkout of the target along (like ``git merge --ff-only``)."""
    warnings = []
    for path in checkouts:
        try:
            git.follow_target(path, old, new)
        except OrchError as exc:
            warnings.append(
                f"{target.branch} moved to {new[:12]}, but its checkout at {path} could not "
                f"follow ({exc.message}): run 'git read-tree -m -u {old} {new}' there"
            )
    return tuple(warnings)


def _conflicted(
    store: Store,
    settings: Settings,
    request: LandRequest,
    ref: str,
    attempt: Attempt,
    target: Target,
    exc: LandConflict,
    actor: str,
) -> LandOutcome:
    """Record the conflict; with ``--resolve``, hand it back to the attempt's agent."""
    old = exc.at
    store.record_event(
        attempt.id,
        "land_conflict",
        actor,
        into=target.branch,
        at=old,
        strategy=str(request.strategy),
        paths=list(exc.paths[:50]),
        count=len(exc.paths),
    )
    followup = None
    if request.resolve:
        body = (
            f"orch land could not land this attempt into {target.branch}: your branch "
            f"conflicts with {target.branch} at {old} in {_few(list(exc.paths))}. In this "
            f"worktree, rebase your branch onto it (git rebase {target.branch}), resolve the "
            "conflicts, run the tests and commit; orch land then takes the result."
        )
        sent = send(store, attempt.id, body, actor, settings)
        if sent.message is not None:
            followup = f"message {sent.message.id} queued for attempt {attempt.id}"
        elif sent.continuation is not None:
            followup = f"continuation attempt {sent.continuation.id} will resolve it"
    return LandOutcome(
        ref, "failed", attempt, target.branch, str(request.strategy), followup=followup, error=exc
    )


def _remove(
    store: Store,
    settings: Settings,
    git: Git,
    request: LandRequest,
    attempt: Attempt,
    actor: str,
    checkpoint: Checkpoint,
) -> str | None:
    """The attempt's worktree and branch, removed through cleanup (which counts what
    landed as saved), unless ``--keep``; what became of them, in words."""
    if request.keep:
        return "kept (--keep)"
    if not attempt.workspace_status.occupies_worktree:
        return None
    if not attempt.terminal:
        return f"kept: attempt {attempt.id} is still {attempt.state}"
    [item] = cleanup(
        store,
        CleanupRequest(refs=(attempt.id,)),
        settings,
        git,
        actor,
        checkpoint=checkpoint,
        workers=1,
    )
    if item.action == "skip":
        return f"kept: {item.reason}"
    return "removed its " + ", ".join(item.removed) if item.removed else None
