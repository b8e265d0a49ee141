"""``orch restore``: bring an archived attempt's saved work back into a new worktree.

Does what the archive's manifest tells a person to do, from any directory: the commits
come back from ``commits.bundle`` (onto the attempt's branch when that branch is gone),
a worktree is added at the commit the work was saved at, ``uncommitted.patch`` is applied
and ``untracked.tar.gz`` unpacked; then each step is checked. Everything is checked that
can be before anything is written, and nothing is ever overwritten: a path that exists or
a branch that has moved since is refused. A failure part way removes what this restore
made. Never changes the attempt's state or workspace_status: the restored worktree is the
user's, outside orch's bookkeeping (an event records it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.attempts.queries import find_attempt
from orch.config import Settings
from orch.errors import InvalidInput, NotFound, WorkspaceError
from orch.git import (
    Git,
    Repository,
    apply_patch,
    bundle_heads,
    fetch_bundle_objects,
    force_remove_worktree,
    patch_applied,
)
from orch.models import Attempt
from orch.record import record
from orch.system import archive

if TYPE_CHECKING:
    from orch.store import Store

PATCH, UNTRACKED, BUNDLE = "uncommitted.patch", "untracked.tar.gz", "commits.bundle"


@record
class Restored:
    attempt_id: str
    archive: Path
    worktree: Path
    branch: str | None  # None: detached at ``head`` (the branch has moved on since)
    head: str
    branch_created: bool  # the branch was gone and was made again
    patch: bool  # the uncommitted changes to tracked files were applied
    untracked: tuple[str, ...]  # the untracked files unpacked


@record
class _Plan:
    repo: Repository
    archive: Path
    files: dict[str, Any]
    head: str
    branch: str | None
    bundle_refs: tuple[str, ...]
    branch_tip: str | None  # where the branch points now, or must be made to point


def restore(
    store: Store, ref: str, path: Path | None, settings: Settings, git: Git, actor: str
) -> Restored:
    attempt = find_attempt(store, ref)
    where = _archive_of(attempt, settings)
    manifest = archive.read_manifest(where)
    if manifest is None:
        raise WorkspaceError(
            f"the archive {where} has no readable {archive.MANIFEST}: it is incomplete"
        )
    target = _target(attempt, manifest, path)
    plan = _plan(attempt, where, manifest, git)
    made_branch = False
    made_worktree = False
    tip = plan.branch_tip
    try:
        if plan.bundle_refs:
            fetch_bundle_objects(git, plan.repo, where / BUNDLE, plan.bundle_refs)
        if not git.has_commit(plan.repo, plan.head):
            raise WorkspaceError(
                f"commit {plan.head} is neither in {plan.repo.root} nor in the archive {where}"
            )
        if plan.branch and git.branch_commit(plan.repo, plan.branch) is None:
            tip = tip or plan.head
            git.create_branch(plan.repo, plan.branch, tip, f"orch: restore attempt {attempt.id}")
            made_branch = True
        on_branch = plan.branch if plan.branch and tip == plan.head else None
        made_worktree = True
        git.add_worktree(
            plan.repo,
            target,
            on_branch,
            plan.head,
            sparse=attempt.sparse_paths or (),
            submodules=bool(attempt.submodules),
            lfs_skip_smudge=bool(attempt.lfs_skip_smudge),
        )
        patched = PATCH in plan.files
        if patched:
            apply_patch(git, target, where / PATCH)
        untracked = (
            archive.restore_files(where / UNTRACKED, target) if UNTRACKED in plan.files else []
        )
        _check(git, target, where, plan.head, on_branch, patched, untracked)
    except BaseException:
        if made_worktree:
            force_remove_worktree(git, plan.repo, target)
        if made_branch and plan.branch:
            git.delete_branch_if_at(plan.repo, plan.branch, tip or plan.head)
        raise
    store.record_event(
        attempt.id,
        "restored",
        actor,
        worktree=str(target),
        branch=on_branch,
        head=plan.head,
        archive=str(where),
    )
    return Restored(
        attempt_id=attempt.id,
        archive=where,
        worktree=target,
        branch=on_branch,
        head=plan.head,
        branch_created=made_branch,
        patch=patched,
        untracked=tuple(untracked),
    )


def _archive_of(attempt: Attempt, settings: Settings) -> Path:
    if attempt.archive_path:
        return Path(attempt.archive_path)
    found = archive.latest_archive(settings.home / "archive", attempt.id)
    if found is None:
        raise NotFound(
            f"attempt {attempt.id} has no saved work in the archive "
            f"(workspace_status {attempt.workspace_status})"
        )
    return found


def _target(attempt: Attempt, manifest: dict[str, Any], path: Path | None) -> Path:
    original = manifest.get("worktree_path") or attempt.worktree_path
    if path is None and not original:
        raise InvalidInput(f"attempt {attempt.id} had no worktree: name the PATH to restore to")
    target = Path(os.path.abspath(path if path is not None else str(original)))
    if os.path.lexists(target):
        raise WorkspaceError(f"{target} exists: orch restore never overwrites; name a new PATH")
    return target


def _plan(attempt: Attempt, where: Path, manifest: dict[str, Any], git: Git) -> _Plan:
    head = manifest.get("head")
    if not isinstance(head, str) or not head:
        raise WorkspaceError(f"the archive {where} names no commit to restore at")
    files = manifest.get("files")
    files = files if isinstance(files, dict) else {}
    branch = manifest.get("branch_name")
    branch = branch if isinstance(branch, str) and branch else None
    repo = git.discover(Path(str(manifest.get("repository") or attempt.repository)))
    heads = bundle_heads(git, repo, where / BUNDLE) if BUNDLE in files else {}
    archived_tip = heads.get(f"refs/heads/{branch}") if branch else None
    current = git.branch_commit(repo, branch) if branch else None
    if current is not None and archived_tip is not None and current != archived_tip:
        raise WorkspaceError(
            f"branch {branch} is at {current[:12]} but the archive saved it at "
            f"{archived_tip[:12]}: orch restore never moves a branch; delete or rename it first"
        )
    return _Plan(
        repo=repo,
        archive=where,
        files=files,
        head=head,
        branch=branch,
        bundle_refs=tuple(heads),
        branch_tip=current or archived_tip,
    )


def _check(
    git: Git,
    target: Path,
    where: Path,
    head: str,
    branch: str | None,
    patched: bool,
    untracked: list[str],
) -> None:
    """Each step did what it should: HEAD, branch, the patch's changes, every file."""
    problems = []
    if git.head_commit(target) != head:
        problems.append(f"HEAD is not {head[:12]}")
    if git.current_branch(target) != branch:
        problems.append(f"the branch checked out is not {branch or '(detached)'}")
    if patched and not patch_applied(git, target, where / PATCH):
        problems.append(f"the changes of {PATCH} are not all there")
    missing = [name for name in untracked if not os.path.lexists(target / name)]
    if missing:
        problems.append(f"untracked files missing: {', '.join(missing[:3])}")
    if problems:
        raise WorkspaceError(f"the restore into {target} did not check out: {'; '.join(problems)}")
