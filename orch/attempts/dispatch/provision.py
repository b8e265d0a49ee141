"""Record the intent, provision a new worktree and branch, finalise or roll back.

All or nothing (DESIGN.md §2.3): the store records the intent
(``workspace_status=provisioning``) naming the branch and worktree, git does its work,
the payload is written, and only then is the row finalised (``ready``). Any failure
after the intent undoes the git work (``_roll_back``, the one way a dispatch undoes it)
and leaves the attempt ``failed`` with the reason. The worktree comes from a workspace
source (orch.workspace.sources); this module alone writes where it is to the store
(``_record``). No SQL, subprocess or JSON here: adapters do it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.request import (
    Checkpoint,
    DispatchResult,
    check_worktree_root,
    dirt_warning,
    no_checkpoint,
)
from orch.attempts.intent import record_intent
from orch.config import Settings, check_slots_fit
from orch.errors import OrchError, WorkspaceError
from orch.git import Git, PendingDirtyCheck, Repository, add_excludes
from orch.models import Attempt, CheckoutSpec, NewAttempt, PortBundle, WorkspaceStatus
from orch.repo_config import RepoConfig
from orch.system import inbox, ports, processes
from orch.workspace import pool, sources
from orch.workspace import setup as workspace_setup
from orch.workspace.port_bundles import lease_bundle

if TYPE_CHECKING:
    from orch.store import Store

PORTS_EXCLUDE = f"/{ports.PORTS_DIR}/"


def create_and_provision(
    new: NewAttempt,
    repo: Repository,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint = no_checkpoint,
    *,
    dirt_check: PendingDirtyCheck | None = None,
    retry_of: int | None = None,
    repo_config: RepoConfig | None = None,
    source: sources.Source | None = None,
    hooks: Path | None = None,
) -> DispatchResult:
    """Record the intent, provision, finalise (or roll back); see the module docstring.
    ``source``: where the worktree comes from (None: a pool member if one is ready, else
    a fresh worktree); its ``path``, if any, is what ``new`` names. ``hooks``: where the
    repository's hooks are, if the dispatch read it (None: git looks)."""
    repo_config = repo_config or RepoConfig()
    check_before_intent(settings, repo_config)
    attempt = record_new(new, settings, store, actor, source, retry_of=retry_of)
    checkpoint("intent-recorded")
    try:
        attempt = provision(
            attempt, repo, settings, git, store, actor, checkpoint, repo_config, source, hooks
        )
    finally:
        warnings = dirt_warning(dirt_check, new.base_commit or "")
    return DispatchResult(attempt=attempt, warnings=warnings)


def check_before_intent(settings: Settings, repo_config: RepoConfig) -> None:
    """What may refuse a dispatch after its source started but before any intent: the
    port slots fit a block, the worktree root can be written."""
    if repo_config.port_slots is not None:
        check_slots_fit(
            repo_config.port_slots,
            settings.port_block_size,
            f"[ports] slots of {repo_config.source}",
        )
    check_worktree_root(settings.worktree_root)


def record_new(
    new: NewAttempt,
    settings: Settings,
    store: Store,
    actor: str,
    source: sources.Source | None,
    *,
    retry_of: int | None = None,
) -> Attempt:
    """Record the intent of ``new`` (``provisioning``) and tell ``source`` the store now
    names its worktree."""
    # a source's own path (a pool member's, a checkout made ahead) names no attempt id:
    # it stays if the store gives the attempt another one
    keep_path = source is not None and source.path is not None
    attempt = record_intent(
        store,
        new,
        actor,
        retry_of=retry_of,
        renamed=lambda a, fresh: _renamed(settings, a, fresh, keep_path),
    )
    if source is not None:
        source.recorded()
    return attempt


def _renamed(settings: Settings, new: NewAttempt, fresh: str, keep_path: bool) -> NewAttempt:
    """``new`` under the id ``fresh``, with the branch and worktree names made again."""
    path = naming.worktree_path(settings.worktree_root, Path(new.repository), new.task_key, fresh)
    if new.worktree_path and keep_path:
        path = Path(new.worktree_path)
    return dataclasses.replace(
        new,
        id=fresh,
        branch_name=naming.branch_name(settings.branch_prefix, new.task_key, fresh),
        worktree_path=str(path),
    )


def provision(
    attempt: Attempt,
    repo: Repository,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint,
    repo_config: RepoConfig,
    source: sources.Source | None = None,
    hooks: Path | None = None,
    *,
    refill: bool = True,
) -> Attempt:
    """Make the branch, take the worktree from ``source``, set it up, write the payload
    and finalise the attempt recorded as provisioning; roll back on any failure.
    ``refill``: top the warm pool up afterwards (a best-of-N dispatch does it once)."""
    assert attempt.branch_name and attempt.worktree_path and attempt.base_commit
    spec = attempt.checkout
    if source is None:
        source = sources.Pooled(git, repo, settings, spec)
    path = Path(attempt.worktree_path)
    payload_file = inbox.payload_path(settings.inbox_dir, attempt.id)
    branch_created = False
    setup_failure = None

    def record(where: Path) -> None:
        _record(store, attempt.id, where, actor)

    try:
        bundle = lease_bundle(
            store, settings, attempt.id, settings.host_name, actor, repo_config.port_slots
        )
        git.create_branch(
            repo, attempt.branch_name, attempt.base_commit, f"orch: dispatch attempt {attempt.id}"
        )
        branch_created = True
        checkpoint("branch-created")
        member = source.take(attempt, record, checkpoint, hooks)
        path = source.path or path
        attempt = dataclasses.replace(attempt, worktree_path=str(path))
        checkpoint("worktree-added")
        add_excludes(repo, [PORTS_EXCLUDE])
        ports.write_ports_file(path, bundle)
        try:
            set_up_workspace(attempt, repo, path, repo_config, bundle, settings, git, store, actor)
        except WorkspaceError as exc:
            if not repo_config.keep_failed:
                raise
            setup_failure = exc.message  # keep the worktree for inspection (keep_failed)
        checkpoint("workspace-set-up")
        ready = dataclasses.replace(
            attempt, workspace_status=WorkspaceStatus.READY, payload_path=str(payload_file)
        )
        inbox.write_payload(
            payload_file,
            inbox.build_payload(
                ready, orch_home=settings.home, lease_ttl=settings.lease_ttl, ports=bundle.ports
            ),
        )
        checkpoint("payload-written")
        finished = store.finish_provisioning(attempt.id, payload_file, actor, from_pool=member)
    except BaseException as exc:
        # a damaged pool member left at the path may hold someone's work: never removed;
        # nor is a worktree this dispatch did not make or claim (a pool member another
        # dispatch took meanwhile is that one's)
        path = source.path or path
        source.settle()
        keep = isinstance(exc, pool.MemberStuck) or not source.ours
        _roll_back(repo, git, attempt, path, payload_file, branch_created, keep_worktree=keep)
        with contextlib.suppress(OrchError):
            store.release_ports(attempt.id, actor, "provisioning failed")
        reason = exc.message if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OrchError):
            store.fail_provisioning(attempt.id, reason or type(exc).__name__, actor)
        if isinstance(exc, OrchError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, OSError):
            raise WorkspaceError(f"provisioning attempt {attempt.id} failed: {reason}") from exc
        raise
    if refill:
        refill_pool(settings, repo, spec)
    if setup_failure is None:
        return finished
    # keep_failed: the worktree stays (workspace ready, so cleanup removes it later), the
    # attempt ends failed before any worker can take it
    store.fail_queued(attempt.id, f"{setup_failure} (worktree kept for inspection)", actor)
    raise WorkspaceError(f"{setup_failure}; the worktree is kept for inspection: {path}")


def _record(store: Store, attempt_id: str, where: Path, actor: str) -> None:
    """The one place after the intent that writes an attempt's worktree_path: the store
    names a worktree before anything is done there, so that doctor knows whose it is."""
    store.move_worktree(attempt_id, str(where), actor)


def refill_pool(settings: Settings, repo: Repository, spec: CheckoutSpec) -> None:
    """Start ``orch pool fill`` in the background when the pool is below its size; the
    dispatch never waits for it."""
    if not (settings.pool_refill and spec.poolable):
        return
    # the attempt is ready: a pool that cannot be read or refilled must not fail it
    with contextlib.suppress(OrchError, OSError):
        size = pool.target_size(settings, repo)
        if size <= 0 or len(pool.ready_members(pool.flavour_dir(settings, repo, spec))) >= size:
            return
        argv = [sys.executable, "-m", "orch", "pool", "fill", "--repo", str(repo.root), "--quiet"]
        processes.spawn_detached(argv, os.environ, settings.logs_dir / "pool-fill.log")


def set_up_workspace(
    attempt: Attempt,
    repo: Repository,
    path: Path,
    config: RepoConfig,
    bundle: PortBundle | None,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
) -> None:
    """The repository's workspace set-up in a worktree just made: included files, shared
    links, then the set-up hook (a failure raises WorkspaceError)."""
    included = workspace_setup.copy_included(git, repo, path, config)
    linked, skipped = workspace_setup.link_shared(repo, path, config)
    if included or linked or skipped:
        store.record_event(
            attempt.id,
            "workspace_set_up",
            actor,
            included=included,
            shared=linked,
            shared_skipped_existing=skipped,
        )
    workspace_setup.run_setup(
        path, config, bundle, settings.logs_dir / f"{attempt.id}.log", dict(os.environ)
    )


def _roll_back(
    repo: Repository,
    git: Git,
    attempt: Attempt,
    path: Path,
    payload: Path,
    branch_created: bool,
    keep_worktree: bool = False,
) -> None:
    """Undo what provisioning did; each step tolerates the thing already being gone."""
    from orch.workspace import removal  # only on failure: not imported by every dispatch

    inbox.remove_payload(payload)
    # the branch goes only while it still points at the base: nothing committed is lost
    removal.remove(
        git,
        repo,
        None if keep_worktree else path,
        attempt.branch_name if branch_created and attempt.base_commit else None,
        removal.Policy(branch_at=attempt.base_commit, best_effort=True),
    )
