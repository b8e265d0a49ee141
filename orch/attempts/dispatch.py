"""The dispatch use case: a committed base, a branch, a worktree, a row and a payload.

All or nothing (DESIGN.md §2.3): every check a user can fail runs before anything is
written; then the store records the intent (``workspace_status=provisioning``), git does
its work, the payload is written, and only then is the row finalised (``ready``). Any
failure after the intent undoes the git work and leaves the attempt ``failed`` with the
reason. A crash between two steps leaves a ``provisioning`` row that names the branch and
worktree, which ``orch doctor`` repairs. No SQL, subprocess or JSON here: adapters do it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.intent import record_intent
from orch.config import (
    RepoConfig,
    Settings,
    check_slots_fit,
    load_repo_config,
    validate_sparse_paths,
)
from orch.errors import (
    DirtyRepository,
    InvalidInput,
    NotAGitRepository,
    OrchError,
    WorkspaceError,
    describe_os_error,
)
from orch.git import (
    DirtyPath,
    Git,
    PendingDirtyCheck,
    PendingRepositoryUrl,
    Repository,
    add_excludes,
    checkout_env,
    worktree_registered,
)
from orch.models import (
    Attempt,
    CheckoutSpec,
    NewAttempt,
    PortBundle,
    WorkerIdentity,
    WorkspaceStatus,
)
from orch.system import inbox, ports, processes
from orch.workspace import pool
from orch.workspace import setup as workspace_setup
from orch.workspace.ahead import CheckoutAhead
from orch.workspace.port_bundles import lease_bundle
from orch.workspace.reuse import finish_in_place, refuse_if_busy

if TYPE_CHECKING:
    from orch.store import Store

SHOWN_DIRTY_PATHS = 5
PORTS_EXCLUDE = f"/{ports.PORTS_DIR}/"


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True)
class DispatchResult:
    attempt: Attempt
    warnings: tuple[str, ...] = ()


Checkpoint = Callable[[str], None]


def _no_checkpoint(step: str) -> None:
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


def check_worktree_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the worktree root {root}: {describe_os_error(exc)}"
        ) from exc
    if not os.access(root, os.W_OK | os.X_OK):
        raise WorkspaceError(f"the worktree root {root} is not writable")


def dispatch(
    request: DispatchRequest,
    settings: Settings,
    git: Git,
    open_store: Callable[[], Store],
    actor: str,
    checkpoint: Checkpoint = _no_checkpoint,
    early_dirt_check: PendingDirtyCheck | None = None,
) -> DispatchResult:
    """``early_dirt_check``: a ``git status`` started in ``request.repo_path`` before the
    command line was parsed (``orch.cli.startup``); used as the main worktree's dirt check
    when the repository turns out to be that worktree, else left for the caller to
    cancel."""
    task_key = naming.validate_task_key(request.task_key)
    sparse = validate_sparse_paths(request.sparse)
    phased = request.phase is not None or request.reuse_workspace
    if phased and request.base_ref is not None and request.reuse_workspace:
        raise InvalidInput("--reuse-workspace continues from the workspace's HEAD: drop --base-ref")
    if sparse and request.reuse_workspace:
        raise InvalidInput("--reuse-workspace keeps the workspace's checkout: drop --sparse")
    try:
        repo = git.discover(request.repo_path)
    except NotAGitRepository:
        if not phased:
            raise
        return _in_place(request, task_key, None, settings, git, open_store(), actor)
    if phased and repo.invoked_from_linked_worktree:
        return _in_place(request, task_key, repo, settings, git, open_store(), actor)
    repo_config = load_repo_config(repo.root)
    explicit_base = request.base_ref is not None
    base_ref = request.base_ref if request.base_ref is not None else "HEAD"
    base_commit, has_submodules = git.resolve_base(repo, base_ref)
    if request.strict and not explicit_base:
        dirt = git.dirty_paths(repo.root)
        if dirt:
            raise DirtyRepository(
                f"refusing to dispatch from a dirty repository ({len(dirt)} uncommitted "
                f"path{'s' if len(dirt) != 1 else ''}: {describe_dirt(dirt)}); commit or stash "
                "them, or name the base explicitly with --base-ref",
                tuple(p.path for p in dirt),
            )
    spec = CheckoutSpec(
        sparse_paths=sparse or repo_config.sparse,
        submodules=repo_config.submodules if has_submodules else None,
        lfs_skip_smudge=repo_config.lfs_skip_smudge,
    )
    # a warm pool member's `git status` runs while the store opens (its imports are the
    # slowest part of a dispatch); the member is claimed only after the intent is recorded
    local = request.host is None or request.host == settings.host_name
    probe: pool.Probe | None = None
    ahead: CheckoutAhead | None = None
    dirt_check: PendingDirtyCheck | None = None
    url: PendingRepositoryUrl | None = None
    try:
        if local and not request.reuse_workspace:
            probe = pool.probe(git, repo, settings, spec)
        # no member to hand over: the worktree is made (detached) while the store opens,
        # and becomes the attempt's after its intent (orch.workspace.ahead)
        if probe is None and local and not request.reuse_workspace and not spec.submodules:
            ahead = _check_out_ahead(git, repo, settings, task_key, base_commit, spec, checkpoint)
            checkpoint("worktree-started-ahead")
        # Not strict and the base is the main worktree's HEAD: its uncommitted changes are
        # not carried into the attempt; find out (meanwhile too) so that we can say so.
        if local and not (request.strict or explicit_base or request.reuse_workspace):
            # a check started in the main worktree (or a directory of it) sees the same
            # status: porcelain paths are relative to the top level wherever git runs
            if early_dirt_check is not None and not repo.invoked_from_linked_worktree:
                dirt_check = early_dirt_check
            else:
                dirt_check = git.start_dirty_check(repo.root, yield_cpu=True)
        # read while the store opens, like the status runs above
        url = git.start_repository_url(repo)
        return _new_workspace(
            request,
            task_key,
            repo,
            repo_config,
            base_ref,
            base_commit,
            dirt_check,
            spec,
            probe,
            ahead,
            url,
            settings,
            git,
            open_store(),
            actor,
            checkpoint,
        )
    finally:
        if ahead is not None and not ahead.recorded:
            ahead.discard()  # failed before its intent: nobody else knows of it
        if url is not None:
            url.close()
        if probe is not None:
            probe.close()
        if dirt_check is not None:
            dirt_check.close()


def _new_workspace(
    request: DispatchRequest,
    task_key: str,
    repo: Repository,
    repo_config: RepoConfig,
    base_ref: str,
    base_commit: str,
    dirt_check: PendingDirtyCheck | None,
    spec: CheckoutSpec,
    probe: pool.Probe | None,
    ahead: CheckoutAhead | None,
    pending_url: PendingRepositoryUrl,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint,
) -> DispatchResult:
    phased = request.phase is not None or request.reuse_workspace
    url = pending_url.result()
    if request.host is not None and request.host != settings.host_name:
        if phased:
            raise InvalidInput("--host cannot be combined with --phase or --reuse-workspace")
        return _for_another_host(request, task_key, repo, base_ref, base_commit, url, store, actor)
    if request.reuse_workspace:
        reused = _reuse(request, task_key, repo, repo_config, settings, git, store, actor)
        if reused is not None:
            return reused
    new = new_attempt(
        settings,
        repo,
        task_key,
        base_ref,
        base_commit,
        request.worker,
        request.prompt,
        attempt_id=ahead.attempt_id if ahead is not None else None,
    )
    new = dataclasses.replace(new, phase=request.phase, repository_url=url, checkout=spec)
    if probe is not None:
        # the probed member is handed over where it is: the intent records its path
        new = dataclasses.replace(new, worktree_path=str(probe.member))
    result = create_and_provision(
        new,
        repo,
        settings,
        git,
        store,
        actor,
        checkpoint,
        dirt_check=dirt_check,
        repo_config=repo_config,
        probe=probe,
        ahead=ahead,
    )
    # later phases of the task find this workspace (--reuse-workspace): finish_provisioning
    # recorded it with the attempt
    return result


def _for_another_host(
    request: DispatchRequest,
    task_key: str,
    repo: Repository,
    base_ref: str,
    base_commit: str,
    url: str,
    store: Store,
    actor: str,
) -> DispatchResult:
    """Record the attempt with its committed base; a worker on the named host (or any)
    with a clone of this repository provisions the branch and worktree when it claims it."""
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


def _reuse(
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
    if pool.is_pool_path(settings, repo, worktree):
        return False
    return all(a.task_key == task_key for a in store.live_attempts_using_worktree(str(worktree)))


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


def _in_place(
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


def _renamed(
    settings: Settings, new: NewAttempt, fresh: str, keep_path: bool = False
) -> NewAttempt:
    """``new`` under the id ``fresh``, with the branch and worktree names made again (a
    pool member's path names no attempt, and a worktree made ahead is already there:
    those stay)."""
    path = naming.worktree_path(settings.worktree_root, Path(new.repository), new.task_key, fresh)
    if new.worktree_path and (keep_path or pool.in_a_pool(Path(new.worktree_path))):
        path = Path(new.worktree_path)
    return dataclasses.replace(
        new,
        id=fresh,
        branch_name=naming.branch_name(settings.branch_prefix, new.task_key, fresh),
        worktree_path=str(path),
    )


def create_and_provision(
    new: NewAttempt,
    repo: Repository,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint = _no_checkpoint,
    *,
    dirt_check: PendingDirtyCheck | None = None,
    retry_of: int | None = None,
    repo_config: RepoConfig | None = None,
    probe: pool.Probe | None = None,
    ahead: CheckoutAhead | None = None,
) -> DispatchResult:
    """Record the intent, provision, finalise (or roll back); see the module docstring."""
    repo_config = repo_config or RepoConfig()
    if repo_config.port_slots is not None:
        check_slots_fit(
            repo_config.port_slots,
            settings.port_block_size,
            f"[ports] slots of {repo_config.source}",
        )
    check_worktree_root(settings.worktree_root)
    attempt = record_intent(
        store,
        new,
        actor,
        retry_of=retry_of,
        renamed=lambda a, fresh: _renamed(settings, a, fresh, keep_path=ahead is not None),
    )
    if ahead is not None:
        ahead.owned()  # the intent names its worktree: it is the attempt's
    checkpoint("intent-recorded")
    try:
        attempt = provision(
            attempt, repo, settings, git, store, actor, checkpoint, repo_config, probe, ahead
        )
    finally:
        warnings = _collect_dirt_warning(dirt_check, new.base_commit or "")
    return DispatchResult(attempt=attempt, warnings=warnings)


def provision(
    attempt: Attempt,
    repo: Repository,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint,
    repo_config: RepoConfig,
    probe: pool.Probe | None = None,
    ahead: CheckoutAhead | None = None,
) -> Attempt:
    assert attempt.branch_name and attempt.worktree_path and attempt.base_commit
    path = Path(attempt.worktree_path)
    payload_file = inbox.payload_path(settings.inbox_dir, attempt.id)
    branch_created = False
    placed = _Placement(path)
    placed.ours = ahead is not None  # made for this attempt, named after it
    setup_failure = None
    try:
        bundle = lease_bundle(
            store, settings, attempt.id, settings.host_name, actor, repo_config.port_slots
        )
        git.create_branch(
            repo, attempt.branch_name, attempt.base_commit, f"orch: dispatch attempt {attempt.id}"
        )
        branch_created = True
        checkpoint("branch-created")
        spec = attempt.checkout
        member = _check_out(
            attempt, repo, placed, spec, settings, git, store, actor, checkpoint, probe, ahead
        )
        path = placed.path
        attempt = dataclasses.replace(attempt, worktree_path=str(path))
        checkpoint("worktree-added")
        add_excludes(repo, [PORTS_EXCLUDE])
        ports.write_ports_file(path, bundle)
        try:
            _set_up(attempt, repo, path, repo_config, bundle, settings, git, store, actor)
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
        path = placed.path
        if ahead is not None:
            ahead.settle()  # git may still be checking out there
        keep = isinstance(exc, pool.MemberStuck) or not placed.ours
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
    _refill_pool(settings, repo, spec)
    if setup_failure is None:
        return finished
    # keep_failed: the worktree stays (workspace ready, so cleanup removes it later), the
    # attempt ends failed before any worker can take it
    store.fail_queued(attempt.id, f"{setup_failure} (worktree kept for inspection)", actor)
    raise WorkspaceError(f"{setup_failure}; the worktree is kept for inspection: {path}")


def _check_out(
    attempt: Attempt,
    repo: Repository,
    placed: _Placement,
    spec: CheckoutSpec,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
    checkpoint: Checkpoint,
    probe: pool.Probe | None,
    ahead: CheckoutAhead | None,
) -> str | None:
    """Populate the attempt's worktree: a warm pool member if one is ready and clean,
    else the one made ahead, else a fresh worktree. Returns the pool member's name, or
    None. ``placed`` follows where the worktree is (the store records a path before
    anything is done there) and whether it is this dispatch's."""
    assert attempt.branch_name and attempt.base_commit
    path = placed.path
    if ahead is not None:
        ahead.result()  # detached at the base, as `git worktree add` left it
        git.attach_head(path, attempt.branch_name, attempt.base_commit)
        # the hook `git worktree add -b` runs, now that HEAD is on the branch
        commit = attempt.base_commit
        env = checkout_env(spec.lfs_skip_smudge)
        git.post_checkout(path, "0" * len(commit), commit, env, repo)
        return None

    def choose(where: Path) -> None:
        if where != placed.path:
            store.move_worktree(attempt.id, str(where), actor)
            placed.path, placed.ours = where, False

    def claimed(where: Path) -> None:
        placed.ours = True  # choose(where) came first: placed.path is where

    member = pool.claim(git, repo, settings, spec, probe, choose, claimed, checkpoint)
    if member is not None:
        pool.switch_to_branch(
            git, repo, member.path, attempt.branch_name, member.commit, attempt.base_commit, spec
        )
        return member.member
    fresh = path
    if pool.in_a_pool(path):  # the probed member was taken or damaged
        fresh = naming.worktree_path(
            settings.worktree_root, repo.root, attempt.task_key, attempt.id
        )
    choose(fresh)
    placed.ours = True  # named after this attempt: whatever is made there is its own
    git.add_worktree(
        repo,
        fresh,
        attempt.branch_name,
        attempt.base_commit,
        sparse=spec.sparse_paths,
        submodules=bool(spec.submodules),
        lfs_skip_smudge=spec.lfs_skip_smudge,
    )
    return None


class _Placement:
    """Where a dispatch's worktree is, and whether it is the dispatch's own (made by it,
    or a pool member it claimed): only then does a rollback remove it."""

    __slots__ = ("ours", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ours = False


def _check_out_ahead(
    git: Git,
    repo: Repository,
    settings: Settings,
    task_key: str,
    base_commit: str,
    spec: CheckoutSpec,
    checkpoint: Checkpoint,
) -> CheckoutAhead | None:
    """Start the attempt's worktree (see orch.workspace.ahead); None when something is already at
    its path (the id another attempt's) or its marker cannot be written: the worktree is
    then made after the intent, which reports what is wrong. A worktree made ahead keeps
    its path if the store gives the attempt another id (orch.attempts.intent): nothing else is
    there, and a rollback removes only what this dispatch made."""
    attempt_id = naming.new_attempt_id()
    path = naming.worktree_path(settings.worktree_root, repo.root, task_key, attempt_id)
    if os.path.lexists(path):
        return None
    try:
        return CheckoutAhead.start(
            git, repo, settings, attempt_id, path, base_commit, spec, checkpoint
        )
    except (OSError, RuntimeError):
        return None


def _refill_pool(settings: Settings, repo: Repository, spec: CheckoutSpec) -> None:
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


def _set_up(
    attempt: Attempt,
    repo: Repository,
    path: Path,
    config: RepoConfig,
    bundle: PortBundle,
    settings: Settings,
    git: Git,
    store: Store,
    actor: str,
) -> None:
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
    inbox.remove_payload(payload)
    if not keep_worktree:
        with contextlib.suppress(OrchError, OSError):
            git.remove_worktree(repo, path)
    if branch_created and attempt.branch_name and attempt.base_commit:
        # only while the branch still points at the base: nothing committed is ever lost
        with contextlib.suppress(OrchError, OSError):
            git.delete_branch_if_at(repo, attempt.branch_name, attempt.base_commit)


def _collect_dirt_warning(pending: PendingDirtyCheck | None, base_commit: str) -> tuple[str, ...]:
    dirt = pending.result() if pending is not None else None
    if not dirt:
        return ()
    return (
        f"the repository has {len(dirt)} uncommitted path{'s' if len(dirt) != 1 else ''} "
        f"that the attempt does not carry ({describe_dirt(dirt)}); its base is the committed "
        f"HEAD {base_commit[:12]}",
    )
