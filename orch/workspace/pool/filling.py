"""Filling the pool: bringing it to its size (new members made, old ones refreshed to
the main worktree's HEAD, leftovers of an interrupted fill swept), giving an ended
attempt's worktree back as a member, and draining it. Fills are serialised per repository
by a lock, so two never overfill. Nothing here hands a member to a dispatch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from orch import atomic, naming, private
from orch.config import Settings
from orch.errors import OrchError, WorkspaceError, describe_os_error
from orch.git import Git, Repository, checkout_env, worktree_admin_dir
from orch.models import CheckoutSpec
from orch.record import record
from orch.workspace.pool.checks import (
    _admin_head,
    _has_submodules_at,
    _missing_members,
    _settle,
    check_member,
)
from orch.workspace.pool.discarding import discard, set_aside
from orch.workspace.pool.layout import (
    DAMAGED,
    FILLING,
    LOCK_REASON,
    READY,
    REPOSITORY_FILE,
    SIZE_FILE,
    WORKTREE,
    _filling,
    _flavour_dirs,
    _marker,
    _names,
    _take,
    _unmark,
    flavour_dir,
    pool_root,
    ready_members,
    target_size,
)


@record
class FillResult:
    size: int
    created: int
    refreshed: int
    removed: tuple[str, ...]  # "<path>: <problem>" of members taken out
    ready: int


def fill(
    git: Git,
    repo: Repository,
    settings: Settings,
    spec: CheckoutSpec,
    size: int | None = None,
) -> FillResult:
    """Bring the pool to ``size`` (recorded for later refills) or the recorded size.

    Under the repository's fill lock: damaged members and leftovers of an interrupted
    fill are removed, members at an older commit are brought to the main worktree's
    HEAD, and new members are made until the pool holds the size; extra ones go.
    """
    root = pool_root(settings, repo)
    with _filling(repo, settings):
        try:
            private.make_dir(root)
            if size is not None:
                atomic.write_text(root / SIZE_FILE, f"{size}\n")
            if not (root / REPOSITORY_FILE).exists():
                atomic.write_text(root / REPOSITORY_FILE, f"{repo.root}\n")  # for orch doctor
        except OSError as exc:
            raise WorkspaceError(f"cannot write the pool {root}: {describe_os_error(exc)}") from exc
        # no members for a checkout with submodules (module docstring): old ones go
        target = target_size(settings, repo) if spec.poolable else 0
        directory = flavour_dir(settings, repo, spec)
        removed = _sweep(git, repo, settings, directory)
        for gone, _commit in _missing_members(git, repo, directory):
            removed.append(f"{gone}: missing")
            discard(git, repo, settings, gone)
        head = git.resolve_commit(repo, "HEAD")
        refreshed = 0
        for member in ready_members(directory):
            problem = check_member(git, repo, member)
            if problem is None and _admin_head(member) == head:
                continue
            if not _take(member):
                continue  # claimed meanwhile
            if problem is None:
                problem = _refresh(git, repo, member, head, spec)
                refreshed += problem is None
            if problem is not None:
                removed.append(f"{member}: {problem}")
                if problem.startswith("dirty") or "another repository" in problem:
                    # maybe someone's work: orch doctor --fix archives it, then removes it
                    set_aside(git, repo, member, directory)
                else:
                    discard(git, repo, settings, member)
        for extra in ready_members(directory)[target:]:
            # taken out first, so that no dispatch claims it while it goes
            if _take(extra):
                discard(git, repo, settings, extra)
        created = 0
        while len(ready_members(directory)) < target:
            _create(git, repo, directory, head, spec)
            created += 1
        return FillResult(
            size=target,
            created=created,
            refreshed=refreshed,
            removed=tuple(removed),
            ready=len(ready_members(directory)),
        )


def _sweep(git: Git, repo: Repository, settings: Settings, directory: Path) -> list[str]:
    """Remove what a fill that died left half made (damaged members stay for
    ``orch doctor --fix``, which archives anything unsaved in them first), and members
    an older orch left in its layout (a ready member was a directory named ``m-<id>``)."""
    removed: list[str] = []
    for name in _names(directory):
        path = directory / name
        if name.startswith(FILLING) and path.is_dir():  # an older orch's, in the making
            removed.append(f"{path}: left over")
            discard(git, repo, settings, path)
        elif name.startswith(FILLING):
            member = directory / f"{WORKTREE}{name.removeprefix(FILLING)}"
            removed.append(f"{member}: left over")
            discard(git, repo, settings, member)
        elif name.startswith(READY) and path.is_dir():
            problem = check_member(git, repo, path)
            removed.append(f"{path}: made by an older orch")
            if problem is not None and (
                problem.startswith("dirty") or "another repository" in problem
            ):
                set_aside(git, repo, path, directory)
            else:
                discard(git, repo, settings, path)
    return removed


def _create(git: Git, repo: Repository, directory: Path, head: str, spec: CheckoutSpec) -> None:
    building = directory / f"{WORKTREE}{naming.random_hex()}"
    private.make_dir(directory)
    private.create_new(_marker(building, FILLING)).close()
    try:
        git.add_worktree(
            repo,
            building,
            None,
            head,
            submodules=False,  # a member has none (module docstring)
            lfs_skip_smudge=spec.lfs_skip_smudge,
        )
        problem = _settle(git, building)
        if problem is not None:
            raise WorkspaceError(f"a new pool member is not clean: {problem}")
        _enter(git, repo, building)
    except BaseException:
        with contextlib.suppress(OrchError, OSError):
            git.remove_worktree(repo, building)
        _unmark(building)
        raise


def _enter(git: Git, repo: Repository, member: Path) -> None:
    """Lock a checked member and make it claimable (the ready marker is the moment)."""
    git.lock_worktree(repo, member, LOCK_REASON)
    os.rename(_marker(member, FILLING), _marker(member, READY))


def _refresh(git: Git, repo: Repository, member: Path, head: str, spec: CheckoutSpec) -> str | None:
    """Move a member the caller took out (_take) from an older commit to ``head`` (only
    differing files are rewritten) and put it back. Returns what is wrong with it (None:
    refreshed); a member that failed stays out of the pool."""
    if _has_submodules_at(git, repo, spec, head):
        return "HEAD has submodules: a pool member cannot hold them"
    try:
        env = checkout_env(spec.lfs_skip_smudge)
        git.checkout_detached(member, head, env)
        problem = _settle(git, member)
        if problem is not None:
            return problem
        os.rename(_marker(member, FILLING), _marker(member, READY))
    except (OrchError, OSError) as exc:
        return exc.message if isinstance(exc, OrchError) else describe_os_error(exc)
    return None


def give_back(
    git: Git, repo: Repository, settings: Settings, path: Path, spec: CheckoutSpec
) -> bool:
    """Make an ended attempt's worktree a pool member instead of deleting it (cleanup's
    opt-in). The caller has checked that it holds nothing unsaved. It is detached at the
    main worktree's HEAD (only differing files rewritten), ignored files are removed, and
    it enters the pool only if it is then clean. False when the pool is already full, or
    the worktree cannot be made like a fresh member (the caller then removes it, where it
    was)."""
    if not spec.poolable or worktree_admin_dir(path) is None:
        return False
    directory = flavour_dir(settings, repo, spec)
    try:
        with _filling(repo, settings):
            return _give_back(git, repo, settings, path, spec, directory)
    except OrchError:
        return False


def _give_back(
    git: Git, repo: Repository, settings: Settings, path: Path, spec: CheckoutSpec, directory: Path
) -> bool:
    # size 0 is "no warm pool": the next fill would delete what came back
    if len(ready_members(directory)) >= target_size(settings, repo):
        return False
    try:
        if git.config_value_in(path, "core.sparseCheckout") == "true":
            return False  # a sparse worktree is not a full member
        head = git.resolve_commit(repo, "HEAD")
        if _has_submodules_at(git, repo, spec, head):
            return False  # a member cannot hold submodules (module docstring)
        env = checkout_env(spec.lfs_skip_smudge)
        git.checkout_detached(path, head, env)
        git.remove_untracked_and_ignored(path)
    except (OrchError, OSError):
        return False
    # a member taken from this pool goes back where it is (its untracked cache stays
    # valid); any other worktree moves in under a member's name
    member = path
    if not (path.parent == directory and path.name.startswith(WORKTREE)):
        member = directory / f"{WORKTREE}{naming.random_hex()}"
    try:
        private.make_dir(directory)
        private.create_new(_marker(member, FILLING)).close()
    except OSError:
        return False
    try:
        if member != path:
            os.rename(path, member)
            git.repair_worktree(repo, member)
        if _settle(git, member) is None:
            _enter(git, repo, member)
            return True
    except (OrchError, OSError):
        pass
    # not a member after all: back where it was, for the caller to remove
    with contextlib.suppress(OSError):
        if member != path and member.exists():
            os.rename(member, path)
            git.repair_worktree(repo, path, check=False)
    _unmark(member)
    return False


def drain(git: Git, repo: Repository, settings: Settings) -> tuple[int, int]:
    """Remove every member of every flavour and forget the size; returns (removed, kept).

    Members set aside as damaged are kept: they may hold someone's work, which only
    ``orch doctor --fix`` archives before it removes them. Worktrees that attempts
    claimed are theirs, not the pool's."""
    root = pool_root(settings, repo)
    count = kept = 0
    with _filling(repo, settings):
        with contextlib.suppress(FileNotFoundError):
            (root / SIZE_FILE).unlink()
        for directory in _flavour_dirs(root):
            count += len(_sweep(git, repo, settings, directory))
            for name in _names(directory):
                if name.startswith(DAMAGED):
                    kept += 1
                elif name.startswith(READY):
                    member = directory / f"{WORKTREE}{name.removeprefix(READY)}"
                    if _take(member):
                        discard(git, repo, settings, member)
                        count += 1
    return count, kept
