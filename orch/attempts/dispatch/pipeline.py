"""``dispatch``: the checks a user can fail, the early work, then one of the use cases.

Every check a user can fail runs before anything is written (DESIGN.md §2.3). Phases
outside a repository or inside a linked worktree run in place; then the early work
starts (orch.attempts.dispatch.early) while the store opens; then the attempt is
recorded for another host, or in the task's reused worktree, or in a new worktree
(orch.attempts.dispatch.provision). No SQL, subprocess or JSON here: adapters do it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.another_host import for_another_host
from orch.attempts.dispatch.early import EarlyWork
from orch.attempts.dispatch.in_place import in_place, reuse
from orch.attempts.dispatch.provision import create_and_provision
from orch.attempts.dispatch.request import (
    Checkpoint,
    DispatchRequest,
    DispatchResult,
    describe_dirt,
    new_attempt,
    no_checkpoint,
)
from orch.config import Settings
from orch.errors import DirtyRepository, InvalidInput, NotAGitRepository
from orch.git import Git, PendingDirtyCheck, Repository
from orch.models import CheckoutSpec
from orch.prompt import require_prompt
from orch.record import record
from orch.repo_config import RepoConfig, load_repo_config, validate_sparse_paths
from orch.workspace import setup as workspace_setup
from orch.workspace import sources

if TYPE_CHECKING:
    from orch.store import Store


def dispatch(
    request: DispatchRequest,
    settings: Settings,
    git: Git,
    open_store: Callable[[], Store],
    actor: str,
    checkpoint: Checkpoint = no_checkpoint,
    early_dirt_check: PendingDirtyCheck | None = None,
) -> DispatchResult:
    """``early_dirt_check``: a ``git status`` started in ``request.repo_path`` before the
    command line was parsed (``orch.cli.startup``); used as the main worktree's dirt check
    when the repository turns out to be that worktree, else left for the caller to
    cancel."""
    task_key = naming.validate_task_key(request.task_key)
    sparse = validate_sparse_paths(request.sparse)
    phased = request.phased
    if phased and request.base_ref is not None and request.reuse_workspace:
        raise InvalidInput("--reuse-workspace continues from the workspace's HEAD: drop --base-ref")
    if sparse and request.reuse_workspace:
        raise InvalidInput("--reuse-workspace keeps the workspace's checkout: drop --sparse")
    try:
        repo = git.discover(request.repo_path)
    except NotAGitRepository:
        if not phased:
            raise
        require_prompt(request.prompt, request.allow_empty_prompt)
        return in_place(request, task_key, None, settings, git, open_store(), actor)
    if phased and repo.invoked_from_linked_worktree:
        require_prompt(request.prompt, request.allow_empty_prompt)
        return in_place(request, task_key, repo, settings, git, open_store(), actor)
    checked = check_repository(request, sparse, repo, git)
    require_prompt(request.prompt, request.allow_empty_prompt)
    repo_config, spec = checked.repo_config, checked.spec
    base_ref, base_commit = checked.base_ref, checked.base_commit
    explicit_base = checked.explicit_base
    local = request.host is None or request.host == settings.host_name
    with EarlyWork() as early:
        if local and not request.reuse_workspace:
            # a warm member's `git status`, or the attempt's checkout, runs while the
            # store opens (its imports are the slowest part of a dispatch)
            early.start_sources(git, repo, settings, task_key, base_commit, spec, checkpoint)
        # Not strict and the base is the main worktree's HEAD: its uncommitted changes are
        # not carried into the attempt; find out (meanwhile too) so that we can say so.
        if local and not (request.strict or explicit_base or request.reuse_workspace):
            early.check_dirt(git, repo, early_dirt_check)
        early.read_facts(git, repo)  # read while the store opens, like the status runs above
        store = open_store()
        facts = early.facts()
        url = facts.url
        if not local:
            if phased:
                raise InvalidInput("--host cannot be combined with --phase or --reuse-workspace")
            return for_another_host(
                request, task_key, repo, base_ref, base_commit, url, store, actor
            )
        if request.reuse_workspace:
            reused = reuse(request, task_key, repo, repo_config, settings, git, store, actor)
            if reused is not None:
                return reused
        source = early.source
        new = new_attempt(
            settings,
            repo,
            task_key,
            base_ref,
            base_commit,
            request.worker,
            request.prompt,
            attempt_id=source.attempt_id if isinstance(source, sources.Ahead) else None,
        )
        new = dataclasses.replace(new, phase=request.phase, repository_url=url, checkout=spec)
        if source is not None and source.path is not None:
            # the probed member (or the checkout made ahead) is recorded where it is
            new = dataclasses.replace(new, worktree_path=str(source.path))
        result = create_and_provision(
            new,
            repo,
            settings,
            git,
            store,
            actor,
            checkpoint,
            dirt_check=early.dirt_check,
            repo_config=repo_config,
            source=source,
            hooks=facts.hooks,
        )
    # later phases of the task find this workspace (--reuse-workspace): finish_provisioning
    # recorded it with the attempt
    return result


@record
class Checked:
    """What the checks of a dispatch from a repository resolved, once."""

    repo_config: RepoConfig
    base_ref: str
    base_commit: str
    explicit_base: bool
    spec: CheckoutSpec


def check_repository(
    request: DispatchRequest,
    sparse: tuple[str, ...],
    repo: Repository,
    git: Git,
) -> Checked:
    """The checks of a dispatch from ``repo`` a user can fail, before anything is written:
    its config and shared paths, the base resolved once, the dirt of ``--strict``."""
    repo_config = load_repo_config(repo.root)
    workspace_setup.refuse_shared_outside(repo.root, None, repo_config)  # before any intent
    explicit_base = request.base_ref is not None
    base_ref = request.base_ref if request.base_ref is not None else "HEAD"
    base_commit, has_submodules = git.resolve_base(repo, base_ref)
    if request.strict and not explicit_base:
        dirt = git.dirty_paths(repo.root)
        if dirt and workspace_setup.exclude_shared_dirt(repo, repo_config, dirt):
            dirt = git.dirty_paths(repo.root)  # the shared state is no dirt: look again
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
    return Checked(repo_config, base_ref, base_commit, explicit_base, spec)
