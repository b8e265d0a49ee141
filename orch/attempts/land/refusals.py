"""What refuses a land before the target's lock is taken: an attempt that is being landed,
that still runs (unless ``--force``), whose branch is gone or has no commits, whose work is
on another host and was not pushed to the remote; and its uncommitted work, named in a
warning (refused with ``--strict``). Nothing here changes anything but a fetch of another
host's branch into its remote-tracking ref."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.land.request import LandRequest
from orch.config import Settings
from orch.errors import Conflict, LandRefused, NotFound
from orch.git import Git, PendingDirtyCheck, Repository
from orch.models import Attempt

if TYPE_CHECKING:
    from orch.store import Store

SHOWN = 3  # paths named in a line, then a count


def refuse_early(store: Store, settings: Settings, request: LandRequest, attempt: Attempt) -> None:
    """Refusals that need neither git nor the target."""
    if attempt.landing_commit is not None:
        raise Conflict(
            f"attempt {attempt.id} is being landed by another orch land (or by one that was "
            "killed: run 'orch doctor --fix')"
        )
    # a dry run changes nothing: it may look at a live attempt's committed work as it is
    if not request.force and not request.dry_run:
        if attempt.state.live:
            raise LandRefused(
                f"attempt {attempt.id} is {attempt.state}: its agent may still commit; wait "
                "for it, or --force lands what it has committed so far"
            )
        for other in store.attempts_using_worktree(attempt.worktree_path or ""):
            if other.id != attempt.id and other.state.live:
                raise LandRefused(
                    f"attempt {other.id} ({other.state}) still works on the branch of attempt "
                    f"{attempt.id}: wait for it, or --force"
                )
    if not attempt.branch_name or not attempt.base_commit:
        raise LandRefused(f"attempt {attempt.id} has no branch of its own to land")


def elsewhere(settings: Settings, attempt: Attempt) -> bool:
    """Whether the attempt's worktree is on another host than this one."""
    return attempt.workspace_host not in (None, settings.host_name)


def branch_tip(git: Git, repo: Repository, attempt: Attempt) -> str:
    """The attempt's branch tip, refused when the branch is gone or has no commits."""
    assert attempt.branch_name is not None and attempt.base_commit is not None
    tip = git.branch_commit(repo, attempt.branch_name)
    if tip is None:
        saved = f"; its work was saved to {attempt.archive_path}" if attempt.archive_path else ""
        raise NotFound(
            f"the branch {attempt.branch_name} of attempt {attempt.id} is gone: "
            f"nothing to land{saved}"
        )
    return _with_commits(git, repo, attempt, tip)


def pushed_tip(git: Git, repo: Repository, settings: Settings, attempt: Attempt) -> str:
    """The branch of an attempt whose worktree is on another host, fetched from the remote
    its host pushed it to (``push = true``); refused, naming that host, when the remote
    has no such branch."""
    assert attempt.branch_name is not None
    remote = settings.push_remote
    tip, why = git.fetch_branch(repo, remote, attempt.branch_name)
    if tip is None:
        raise LandRefused(
            f"the work of attempt {attempt.id} is on host {attempt.workspace_host} and its "
            f"branch {attempt.branch_name} cannot be fetched from {remote} ({why}): land it "
            f"on {attempt.workspace_host}, or set push = true there so that its runs push it"
        )
    return _with_commits(git, repo, attempt, tip)


def _with_commits(git: Git, repo: Repository, attempt: Attempt, tip: str) -> str:
    assert attempt.base_commit is not None
    if tip == attempt.base_commit or git.commits_ahead(repo.root, attempt.base_commit, tip) == 0:
        raise LandRefused(
            f"attempt {attempt.id} has no commits since its base_commit "
            f"{attempt.base_commit[:12]}: nothing to land (only committed work lands)"
        )
    return tip


def start_dirt(
    git: Git, attempt: Attempt, early: dict[str, PendingDirtyCheck]
) -> PendingDirtyCheck | None:
    """The attempt's uncommitted work, looked at in the background meanwhile: the look
    started at ``orch land``'s start for this worktree (``early``: by worktree_path),
    else one started now."""
    started = early.pop(attempt.worktree_path, None) if attempt.worktree_path else None
    path = Path(attempt.worktree_path) if attempt.worktree_path else None
    if path is None or not attempt.workspace_status.holds_worktree or not path.is_dir():
        if started is not None:
            started.cancel()
        return None
    if started is not None:
        return started
    try:
        return git.start_dirty_check(path)  # normal priority: see orch land's early look
    except OSError:
        return None


def uncommitted(attempt: Attempt, dirt: PendingDirtyCheck | None, strict: bool) -> tuple[str, ...]:
    if dirt is None:
        return ()
    found = dirt.result() or []
    if not found:
        return ()
    line = (
        f"attempt {attempt.id} has {len(found)} uncommitted path{'s' if len(found) != 1 else ''} "
        f"in its worktree ({few([d.path for d in found])}): only committed work lands"
    )
    if strict:
        raise LandRefused(line + " (--strict)")
    return (line,)


def few(paths: list[str]) -> str:
    more = len(paths) - SHOWN
    return ", ".join(paths[:SHOWN]) + (f" and {more} more" if more > 0 else "")
