"""The git adapter: the only package that runs git.

Every write goes through the git CLI. Read-only commands in a worktree an agent may be
using run with ``--no-optional-locks`` so they never take ``index.lock`` from under it.
Each git command orch runs has a name here; callers never build a command line. The
modules, by what they are about:

- ``runner``: running git, retries while git's locks are busy, background commands;
- ``refs``: discovery, resolving refs, the attempt's branch, the repository's facts;
- ``checkout``: files and HEAD of one worktree, hooks, sparse checkout, submodules;
- ``worktrees``: registering, removing and git's bookkeeping of worktrees;
- ``status``: what a worktree holds that its HEAD does not;
- ``saving``: patches, untracked files and bundles of work about to be removed;
- ``restoring``: bringing such work back (``orch restore``);
- ``diff``: what changed between a base and a tip or a worktree's files (``orch diff``);
- ``worktree_stat``, ``diffstat``: a live worktree's ``--stat`` and changed files without
  adding its untracked files to an index;
- ``summary``: counting what an attempt changed (``orch list``, ``orch compare TASK``);
- ``landing``: merging an attempt into a target without a worktree (``orch land``);
- ``remotes``: the remotes, pushing an attempt's branch (``orch work``, ``orch pr``) and
  fetching it on another host (``orch land``).

``Git`` is all of them in one object, as the rest of orch passes it around.
"""

from __future__ import annotations

from orch.git.checkout import Checkout, add_excludes, checkout_env
from orch.git.diff import (
    CommitInfo,
    DiffFormat,
    DiffRange,
    Diffs,
    FileChange,
    PrivateIndex,
    WorktreeTree,
    index_file,
)
from orch.git.landing import CommitMeta, Conflicted, LandedPath, Landing, Merged, Replayed
from orch.git.refs import (
    PendingRepositoryFacts,
    PendingRepositoryUrl,
    Refs,
    Repository,
    RepositoryFacts,
    branches_with_prefix,
)
from orch.git.remotes import Remotes
from orch.git.restoring import apply_patch, bundle_heads, fetch_bundle_objects, patch_applied
from orch.git.runner import Pending, Runner
from orch.git.saving import save_bundle, save_patch, untracked_files
from orch.git.status import (
    DirtyPath,
    PendingDirtyCheck,
    Status,
    UnsavedWork,
    fingerprint,
    ignored_entries,
    parse_porcelain,
    unsaved_work,
)
from orch.git.summary import Summaries
from orch.git.worktree_stat import WorktreeChanges, WorktreeStat, WorktreeStats
from orch.git.worktrees import (
    WorktreeRecord,
    Worktrees,
    admin_of_repository,
    force_remove_worktree,
    index_stat,
    prune_candidates,
    read_worktree_record,
    worktree_admin_dir,
    worktree_head,
    worktree_registered,
)


class Git(Worktrees, Status, WorktreeStats, Summaries, Landing, Remotes):
    """Every git command orch runs (see the modules above)."""


__all__ = [
    "Checkout",
    "CommitInfo",
    "CommitMeta",
    "Conflicted",
    "DiffFormat",
    "DiffRange",
    "Diffs",
    "DirtyPath",
    "FileChange",
    "Git",
    "LandedPath",
    "Landing",
    "Merged",
    "Pending",
    "PendingDirtyCheck",
    "PendingRepositoryFacts",
    "PendingRepositoryUrl",
    "PrivateIndex",
    "Refs",
    "Remotes",
    "Replayed",
    "Repository",
    "RepositoryFacts",
    "Runner",
    "Status",
    "Summaries",
    "UnsavedWork",
    "WorktreeChanges",
    "WorktreeRecord",
    "WorktreeStat",
    "WorktreeStats",
    "WorktreeTree",
    "Worktrees",
    "add_excludes",
    "admin_of_repository",
    "apply_patch",
    "branches_with_prefix",
    "bundle_heads",
    "checkout_env",
    "fetch_bundle_objects",
    "fingerprint",
    "force_remove_worktree",
    "ignored_entries",
    "index_file",
    "index_stat",
    "parse_porcelain",
    "patch_applied",
    "prune_candidates",
    "read_worktree_record",
    "save_bundle",
    "save_patch",
    "unsaved_work",
    "untracked_files",
    "worktree_admin_dir",
    "worktree_head",
    "worktree_registered",
]
