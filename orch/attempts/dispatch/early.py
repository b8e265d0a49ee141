"""Everything a dispatch starts before the store opens, owned by one context.

Importing and opening the store is the slowest part of a dispatch (Python, one core);
meanwhile git works on the other: a warm pool member's ``git status`` (or, with no member
to hand over, the attempt's checkout made ahead), the main worktree's dirt check, and
the repository's URL and hooks directory. ``EarlyWork`` starts them and, on leaving,
closes each (reaping its process) and undoes the workspace source if no intent named it.
Never opens the store.
"""

from __future__ import annotations

import contextlib
import os
import threading
from types import TracebackType

from orch.attempts.dispatch.request import Checkpoint
from orch.config import Settings
from orch.git import Git, PendingDirtyCheck, PendingRepositoryFacts, Repository, RepositoryFacts
from orch.models import CheckoutSpec
from orch.workspace import sources


class EarlyWork:
    """The workspace source, dirt check and URL read of one dispatch."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.sources: list[sources.Source] = []  # in attempt order (best-of-N: several)
        self.dirt_check: PendingDirtyCheck | None = None
        self._facts: PendingRepositoryFacts | None = None

    def __enter__(self) -> EarlyWork:
        self._stack.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._stack.__exit__(kind, exc, tb)

    def start_sources(
        self,
        git: Git,
        repo: Repository,
        settings: Settings,
        task_key: str,
        base_commit: str,
        spec: CheckoutSpec,
        checkpoint: Checkpoint,
        count: int = 1,
    ) -> None:
        """A source for each of ``count`` attempts of one task: ready pool members first
        (each probed for one attempt), then checkouts made ahead, at most one per core at
        a time, in the order of the attempts. Fewer when the pool runs dry and a checkout
        cannot start ahead (submodules, a path taken): those attempts make their worktree
        after their intent."""
        self.sources = list(sources.Pooled.start_many(git, repo, settings, spec, count))
        for source in self.sources:
            self._stack.callback(source.undo)
        if spec.submodules:
            return
        # git's checkout is one core's work: more at once only makes each wait longer
        slots = threading.Semaphore(max(1, os.cpu_count() or 1))
        while len(self.sources) < count:
            ahead = sources.Ahead.start(
                git, repo, settings, task_key, base_commit, spec, checkpoint, slots
            )
            if ahead is None:
                return
            self.sources.append(ahead)
            self._stack.callback(ahead.undo)
            checkpoint("worktree-started-ahead")

    @property
    def source(self) -> sources.Source | None:
        """The source of a dispatch of one attempt (None: its worktree is made after the
        intent)."""
        return self.sources[0] if self.sources else None

    def check_dirt(self, git: Git, repo: Repository, started: PendingDirtyCheck | None) -> None:
        """The main worktree's dirt check (``started``: one begun before the command line
        was parsed, used when the repository is that worktree)."""
        # a check started in the main worktree (or a directory of it) sees the same
        # status: porcelain paths are relative to the top level wherever git runs
        if started is not None and not repo.invoked_from_linked_worktree:
            check = started
        else:
            check = git.start_dirty_check(repo.root, yield_cpu=True)
        self.dirt_check = check
        self._stack.callback(check.close)

    def read_facts(self, git: Git, repo: Repository) -> None:
        """The repository's URL and where its hooks are (one git process)."""
        facts = git.start_repository_facts(repo)
        self._facts = facts
        self._stack.callback(facts.close)

    def facts(self) -> RepositoryFacts:
        assert self._facts is not None
        return self._facts.result()
