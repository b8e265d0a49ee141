"""Where a new attempt's worktree comes from: a warm pool member, a checkout made ahead,
or a fresh ``git worktree add``.

Each source is a ``Source``, one object with the same small protocol, so that a
dispatch never threads optional handles through its steps:

- *prepare* (its constructor, ``start``): what can run before the store opens (the
  member's ``git status``, the checkout ahead); ``path`` is what the intent records
  (None: the path named after the attempt);
- ``recorded()``: the intent names the worktree;
- ``take(attempt, record, checkpoint)``, after the intent and the branch: the worktree
  is checked out on the attempt's branch at ``path``. Before doing anything at a path the
  intent does not name, it calls ``record(path)`` (the dispatch writes the store), so
  that the store always names the worktree before anything is done there;
- ``undo()``: release what prepare started (a checkout ahead no intent names is
  removed); ``settle()``: wait until git is done at ``path`` before a rollback;
- ``ours``: whether what is at ``path`` is the attempt's (made or claimed by it): only
  then may a rollback remove it.

A worktree reused by a later phase is no source: it is finished in place
(``orch.workspace.reuse``). Never writes the store: the dispatch does.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path

from orch import naming
from orch.config import Settings
from orch.errors import WorkspaceError
from orch.git import Git, Repository, checkout_env
from orch.models import Attempt, CheckoutSpec
from orch.record import record
from orch.workspace import pool
from orch.workspace.ahead import CheckoutAhead

Checkpoint = Callable[[str], None]
Record = Callable[[Path], None]


def _no_checkpoint(step: str) -> None:
    return None


@record
class _Taking:
    """One ``take``: the attempt as the intent recorded it, and what the dispatch gave."""

    attempt: Attempt
    branch_name: str
    base_commit: str
    path: Path  # where the store names the worktree now (``record`` moves it)
    record: Record
    checkpoint: Checkpoint
    hooks: Path | None


class Source:
    """The protocol of every source (see above). The defaults are those of a source of
    which nothing exists before ``take``: nothing to do when the intent names it, nothing
    git may still be doing before a rollback, nothing to undo."""

    path: Path | None
    ours: bool

    def recorded(self) -> None:
        return None

    def take(
        self,
        attempt: Attempt,
        record: Record,
        checkpoint: Checkpoint = _no_checkpoint,
        hooks: Path | None = None,
    ) -> str | None:
        """Check the worktree out; the pool member's name, or None. ``hooks``: where the
        repository's hooks are (None: git looks)."""
        assert attempt.branch_name and attempt.base_commit and attempt.worktree_path
        path = Path(attempt.worktree_path)
        branch, base = attempt.branch_name, attempt.base_commit
        return self._take(_Taking(attempt, branch, base, path, record, checkpoint, hooks))

    def _take(self, taking: _Taking) -> str | None:
        raise NotImplementedError

    def settle(self) -> None:
        return None

    def undo(self) -> None:
        return None


class Fresh(Source):
    """A worktree made after the intent, at the path named after the attempt."""

    def __init__(self, git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec) -> None:
        self.git, self.repo, self.settings, self.spec = git, repo, settings, spec
        self.path: Path | None = None
        self.ours = False

    def _take(self, taking: _Taking) -> str | None:
        attempt, path = taking.attempt, taking.path
        if pool.in_a_pool(path):  # the member the intent named was taken or damaged
            path = naming.worktree_path(
                self.settings.worktree_root, self.repo.root, attempt.task_key, attempt.id
            )
            taking.record(path)
        self.path = path
        self.ours = True  # named after this attempt: whatever is made there is its own
        self.git.add_worktree(
            self.repo,
            path,
            taking.branch_name,
            taking.base_commit,
            sparse=self.spec.sparse_paths,
            submodules=bool(self.spec.submodules),
            lfs_skip_smudge=self.spec.lfs_skip_smudge,
            hooks=taking.hooks,
        )
        return None


class Pooled(Source):
    """A warm pool member: the probed one first (its ``git status`` runs while the store
    opens), then any other ready one; a fresh worktree when none can be claimed."""

    def __init__(
        self,
        git: Git,
        repo: Repository,
        settings: Settings,
        spec: CheckoutSpec,
        probe: pool.Probe | None = None,
    ) -> None:
        self.git, self.repo, self.settings, self.spec = git, repo, settings, spec
        self.probe = probe
        self.path: Path | None = probe.member if probe is not None else None
        self.ours = False
        self._fresh = Fresh(git, repo, settings, spec)

    @classmethod
    def start(
        cls, git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec
    ) -> Pooled | None:
        """Probe a ready member; None when the pool has none."""
        probe = pool.probe(git, repo, settings, spec)
        return None if probe is None else cls(git, repo, settings, spec, probe)

    @classmethod
    def start_many(
        cls, git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec, count: int
    ) -> list[Pooled]:
        """Probe up to ``count`` distinct ready members, one for each attempt of a
        best-of-N dispatch (a member is claimed by one attempt only: the claim is the
        removal of its ready marker)."""
        probes = pool.probe_many(git, repo, settings, spec, count)
        return [cls(git, repo, settings, spec, probe) for probe in probes]

    def _take(self, taking: _Taking) -> str | None:
        path = self.path = taking.path
        for member in self._candidates():
            if member != path:
                taking.record(member)
                path = self.path = member
                self.ours = False
            claimed = self._claim(member, taking.checkpoint)
            if claimed is not None:
                self.ours = True  # claimed: from now on the attempt's to remove
                pool.switch_to_branch(
                    self.git,
                    self.repo,
                    claimed.path,
                    taking.branch_name,
                    claimed.commit,
                    taking.base_commit,
                    self.spec,
                    hooks=taking.hooks,
                )
                return claimed.member
        # the fresh worktree starts where the store names the attempt's worktree now
        self._fresh._take(dataclasses.replace(taking, path=path))
        self.path, self.ours = self._fresh.path, True
        return None

    def _candidates(self) -> list[Path]:
        if not self.spec.poolable:
            return []
        try:
            members = pool.ready_members(pool.flavour_dir(self.settings, self.repo, self.spec))
        except WorkspaceError:
            members = []  # unreadable: `orch pool fill` and `orch doctor` report it
        if self.probe is not None and self.probe.member in members:
            members.remove(self.probe.member)
            members.insert(0, self.probe.member)
        return members

    def _claim(self, member: Path, checkpoint: Checkpoint) -> pool.Claimed | None:
        probed = self.probe if self.probe is not None and self.probe.member == member else None
        try:
            return pool.claim(
                self.git, self.repo, self.settings, self.spec, member, probed, checkpoint
            )
        except pool.MemberStuck:
            raise  # kept where it is, with whatever it holds
        except BaseException:
            # past its ready marker, the member is this attempt's to remove
            self.ours = member.exists() and member not in self._candidates()
            raise

    def undo(self) -> None:
        if self.probe is not None:
            self.probe.close()  # reap the process


class Ahead(Source):
    """The attempt's worktree, started (detached at the base) while the store opens; see
    orch.workspace.ahead. It is named after the attempt, so it is the attempt's own."""

    def __init__(self, checkout: CheckoutAhead, spec: CheckoutSpec) -> None:
        self.checkout, self.spec = checkout, spec
        self.path: Path | None = checkout.path
        self.ours = True
        self.attempt_id = checkout.attempt_id

    @classmethod
    def start(
        cls,
        git: Git,
        repo: Repository,
        settings: Settings,
        task_key: str,
        base_commit: str,
        spec: CheckoutSpec,
        checkpoint: Checkpoint = _no_checkpoint,
        slots: threading.Semaphore | None = None,
    ) -> Ahead | None:
        """None when something is already at its path (the id another attempt's) or its
        marker cannot be written: the worktree is then made after the intent, which
        reports what is wrong. It keeps its path if the store gives the attempt another
        id (orch.attempts.intent): nothing else is there. ``slots``: shared by the
        checkouts of one best-of-N dispatch, so that at most that many run at once and
        in the order they were started."""
        attempt_id = naming.new_attempt_id()
        path = naming.worktree_path(settings.worktree_root, repo.root, task_key, attempt_id)
        if os.path.lexists(path):
            return None
        try:
            checkout = CheckoutAhead.start(
                git, repo, settings, attempt_id, path, base_commit, spec, checkpoint, slots
            )
        except (OSError, RuntimeError):
            return None
        return cls(checkout, spec)

    def recorded(self) -> None:
        self.checkout.owned()  # the intent names its worktree: it is the attempt's

    def _take(self, taking: _Taking) -> str | None:
        checkout, commit = self.checkout, taking.base_commit
        checkout.result()  # detached at the base, as `git worktree add` left it
        checkout.git.attach_head(checkout.path, taking.branch_name, commit)
        # the hook `git worktree add -b` runs, now that HEAD is on the branch
        env = checkout_env(self.spec.lfs_skip_smudge)
        checkout.git.post_checkout(checkout.path, "0" * len(commit), commit, env, taking.hooks)
        return None

    def settle(self) -> None:
        self.checkout.settle()  # git may still be checking out there

    def undo(self) -> None:
        if not self.checkout.recorded:
            self.checkout.discard()  # failed before its intent: nobody else knows of it
