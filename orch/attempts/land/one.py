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

from orch.attempts.land.build import build
from orch.attempts.land.checkouts import following, prepare_checkouts
from orch.attempts.land.refusals import (
    branch_tip,
    elsewhere,
    few,
    pushed_tip,
    refuse_early,
    start_dirt,
    uncommitted,
)
from orch.attempts.land.request import LandOutcome, LandRequest
from orch.attempts.land.target import Target, landing_into, resolve_target
from orch.attempts.land.verify import Verdict, check_result, scratch_path
from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import (
    CheckFailed,
    LandConflict,
    LandRefused,
    OrchError,
    TargetMoved,
)
from orch.git import DiffRange, Git, PendingDirtyCheck, Repository
from orch.models import Attempt, Landed

if TYPE_CHECKING:
    from orch.attempts.push import PushedCopy
    from orch.store import Store

MOVES = 3  # how many results a land builds before a target that keeps moving wins
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
    early: dict[str, PendingDirtyCheck],
) -> LandOutcome:
    """Land one attempt. ``early``: looks at attempts' uncommitted work started before the
    store was open, by worktree_path (this land takes its own, if there)."""
    attempt = find_attempt(store, ref)
    if attempt.landed:
        removed, warnings = (
            (None, ())
            if request.dry_run
            else _remove(store, settings, git, request, attempt, actor, checkpoint)
        )
        return LandOutcome(
            ref,
            "already landed",
            attempt,
            attempt.landed_into,
            attempt.landed_strategy,
            commit=attempt.landed_commit,
            warnings=warnings,
            removed=removed,
        )
    try:
        return _land_found(
            store, settings, git, request, ref, attempt, actor, environ, checkpoint, early
        )
    except OrchError as exc:
        if not request.dry_run:  # every land's result is an event, a refusal too
            with contextlib.suppress(OrchError):
                store.record_event(
                    attempt.id,
                    "land_failed",
                    actor,
                    into=request.into,
                    strategy=str(request.strategy),
                    code=exc.exit_code,
                    reason=exc.message,
                )
        raise


def _land_found(
    store: Store,
    settings: Settings,
    git: Git,
    request: LandRequest,
    ref: str,
    attempt: Attempt,
    actor: str,
    environ: Mapping[str, str],
    checkpoint: Checkpoint,
    early: dict[str, PendingDirtyCheck],
) -> LandOutcome:
    refuse_early(store, settings, request, attempt)
    # an attempt whose worktree is on another host lands from its branch on the remote,
    # into the repository named here (--repo), else the one at its path
    foreign = elsewhere(settings, attempt)
    repo = git.discover(Path((foreign and request.repository) or attempt.repository))
    if request.repository is not None and Path(request.repository) != repo.root:
        raise LandRefused(
            f"attempt {attempt.id} belongs to the repository {repo.root}, not to "
            f"{request.repository}: its target must be a branch of its own repository"
        )
    git.require_merge_tree()
    tip = pushed_tip(git, repo, settings, attempt) if foreign else branch_tip(git, repo, attempt)
    # a dry run says what would land; the work left behind is looked at only when it
    # decides (--strict): in a large worktree that look costs more than the rest
    looks = not foreign and (request.strict or not request.dry_run)
    dirt = start_dirt(git, attempt, early) if looks else None
    try:
        warnings = uncommitted(attempt, dirt, strict=True) if request.strict else ()
        target = resolve_target(git, repo, attempt, request.into)
        try:
            # a dry run moves nothing: it takes no lock (dry runs go side by side)
            lock = contextlib.nullcontext() if request.dry_run else landing_into(repo, target)
            with lock:
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
            warnings = uncommitted(attempt, dirt, strict=False)
    finally:
        if dirt is not None:
            dirt.close()
    outcome = dataclasses.replace(outcome, warnings=warnings + outcome.warnings)
    if outcome.result != "landed":
        return outcome
    landed = store.get(attempt.id)
    removed, more = _remove(store, settings, git, request, landed, actor, checkpoint)
    return dataclasses.replace(
        outcome, attempt=landed, removed=removed, warnings=outcome.warnings + more
    )


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
            checkouts = prepare_checkouts(git, repo, target, old, built.commit)
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
            followed = following(git, target, checkouts, old, built.commit)
            landed = Landed(built.commit, tip, target.branch, str(strategy), actor)
            try:
                recorded = store.record_landed(
                    attempt.id, landed, actor, old=old, check=_check_words(verdict)
                )
            finally:
                warnings = followed()  # the checkouts have followed before anything else
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
        from orch.attempts.lifecycle import send  # imported when needed: start-up time

        body = (
            f"orch land could not land this attempt into {target.branch}: your branch "
            f"conflicts with {target.branch} at {old} in {few(list(exc.paths))}. In this "
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
) -> tuple[str | None, tuple[str, ...]]:
    """The attempt's worktree and branch, removed through cleanup (which counts what
    landed as saved, and deletes the copy of the branch its worker pushed), unless
    ``--keep``; what became of them, in words, and a warning when the pushed copy could
    not be deleted."""
    if request.keep:
        return "kept (--keep)", ()
    if not attempt.workspace_status.occupies_worktree:
        return _drop_landed_branch(store, settings, git, attempt, actor)
    if not attempt.terminal:
        return f"kept: attempt {attempt.id} is still {attempt.state}", ()
    # imported when needed: cleanup pulls in the pool and the archive (about 35 ms)
    from orch.attempts.cleanup import CleanupRequest, cleanup

    [item] = cleanup(
        store,
        CleanupRequest(refs=(attempt.id,)),
        settings,
        git,
        actor,
        checkpoint=checkpoint,
        workers=1,
    ).items
    if item.action == "skip":
        return f"kept: {item.reason}", ()
    removed = "removed its " + ", ".join(item.removed) if item.removed else None
    return _with_copy(removed, item.remote_branch)


def _with_copy(removed: str | None, copy: PushedCopy | None) -> tuple[str | None, tuple[str, ...]]:
    """What became of the worktree and branch, and of the branch's pushed copy."""
    if copy is None:
        return removed, ()
    if copy.failed:
        return removed, (copy.said,)
    return (f"{removed}; {copy.said}" if removed else copy.said), ()


def _drop_landed_branch(
    store: Store, settings: Settings, git: Git, attempt: Attempt, actor: str
) -> tuple[str | None, tuple[str, ...]]:
    """A landed attempt's branch left behind with its worktree gone (a removal a crash
    cut short, then doctor): deleted while it still points at the commit that landed,
    which is saved in the target (and then its pushed copy); a branch that moved on is
    kept."""
    if not (attempt.landed_tip and attempt.branch_name and attempt.repository):
        return None, ()
    from orch.attempts.push import drop_pushed_branch
    from orch.workspace import removal

    repo = git.discover(Path(attempt.repository))
    if git.branch_commit(repo, attempt.branch_name) != attempt.landed_tip:
        return None, ()
    policy = removal.Policy(branch_at=attempt.landed_tip, forget_if_gone=False)
    done = removal.remove(git, repo, None, attempt.branch_name, policy)
    if not done.branch:
        return None, ()
    copy = drop_pushed_branch(store, settings, git, repo, attempt, actor)
    return _with_copy("removed its branch", copy)
