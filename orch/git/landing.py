"""Landing: merging an attempt's commits into a target branch without any worktree.

Everything here works on the object store and the refs only (``--git-dir``): the
conflict test and the merged tree come from ``git merge-tree --write-tree`` (git 2.38+),
commits from ``git commit-tree``, and the target moves with ``update-ref`` given its old
value (a compare-and-swap: a commit made to the target meanwhile makes it fail, never
lost). Replaying one commit (the ``rebase`` strategy) on git 2.39, which has no
``merge-tree --merge-base``, merges against a temporary commit whose tree is the result
so far and whose parent is the replayed commit's parent, so that merge-tree's own merge
base is that parent: the three-way merge of a cherry-pick. The temporary commits are
unreachable objects that git's gc removes in time.

The commands that write a worktree bring a checked-out target's worktree along after its
branch moved: ``apply_landed`` applies the landed change to the landed paths only (``git
apply --index``, so its cost does not grow with the worktree), ``follow_target`` is the
two-tree ``read-tree -m -u`` a fast-forward merge does (for a change too large for a
patch, or a worktree the patch does not apply to). Nothing here decides whether a land
may happen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from orch.errors import GitError, GitTooOld, LockBusy
from orch.git.runner import Runner, last_line
from orch.git.status import parse_porcelain
from orch.record import record

# merge-tree --write-tree appeared in 2.38; older git is refused with this line
MERGE_TREE_VERSION = (2, 38)
# more paths than this are not given to git status one by one (the command line's length)
_PATHSPEC_LIMIT = 1000
_CONFLICT_WORD = re.compile(r"CONFLICT \(([^)]*)\)")
_VERSION = re.compile(r"git version (\d+)\.(\d+)(?:\.(\d+))?")


@record
class Conflicted:
    """A path the merge could not resolve, and what kind of conflict git called it
    (``content``, ``binary``, ``modify/delete``, ``rename/delete``, ``add/add``...)."""

    path: str
    kinds: tuple[str, ...] = ()


@record
class LandedPath:
    """A path a land changes in the target: ``A`` added, ``M`` modified, ``D`` deleted,
    ``T`` its type changed."""

    status: str
    path: str


@record
class Merged:
    """What merging two commits gives: the tree (with conflict markers when there are
    conflicts) and the conflicted paths (empty: a clean merge)."""

    tree: str
    conflicts: tuple[Conflicted, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.conflicts


@record
class Replayed:
    """The attempt's commits replayed one by one: the new tip, or where it stopped."""

    tip: str
    conflicts: tuple[Conflicted, ...] = ()
    stopped_at: str | None = None  # the commit that did not apply


@record
class CommitMeta:
    """What a replayed commit keeps: its author, date and message."""

    author_name: str
    author_email: str
    author_date: str  # git's raw form: seconds and zone
    message: str


class Landing(Runner):
    _git_version: tuple[int, int] | None = None

    def git_version(self) -> tuple[int, int]:
        """git's major and minor version (asked once per object)."""
        if self._git_version is None:
            out = self.run(["version"]).stdout
            found = _VERSION.search(out)
            if found is None:
                raise GitError(f"cannot read git's version from {out.strip()!r}")
            self._git_version = (int(found.group(1)), int(found.group(2)))
        return self._git_version

    def require_merge_tree(self) -> None:
        """Refuse a git without ``merge-tree --write-tree`` in one line."""
        have = self.git_version()
        if have < MERGE_TREE_VERSION:
            need = ".".join(map(str, MERGE_TREE_VERSION))
            raise GitTooOld(
                f"orch land needs git {need} or newer (git merge-tree --write-tree); "
                f"this is git {have[0]}.{have[1]}"
            )

    # -- reading ---------------------------------------------------------------------------

    def ref_target(self, git_dir: Path, ref: str) -> str | None:
        """The commit ``ref`` (a full ref name) points at; None when it does not exist."""
        proc = self.run(
            ["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    def is_ancestor(self, git_dir: Path, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is ``descendant`` or one of its ancestors."""
        proc = self.run(
            ["--git-dir", str(git_dir), "merge-base", "--is-ancestor", ancestor, descendant],
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise GitError(f"git merge-base failed: {last_line(proc.stderr)}")
        return proc.returncode == 0

    def tree_of(self, git_dir: Path, commit: str) -> str:
        return self.run(
            ["--git-dir", str(git_dir), "rev-parse", "--verify", f"{commit}^{{tree}}"]
        ).stdout.strip()

    def commits_to_replay(self, git_dir: Path, upstream: str, tip: str) -> list[str]:
        """The commits of ``tip`` not in ``upstream``, oldest first, merges left out (as
        ``git rebase`` does by default)."""
        out = self.run(
            [
                "--git-dir",
                str(git_dir),
                "rev-list",
                "--reverse",
                "--topo-order",
                "--no-merges",
                "--end-of-options",
                f"{upstream}..{tip}",
            ]
        ).stdout
        return out.split()

    def commit_meta(self, git_dir: Path, commit: str) -> tuple[CommitMeta, str | None]:
        """A commit's author, date and message, and its first parent (None: a root)."""
        out = self.run(
            [
                "--git-dir",
                str(git_dir),
                "log",
                "-1",
                "--format=%an%x00%ae%x00%ad%x00%P%x00%B",
                "--date=raw",
                "--end-of-options",
                commit,
            ]
        ).stdout
        name, email, date, parents, message = out.split("\0", 4)
        first = parents.split()[0] if parents.split() else None
        # log adds one newline after the body: commit-tree gets the message as written
        return CommitMeta(name, email, date, message.removesuffix("\n")), first

    # -- merging ---------------------------------------------------------------------------

    def merge_trees(self, git_dir: Path, ours: str, theirs: str) -> Merged:
        """``git merge-tree --write-tree``: merge two commits (their merge base found by
        git) into a tree, in the object store only."""
        proc = self.run(
            [
                "--git-dir",
                str(git_dir),
                "merge-tree",
                "--write-tree",
                "-z",
                "--name-only",
                "--end-of-options",
                ours,
                theirs,
            ],
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise GitError(f"git merge-tree failed: {last_line(proc.stderr)}")
        return parse_merge_tree(proc.stdout, clean=proc.returncode == 0)

    def replay(self, git_dir: Path, onto: str, commits: Sequence[str]) -> Replayed:
        """Replay ``commits`` (oldest first) onto ``onto``, each a cherry-pick keeping
        its author, date and message; stop at the first one that conflicts. A commit whose
        change the result already has is dropped, as ``git rebase`` drops it."""
        tip, tip_tree = onto, None
        for commit in commits:
            meta, parent = self.commit_meta(git_dir, commit)
            if parent is None:
                raise GitError(f"cannot replay the root commit {commit}")
            if tip == parent:
                tip, tip_tree = commit, None  # it already sits on the result: kept as it is
                continue
            tip_tree = tip_tree or self.tree_of(git_dir, tip)
            # a commit with the result's tree and the replayed commit's parent: merge-tree
            # then merges with that parent as base (see the module docstring)
            stand_in = self.commit_tree(git_dir, tip_tree, [parent], "orch land: replay base")
            merged = self.merge_trees(git_dir, stand_in, commit)
            if not merged.clean:
                return Replayed(tip, merged.conflicts, commit)
            if merged.tree == tip_tree:
                continue  # its change is in the result already: it would be an empty commit
            tip = self.commit_tree(git_dir, merged.tree, [tip], meta.message, author=meta)
            tip_tree = merged.tree
        return Replayed(tip)

    def commit_tree(
        self,
        git_dir: Path,
        tree: str,
        parents: Sequence[str],
        message: str,
        *,
        author: CommitMeta | None = None,
    ) -> str:
        """``git commit-tree``: a commit object (no ref moves); ``author``: keep that
        commit's author and date (the committer is whoever runs orch)."""
        env: Mapping[str, str] = {}
        if author is not None:
            env = {
                "GIT_AUTHOR_NAME": author.author_name,
                "GIT_AUTHOR_EMAIL": author.author_email,
                "GIT_AUTHOR_DATE": author.author_date,
            }
        args = ["--git-dir", str(git_dir), "commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        # -F -: the message byte for byte (no -m splitting into paragraphs)
        return self.run([*args, "-F", "-"], input=message, env=env).stdout.strip()

    def landed_changes(self, git_dir: Path, old: str, new: str) -> list[LandedPath]:
        """What moving a target from ``old`` to ``new`` changes, path by path (renames as
        a deletion and an addition, as a checkout sees them)."""
        out = self.run(
            [
                "--git-dir",
                str(git_dir),
                "diff",
                "--no-renames",
                "--name-status",
                "-z",
                "--end-of-options",
                old,
                new,
                "--",
            ]
        ).stdout
        fields = out.split("\0")
        return [
            LandedPath(fields[i][:1], fields[i + 1])
            for i in range(0, len(fields) - 1, 2)
            if fields[i]
        ]

    def dirty_among(self, worktree: Path, changes: Sequence[LandedPath]) -> list[str]:
        """Which landed paths ``worktree`` could not follow: a tracked one with staged or
        unstaged changes (``git status`` limited to those paths, read without taking the
        index lock), a new one where something already sits. Only the landed paths are
        looked at: the cost does not grow with the worktree."""
        tracked = [c.path for c in changes if c.status != "A"]
        in_the_way = [
            c.path for c in changes if c.status == "A" and os.path.lexists(worktree / c.path)
        ]
        if not tracked:
            return in_the_way
        limit = len(tracked) <= _PATHSPEC_LIMIT
        out = self.run(
            [
                "-c",
                "core.preloadIndex=false",
                "--no-optional-locks",
                "--literal-pathspecs",
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=no",
                "--",
                *(tracked if limit else []),
            ],
            cwd=worktree,
        ).stdout
        wanted = set(tracked)
        return [d.path for d in parse_porcelain(out) if d.path in wanted] + in_the_way

    def landed_patch(self, git_dir: Path, old: str, new: str, limit: int) -> bytes | None:
        """The change from ``old`` to ``new`` as a patch ``git apply`` takes byte for byte
        (binary files included, whatever the user's diff settings); None when it is
        longer than ``limit`` bytes."""
        data, more = self.output_head(
            [
                "--git-dir",
                str(git_dir),
                "-c",
                "diff.noprefix=false",
                "diff",
                "--binary",
                "--full-index",
                "--no-renames",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                "--end-of-options",
                old,
                new,
                "--",
            ],
            limit,
        )
        return None if more else data

    def apply_landed(self, worktree: Path, patch: bytes) -> bool:
        """Apply a landed change to ``worktree``'s index and files (``git apply --index``:
        all or nothing, and a file whose content differs from the index is refused, never
        overwritten); False when git refused, having changed nothing. Only the patch's
        paths are read and written."""
        try:
            self.run(["apply", "--index", "--whitespace=nowarn", "-"], cwd=worktree, input=patch)
        except LockBusy:
            raise
        except GitError:
            return False
        return True

    # -- moving the target -----------------------------------------------------------------

    def compare_and_swap(self, git_dir: Path, ref: str, new: str, old: str, reason: str) -> bool:
        """Move ``ref`` to ``new`` only while it points at ``old``; False when it moved
        meanwhile (or is gone). Git's lock on the ref, busy for a moment, is waited on."""
        proc = self.run(
            ["--git-dir", str(git_dir), "update-ref", "-m", reason, "--stdin"],
            input=f"update {ref} {new} {old}\n",
            check=False,
        )
        if proc.returncode == 0:
            return True
        if self.ref_target(git_dir, ref) != old:
            return False
        raise GitError(f"git update-ref {ref} failed: {last_line(proc.stderr)}")

    def index_matches(self, worktree: Path, commit: str) -> bool:
        """Whether the index of ``worktree`` holds exactly ``commit``'s tree (read without
        taking its lock): a checkout of the target that has not followed it yet."""
        proc = self.run(
            ["--no-optional-locks", "diff-index", "--cached", "--quiet", commit, "--"],
            cwd=worktree,
            check=False,
        )
        return proc.returncode == 0

    def follow_target(self, worktree: Path, old: str, new: str) -> None:
        """Bring the files and index of ``worktree`` (its HEAD the target branch, which
        just moved from ``old`` to ``new``) along, as ``git merge --ff-only`` would: only
        the files that differ between the two are rewritten, and git refuses rather than
        overwrite a local change."""
        self.run(["read-tree", "-m", "-u", old, new], cwd=worktree)


def parse_merge_tree(out: str, *, clean: bool) -> Merged:
    """Parse ``git merge-tree --write-tree -z --name-only``: the tree, then (when not
    clean) the conflicted paths, an empty field, and the informational messages, each
    ``<count>\\0<path>...\\0<type>\\0<message>\\0``."""
    fields = out.split("\0")
    tree = fields[0].strip()
    if clean:
        return Merged(tree)
    paths: list[str] = []
    i = 1
    while i < len(fields) and fields[i]:
        paths.append(fields[i])
        i += 1
    kinds: dict[str, list[str]] = {p: [] for p in paths}
    i += 1
    while i < len(fields) and fields[i].isdigit():
        count = int(fields[i])
        named = fields[i + 1 : i + 1 + count]
        kind = fields[i + 1 + count] if i + 1 + count < len(fields) else ""
        message = fields[i + 2 + count] if i + 2 + count < len(fields) else ""
        i += count + 3  # the count, the paths, the type, the message
        if kind.startswith("CONFLICT"):
            # the message's word is the more telling one (add/add where the type says
            # contents); a binary file's message is a warning, its type says binary
            said = _CONFLICT_WORD.match(message)
            word = said.group(1) if said else kind.removeprefix("CONFLICT").strip(" ()")
            for path in named:
                if path in kinds and word not in kinds[path]:
                    kinds[path].append(word)
    return Merged(tree, tuple(Conflicted(p, tuple(kinds[p])) for p in paths))
