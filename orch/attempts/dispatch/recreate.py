"""Make a queued attempt's worktree again when it was deleted by hand (``orch doctor --fix``).

The attempt keeps its id, branch, worktree path, port bundle and payload; only the
directory is made again, the way dispatch made it: from the branch when it still exists
(whatever was committed on it is kept), else from ``base_commit`` (the branch is made
again there), then the ports file and the repository's workspace set-up. Never for an
attempt that is running: a worker may be in there. No SQL or subprocess here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.dispatch.provision import PORTS_EXCLUDE, set_up_workspace
from orch.config import Settings
from orch.errors import Conflict
from orch.git import Git, Repository, add_excludes
from orch.models import Attempt, State
from orch.repo_config import load_repo_config
from orch.system import ports

if TYPE_CHECKING:
    from orch.store import Store


def recreate_worktree(
    attempt: Attempt, repo: Repository, settings: Settings, git: Git, store: Store, actor: str
) -> str:
    """Make ``attempt``'s missing worktree again; say from what."""
    if attempt.state != State.QUEUED or not attempt.worktree_path:
        raise Conflict(f"attempt {attempt.id} is {attempt.state}: its worktree is not remade")
    if not attempt.branch_name or not attempt.base_commit:
        raise Conflict(f"attempt {attempt.id} records no branch or base commit")
    path = Path(attempt.worktree_path)
    git.prune_worktrees(repo, check=False)  # git's record of the deleted directory
    tip = git.branch_commit(repo, attempt.branch_name)
    if tip is None:
        git.create_branch(
            repo,
            attempt.branch_name,
            attempt.base_commit,
            f"orch doctor: the branch of attempt {attempt.id} again",
        )
        tip, source = attempt.base_commit, f"base commit {attempt.base_commit[:12]}"
    else:
        source = f"branch {attempt.branch_name} at {tip[:12]}"
    git.add_worktree(
        repo,
        path,
        attempt.branch_name,
        tip,
        sparse=attempt.sparse_paths or (),
        submodules=bool(attempt.submodules),
        lfs_skip_smudge=bool(attempt.lfs_skip_smudge),
    )
    bundle = store.port_bundle(attempt.id)
    if bundle is not None:
        add_excludes(repo, [PORTS_EXCLUDE])
        ports.write_ports_file(path, bundle)
    set_up_workspace(
        attempt, repo, path, load_repo_config(repo.root), bundle, settings, git, store, actor
    )
    store.record_event(attempt.id, "worktree_recreated", actor, path=str(path), source=source)
    return source
