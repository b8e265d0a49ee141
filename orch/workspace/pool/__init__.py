"""The warm worktree pool: clean, detached worktrees made ahead of time for dispatch.

On a large repository creating a worktree costs seconds; a pool member is one made
earlier (``orch pool fill``), so that dispatch only has to check it and point HEAD at the
attempt's branch. Layout, per repository and checkout flavour::

    <worktree_root>/<repo dir>/.orch-pool/<flavour>/w-<id>         a member's worktree
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/m-<id>         marker: w-<id> is ready
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.filling-<id>  marker: being made,
                                                                   refreshed or returned
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.damaged-<id>  taken out, to be removed
    <worktree_root>/<repo dir>/.orch-pool/size                     the size `fill` keeps
    <worktree_root>/<repo dir>/.orch-pool/repository               whose pool it is

A member is handed over where it was made: the attempt records the member's path as its
worktree_path. It never moves, so the untracked cache its index keeps (git keys it on the
worktree's path) stays valid: the hand-over check and every later `git status` in the
attempt read only directories that changed. Claiming is the removal of the ready marker:
of two processes removing it, exactly one succeeds, on every file system and with either
store. Whoever holds a member (a fill refreshing or removing it) first renames its marker
the same way. A ``w-`` directory with no marker belongs to the attempt that claimed it.
Members are locked (``git worktree lock``) while in the pool. What is handed out is
checked first (a worktree of this repository, detached, locked by the pool, clean);
anything else is taken out and replaced, never handed out. Fills are serialised per
repository by a lock, so two never overfill.

Members never have submodules, and a repository whose checkout includes them (HEAD has a
``.gitmodules`` and the ``submodules`` setting is on) has no pool: refreshing a member or
handing it over at another commit would have to bring every submodule along too.

The modules: ``layout`` (paths, markers, the fill lock), ``checks`` (what makes a member
unfit), ``claiming`` (probe, claim, hand-over), ``filling`` (fill, refresh, give back,
drain), ``discarding`` (set aside, discard) and ``listing`` (inspect).
"""

from __future__ import annotations

from orch.workspace.pool.checks import (
    RACY_INDEX_BYTES,
    check_member,
    dirt_problem,
)
from orch.workspace.pool.claiming import (
    Claimed,
    Probe,
    claim,
    probe,
    probe_many,
    switch_to_branch,
)
from orch.workspace.pool.discarding import MemberStuck, discard, set_aside
from orch.workspace.pool.filling import FillResult, drain, fill, give_back
from orch.workspace.pool.layout import (
    DAMAGED,
    FILLING,
    LOCK_REASON,
    POOL_DIR,
    READY,
    REPOSITORY_FILE,
    SIZE_FILE,
    WORKTREE,
    flavour_dir,
    in_a_pool,
    is_pool_path,
    pool_root,
    pooled_repositories,
    ready_members,
    take,
    target_size,
    unmark,
)
from orch.workspace.pool.listing import MemberInfo, inspect

__all__ = [
    "DAMAGED",
    "FILLING",
    "LOCK_REASON",
    "POOL_DIR",
    "RACY_INDEX_BYTES",
    "READY",
    "REPOSITORY_FILE",
    "SIZE_FILE",
    "WORKTREE",
    "Claimed",
    "FillResult",
    "MemberInfo",
    "MemberStuck",
    "Probe",
    "check_member",
    "claim",
    "dirt_problem",
    "discard",
    "drain",
    "fill",
    "flavour_dir",
    "give_back",
    "in_a_pool",
    "inspect",
    "is_pool_path",
    "pool_root",
    "pooled_repositories",
    "probe",
    "probe_many",
    "ready_members",
    "set_aside",
    "switch_to_branch",
    "take",
    "target_size",
    "unmark",
]
