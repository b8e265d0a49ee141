"""Claiming a member for a dispatch: the probe started before the store opens, the claim
(the removal of the ready marker: of two claimers exactly one succeeds) and its checks,
and checking the attempt's branch out in the claimed member. Nothing here fills the pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orch.config import Settings
from orch.errors import GitError, WorkspaceError, describe_os_error
from orch.git import Git, PendingDirtyCheck, Repository, checkout_env
from orch.models import CheckoutSpec
from orch.record import record
from orch.workspace.pool.checks import _admin_head, check_member
from orch.workspace.pool.discarding import set_aside
from orch.workspace.pool.layout import READY, _marker, flavour_dir, ready_members


@record
class Claimed:
    """A pool member that is now the attempt's worktree, detached at ``commit``."""

    path: Path
    commit: str
    member: str


@record
class Probe:
    """A ``git status`` of one ready member, started before the dispatch claims it."""

    member: Path
    check: PendingDirtyCheck

    def close(self) -> None:
        self.check.close()  # reap the process


def probe(git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec) -> Probe | None:
    """Start checking one ready member (at random, so that concurrent dispatches mostly
    look at different ones); None when the pool has none."""
    probes = probe_many(git, repo, settings, spec, 1)
    return probes[0] if probes else None


def probe_many(
    git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec, count: int
) -> list[Probe]:
    """Start checking up to ``count`` distinct ready members, picked at random (a
    best-of-N dispatch gives each attempt its own); fewer when the pool has fewer."""
    if not spec.poolable or count < 1:
        return []
    members = _claimable(flavour_dir(settings, repo, spec))
    probes: list[Probe] = []
    for member in sorted(members, key=lambda _: os.urandom(4))[:count]:
        try:
            probes.append(Probe(member, git.start_dirty_check(member, yield_cpu=True)))
        except OSError:
            continue  # gone: the claim finds out and takes it out of the pool
    return probes


def _claimable(directory: Path) -> list[Path]:
    """Ready members for a dispatch; an unreadable pool is an empty one (the dispatch
    makes a fresh worktree; `orch pool fill` and `orch doctor` report the pool)."""
    try:
        return ready_members(directory)
    except WorkspaceError:
        return []


def claim(
    git: Git,
    repo: Repository,
    settings: Settings,
    spec: CheckoutSpec,
    member: Path,
    probe: Probe | None = None,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> Claimed | None:
    """Take the ready member whose worktree is ``member`` if it is clean; None when
    another dispatch (or a fill) took it first, or when it failed a check (a worktree of
    this repository where git's bookkeeping says, locked by the pool, detached, clean):
    it is then set aside as damaged.

    The caller records ``member`` as its worktree before the claim (an ``orch doctor``
    running meanwhile must see whose it is); once its ready marker is gone it is the
    caller's to remove. ``probe``: a ``git status`` already running in ``member``.
    """
    if not spec.poolable:
        return None
    directory = flavour_dir(settings, repo, spec)
    try:
        _marker(member, READY).unlink()
    except FileNotFoundError:
        return None  # another dispatch (or a fill) took it first
    except OSError as exc:
        raise WorkspaceError(
            f"cannot claim pool member {member}: {describe_os_error(exc)}"
        ) from exc
    checkpoint("pool-member-claimed")
    probed = probe.check if probe is not None and member == probe.member else None
    problem = check_member(git, repo, member, probed)
    if problem is not None and probed is not None:
        # The probe's `git status` began before the claim, while the member could still be
        # taken by a fill refreshing it to a newer commit (fill takes it, moves its files,
        # marks it ready again): what it saw mid-move is no verdict on the member now.
        # Now that the member is ours, nobody else touches it: look again.
        problem = check_member(git, repo, member)
    commit = _admin_head(member)
    if problem is None and commit:
        try:
            git.unlock_worktree(repo, member)
        except GitError as exc:
            problem = exc.message
    if problem is None and commit:
        return Claimed(path=member, commit=commit, member=member.name)
    set_aside(git, repo, member, directory)
    return None


def switch_to_branch(
    git: Git,
    repo: Repository,
    path: Path,
    branch: str,
    old: str,
    new: str,
    spec: CheckoutSpec,
    *,
    hooks: Path | None = None,
) -> None:
    """Check out ``branch`` (already at ``new``) in a clean member detached at ``old``.

    Only the files that differ between the two commits are rewritten (a two-way
    ``read-tree -m -u``); at the same commit nothing but HEAD changes. ``hooks``: where
    the repository's hooks are, if known (None: git looks).
    """
    env = checkout_env(spec.lfs_skip_smudge)
    if old != new:
        git.switch_files(path, old, new, env)
    git.attach_head(path, branch, old)
    git.post_checkout(path, old, new, env, hooks)
