"""Reviewing attempts: what one attempt changed against its recorded ``base_commit``
(``orch diff``), and how the results of two attempts differ (``orch compare A B``).

The base is always the attempt's ``base_commit``, never the branch's merge-base with
another branch. The work is read from where it still is: the worktree (its commits, its
uncommitted changes and its untracked files), else the branch, else the commit the
archive recorded (while the object store still holds it). A live worktree is read
without taking its index lock (see orch.git.diff). Nothing here changes a ref, a
worktree or the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from orch.attempts.queries import find_attempt
from orch.errors import InvalidInput, NotFound
from orch.git import CommitInfo, DiffRange, FileChange, Git, Repository, index_file
from orch.models import Attempt, WorkspaceStatus
from orch.system import archive

if TYPE_CHECKING:
    from orch.store import Store

Source = Literal["worktree", "branch", "archive"]
# workspaces that were never made (or were rolled back): no branch ever held any work
_NEVER_MADE = frozenset(
    {WorkspaceStatus.PROVISIONING, WorkspaceStatus.PENDING, WorkspaceStatus.FAILED}
)


@dataclasses.dataclass(frozen=True)
class AttemptDiff:
    """Where one attempt's work is read from, ready to diff."""

    attempt: Attempt
    repository: Repository
    source: Source
    tip: str  # the commit the work builds on (the worktree's HEAD, the branch's tip)
    range: DiffRange
    notes: tuple[str, ...] = ()  # what the reader should know (an archive, a gone branch)


@dataclasses.dataclass(frozen=True)
class Changes:
    """The changed files with their line counts, and the commits since the base."""

    files: tuple[FileChange, ...]
    commits: tuple[CommitInfo, ...] = ()

    def totals(self) -> dict[str, int]:
        """Files, lines added and deleted, binary files and commits."""
        return {
            "files": len(self.files),
            "additions": sum(f.additions or 0 for f in self.files),
            "deletions": sum(f.deletions or 0 for f in self.files),
            "binary": sum(1 for f in self.files if f.binary),
            "commits": len(self.commits),
        }


@contextlib.contextmanager
def attempt_diff(store: Store, git: Git, ref: str, *, committed: bool) -> Iterator[AttemptDiff]:
    """Find the attempt ``ref`` names and where its work is; ``committed``: its commits
    only, without the worktree's uncommitted changes and untracked files."""
    attempt = find_attempt(store, ref)
    repo, base = _repository_and_base(git, attempt)
    worktree = live_worktree(attempt)
    if worktree is not None:
        head = git.head_commit(worktree)
        if committed:
            yield AttemptDiff(
                attempt, repo, "worktree", head, DiffRange(base, head, git_dir=repo.common_dir)
            )
            return
        with git.private_index(worktree, untracked=True) as index:
            notes: tuple[str, ...] = ()
            if index.nested_repositories:
                shown = ", ".join(index.nested_repositories[:5])
                notes = (f"untracked repositories inside the worktree are not shown: {shown}",)
            yield AttemptDiff(
                attempt,
                repo,
                "worktree",
                head,
                DiffRange(base, None, cwd=worktree, env=index.env),
                notes,
            )
        return
    source, tip, notes = _saved_tip(git, repo, attempt)
    yield AttemptDiff(
        attempt, repo, source, tip, DiffRange(base, tip, git_dir=repo.common_dir), notes
    )


def changes(git: Git, diff: AttemptDiff) -> Changes:
    """The files ``diff`` changed with their line counts, and the commits since the base."""
    base = diff.range.base
    commits = git.commits_between(diff.repository.common_dir, base, diff.tip)
    return Changes(files=tuple(git.changed_files(diff.range)), commits=tuple(commits))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two attempts' results, ready to diff: ``range`` goes from the first to the second."""

    first: AttemptDiff
    second: AttemptDiff
    range: DiffRange


def comparison(
    store: Store, git: Git, first_ref: str, second_ref: str, *, worktree: bool
) -> Comparison:
    """The difference between two attempts' results: their tips, or with ``worktree``
    each side's worktree as it is now (uncommitted and untracked files too), written as
    a tree through a private index. Attempts of different repositories are refused."""
    first = find_attempt(store, first_ref)
    second = find_attempt(store, second_ref)
    if not _same_repository(first, second):
        raise InvalidInput(
            f"attempts {first.id} and {second.id} belong to different repositories "
            f"({first.repository} and {second.repository}): nothing to compare"
        )
    sides = []
    for attempt in (first, second):
        with attempt_diff(store, git, attempt.id, committed=True) as side:
            tree = side.tip
            path = live_worktree(attempt)
            notes = side.notes
            if worktree and path is None:
                notes += (f"attempt {attempt.id} has no worktree here: its {side.source} is used",)
            elif worktree and path is not None:
                written = git.worktree_tree(path)
                tree = written.tree
                if written.nested_repositories:
                    shown = ", ".join(written.nested_repositories[:5])
                    notes += (f"untracked repositories in {path} are left out: {shown}",)
            sides.append((dataclasses.replace(side, notes=notes), tree))
    (a, tree_a), (b, tree_b) = sides
    return Comparison(a, b, DiffRange(tree_a, tree_b, git_dir=a.repository.common_dir))


def live_worktree(attempt: Attempt) -> Path | None:
    """The attempt's worktree when it is on this machine and was checked out."""
    if not attempt.worktree_path:
        return None
    path = Path(attempt.worktree_path)
    if not path.is_dir() or index_file(path) is None:
        return None
    return path


def _repository_and_base(git: Git, attempt: Attempt) -> tuple[Repository, str]:
    if not attempt.base_commit:
        raise NotFound(
            f"attempt {attempt.id} has no base_commit (workspace_status "
            f"{attempt.workspace_status}): nothing to diff"
        )
    repo = git.discover(Path(attempt.repository))
    if not git.has_commit(repo, attempt.base_commit):
        raise NotFound(
            f"the base_commit {attempt.base_commit} of attempt {attempt.id} is not in {repo.root}"
        )
    return repo, attempt.base_commit


def _saved_tip(git: Git, repo: Repository, attempt: Attempt) -> tuple[Source, str, tuple[str, ...]]:
    """Where the work of an attempt without a worktree is: its branch, else the commit its
    archive recorded while the object store still has it; else one line saying so."""
    saved = attempt.archive_path
    branch = attempt.branch_name
    tip = git.branch_commit(repo, branch) if branch else None
    if tip is not None:
        notes: tuple[str, ...] = ()
        if saved:
            notes = (
                f"the worktree of attempt {attempt.id} is gone; what it held that the "
                f"branch does not was saved to {saved} ('orch restore {attempt.id}' "
                "brings it back)",
            )
        return "branch", tip, notes
    manifest = archive.read_manifest(Path(saved)) if saved else None
    head = manifest.get("head") if manifest else None
    if saved and isinstance(head, str) and git.has_commit(repo, head):
        return (
            "archive",
            head,
            (
                f"the branch and worktree of attempt {attempt.id} are gone; its work was "
                f"saved to {saved}: showing its commits, not the uncommitted changes saved "
                f"there ('orch restore {attempt.id}' brings everything back)",
            ),
        )
    if attempt.workspace_status in _NEVER_MADE:
        raise NotFound(
            f"attempt {attempt.id} has no workspace (workspace_status "
            f"{attempt.workspace_status}): nothing to diff"
        )
    where = f"branch {branch}" if branch else "branch"
    hint = (
        f"; its work was saved to {saved}: 'orch restore {attempt.id}' brings it back"
        if saved
        else ""
    )
    raise NotFound(f"attempt {attempt.id} has no worktree and its {where} is gone{hint}")


def _same_repository(first: Attempt, second: Attempt) -> bool:
    """Two clones of one repository (workers on other hosts) share its URL."""
    if first.repository_url and second.repository_url:
        return first.repository_url == second.repository_url
    return first.repository == second.repository
