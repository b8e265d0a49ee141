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
        self.source: sources.Source | None = None
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

    def start_source(
        self,
        git: Git,
        repo: Repository,
        settings: Settings,
        task_key: str,
        base_commit: str,
        spec: CheckoutSpec,
        checkpoint: Checkpoint,
    ) -> None:
        """A warm pool member, probed; else (no submodules) the checkout made ahead; else
        none: the worktree is made after the intent."""
        source: sources.Source | None = sources.Pooled.start(git, repo, settings, spec)
        if source is None and not spec.submodules:
            source = sources.Ahead.start(
                git, repo, settings, task_key, base_commit, spec, checkpoint
            )
            checkpoint("worktree-started-ahead")
        if source is not None:
            self.source = source
            self._stack.callback(source.undo)

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
