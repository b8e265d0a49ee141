"""The check on a land's result, not on the attempt's stale tip.

The repository's ``[review] check`` runs in a scratch worktree detached at the result
commit (``$ORCH_HOME/landing/<attempt id>``, named in the land's intent so that
``orch doctor --fix`` removes it after a crash), with a spare port bundle of its own
(the attempt's dev server may still hold the attempt's), its output appended to the
attempt's log and its result recorded as a check run of the attempt. The scratch
worktree goes through the one removal path afterwards, whatever the check said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.git import Git, Repository
from orch.models import Attempt, Run
from orch.record import record
from orch.repo_config import RepoConfig, load_repo_config

if TYPE_CHECKING:
    from orch.store import Store

SCRATCH = "landing"


@record
class Verdict:
    """How a land's result was checked: ``passed``, ``failed``, ``skipped`` (--no-check)
    or ``none configured``; ``run`` is the check run when one ran."""

    result: str
    run: Run | None = None

    @property
    def lands(self) -> bool:
        return self.result != "failed"


def scratch_path(settings: Settings, attempt: Attempt) -> Path:
    return settings.home / SCRATCH / attempt.id


def check_config(attempt: Attempt) -> RepoConfig:
    """The repository's config (the main worktree's ``orch.toml``, never the attempt's)."""
    root = Path(attempt.repository)
    return load_repo_config(root) if root.is_dir() else RepoConfig()


def check_result(
    store: Store,
    settings: Settings,
    git: Git,
    repo: Repository,
    attempt: Attempt,
    commit: str,
    actor: str,
    environ: Mapping[str, str],
    checkpoint: Callable[[str], None],
) -> Verdict:
    """Run the check on ``commit`` in a scratch worktree and remove it again."""
    config = check_config(attempt)
    if not config.check:
        return Verdict("none configured")
    # imported when a check runs: a land without one does not pay for them
    from orch.attempts.check import run_check
    from orch.workspace.port_bundles import spare_bundle

    path = scratch_path(settings, attempt)
    remove_scratch(git, repo, path)  # a leftover of a land killed before
    bundle = spare_bundle(store, settings, settings.host_name)
    try:
        git.add_worktree(repo, path, None, commit)
        checkpoint("check-started")
        run = run_check(store, settings, attempt, path, config, None, actor, environ, bundle=bundle)
    finally:
        remove_scratch(git, repo, path)
    return Verdict("passed" if run.result == "passed" else "failed", run)


def remove_scratch(git: Git, repo: Repository, path: Path) -> None:
    """Remove a land's scratch worktree (nothing in it is anyone's work)."""
    from orch.workspace import removal  # a land with --keep and no check never needs it

    removal.remove(git, repo, path, None, removal.Policy(best_effort=True))
