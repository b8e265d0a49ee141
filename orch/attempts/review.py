"""Reviewing attempts: what one attempt changed against its recorded ``base_commit``
(``orch diff``, and one file's patch for the dashboard), and how the results of two
attempts differ (``orch compare A B``).

The base is always the attempt's ``base_commit``, never the branch's merge-base with
another branch. The work is read from where it still is: the worktree (its commits, its
uncommitted changes and its untracked files), else the branch, else the commit the
archive recorded (while the object store still holds it). A live worktree is read
without taking its index lock (see orch.git.diff). Nothing here changes a ref, a
worktree or the store.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orch.attempts.queries import find_attempt
from orch.errors import InvalidInput, NotFound
from orch.git import CommitInfo, DiffRange, FileChange, Git, Repository, index_file
from orch.models import Attempt, WorkspaceStatus
from orch.record import record
from orch.system import archive

if TYPE_CHECKING:
    from orch.store import Store

Source = Literal["worktree", "branch", "archive"]
# the most of one file's patch given at once: a 2,000-line change is about 100 KB; a
# 20 MB file's patch is cut here, not held in memory whole
PATCH_LIMIT = 1 << 20
# workspaces that were never made (or were rolled back): no branch ever held any work
_NEVER_MADE = frozenset(
    {WorkspaceStatus.PROVISIONING, WorkspaceStatus.PENDING, WorkspaceStatus.FAILED}
)


@record
class AttemptDiff:
    """Where one attempt's work is read from, ready to diff."""

    attempt: Attempt
    repository: Repository
    source: Source
    tip: str  # the commit the work builds on (the worktree's HEAD, the branch's tip)
    range: DiffRange
    notes: tuple[str, ...] = ()  # what the reader should know (an archive, a gone branch)
    # a live worktree whose untracked files are still to be added to ``range``
    untracked_in: Path | None = None


@record
class Changes:
    """The changed files with their line counts, and the commits since the base."""

    files: tuple[FileChange, ...]
    commits: tuple[CommitInfo, ...] = ()
    notes: tuple[str, ...] = ()  # what reading a live worktree left out

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
    with with_untracked(git, locate(store, git, ref, committed=committed)) as found:
        yield found


def locate(store: Store, git: Git, ref: str, *, committed: bool) -> AttemptDiff:
    """Where the work of the attempt ``ref`` names is. A live worktree's untracked files
    are not in the range yet (``untracked_in`` names the worktree): ``with_untracked``
    adds them, or ``worktree_stat`` counts them without a private index."""
    attempt = find_attempt(store, ref)
    repo, base = _repository_and_base(git, attempt)
    worktree = live_worktree(attempt)
    if worktree is not None:
        head = git.head_commit_if_any(worktree)
        if head is None:
            raise NotFound(
                f"the branch {attempt.branch_name} of attempt {attempt.id} is gone (deleted by "
                f"hand?): its worktree {worktree} has no commit checked out, nothing to diff"
            )
        if committed:
            return AttemptDiff(
                attempt, repo, "worktree", head, DiffRange(base, head, git_dir=repo.common_dir)
            )
        return AttemptDiff(
            attempt, repo, "worktree", head, DiffRange(base, None, cwd=worktree), (), worktree
        )
    source, tip, notes = _saved_tip(git, repo, attempt)
    return AttemptDiff(
        attempt, repo, source, tip, DiffRange(base, tip, git_dir=repo.common_dir), notes
    )


@contextlib.contextmanager
def with_untracked(git: Git, diff: AttemptDiff) -> Iterator[AttemptDiff]:
    """``diff`` with its worktree's untracked files in the range: read through a private
    copy of the worktree's index (removed afterwards), never its own ``index.lock``."""
    if diff.untracked_in is None:
        yield diff
        return
    with git.private_index(diff.untracked_in, untracked=True) as index:
        yield dataclasses.replace(
            diff,
            range=dataclasses.replace(diff.range, env=index.env),
            notes=diff.notes + _nested_note(index.nested_repositories),
            untracked_in=None,
        )


@record
class QuickStat:
    output: bytes  # what ``git diff --stat`` prints for the diff with untracked files
    notes: tuple[str, ...]


def worktree_stat(
    git: Git, diff: AttemptDiff, *, color: bool, stat_width: int | None
) -> QuickStat | None:
    """The ``--stat`` of a live worktree's diff, untracked files included, without a
    private index (``orch.git.worktree_stat``); None when only the private index gives
    git's exact answer, or when ``diff`` is not of a live worktree."""
    if diff.untracked_in is None:
        return None
    found = git.worktree_stat(
        diff.untracked_in, diff.range.base, color=color, stat_width=stat_width
    )
    if found is None:
        return None
    return QuickStat(found.output, diff.notes + _nested_note(found.nested_repositories))


def _nested_note(nested: tuple[str, ...]) -> tuple[str, ...]:
    if not nested:
        return ()
    return (f"untracked repositories inside the worktree are not shown: {', '.join(nested[:5])}",)


def changes(git: Git, diff: AttemptDiff) -> Changes:
    """The files ``diff`` changed with their line counts, and the commits since the base;
    a live worktree's untracked files too (``Git.worktree_changes``) when ``diff`` has not
    added them to its range yet."""
    base = diff.range.base
    commits = tuple(git.commits_between(diff.repository.common_dir, base, diff.tip))
    if diff.untracked_in is None:
        return Changes(files=tuple(git.changed_files(diff.range)), commits=commits)
    found = git.worktree_changes(diff.untracked_in, base)
    return Changes(tuple(found.files), commits, _nested_note(found.nested_repositories))


def diff_body(diff: AttemptDiff, found: Changes, *, committed: bool) -> dict[str, Any]:
    """The body of ``orch diff --json`` (the dashboard's diff view reads the same)."""
    attempt = diff.attempt
    return {
        "attempt": attempt.id,
        "task_key": attempt.task_key,
        "base_commit": diff.range.base,
        "tip": diff.tip,
        "source": diff.source,
        "committed_only": committed,
        "branch_name": attempt.branch_name,
        "worktree_path": attempt.worktree_path,
        "archive_path": attempt.archive_path,
        "notes": list(diff.notes + found.notes),
        "files": [file_dict(f) for f in found.files],
        "commits": [dataclasses.asdict(c) for c in found.commits],
        "totals": found.totals(),
    }


@record
class FilePatch:
    """One changed file and its patch (at most ``PATCH_LIMIT`` bytes of it)."""

    file: FileChange
    patch: bytes
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": file_dict(self.file),
            # the patch as text: bytes that are not UTF-8 become replacement characters
            "patch": self.patch.decode("utf-8", "replace"),
            "truncated": self.truncated,
            "limit": PATCH_LIMIT,
        }


def file_patch(git: Git, diff: AttemptDiff, path: str, limit: int = PATCH_LIMIT) -> FilePatch:
    """The patch of the one file named ``path`` (its exact name: a name that is not UTF-8
    carries surrogate escapes, as ``FileChange.path`` does) among those ``diff`` changed;
    a renamed file's patch covers both of its names."""
    found = next((f for f in git.changed_files(diff.range) if f.path == path), None)
    if found is None:
        raise NotFound(
            f"attempt {diff.attempt.id} changed no file named {_text(path)!r} against "
            f"its base_commit {diff.range.base[:12]}"
        )
    names = [found.path] if found.old_path is None else [found.old_path, found.path]
    patch, truncated = git.file_patch(diff.range, names, limit)
    return FilePatch(found, patch, truncated)


def file_dict(change: FileChange) -> dict[str, Any]:
    """One changed file as JSON: a name that is not UTF-8 shows with replacement
    characters in ``path`` and byte for byte in ``path_base64``."""
    out: dict[str, Any] = {"path": _text(change.path)}
    if change.old_path is not None:
        out["old_path"] = _text(change.old_path)
    out.update(
        status=change.status,
        additions=change.additions,
        deletions=change.deletions,
        binary=change.binary,
    )
    for key, name in (("path", change.path), ("old_path", change.old_path)):
        raw = _not_utf8(name) if name is not None else None
        if raw is not None:
            out[f"{key}_base64"] = base64.b64encode(raw).decode("ascii")
    return out


def name_from_base64(given: str) -> str:
    """A file name sent as ``path_base64`` (its exact bytes), as git's names are held."""
    try:
        raw = base64.b64decode(given, validate=True)
    except ValueError:
        raise InvalidInput("path_base64 is not base64") from None
    return raw.decode("utf-8", "surrogateescape")


def _text(name: str) -> str:
    """The name as text (git's bytes were decoded with surrogate escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _not_utf8(name: str) -> bytes | None:
    """The name's bytes when they are not UTF-8 (None when they are)."""
    raw = name.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


@record
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
