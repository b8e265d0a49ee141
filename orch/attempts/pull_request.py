"""``orch pr``: push an attempt's branch and open a pull request for it with ``gh``.

Everything a user can be missing is looked at before anything leaves the machine: ``gh``
installed and logged in, a remote to push to, the attempt's branch. Then the branch is
pushed (never forced), the pull request opened, and its URL and number recorded on the
attempt with a ``pr_opened`` event; the loop of ``orch serve`` / ``orch loop`` watches it
from then on (``orch.attempts.pr_watch``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orch.attempts.queries import find_attempt
from orch.errors import Conflict, GitError, InvalidInput, NotFound, PullRequestUnavailable
from orch.git import Git
from orch.models import Attempt, Run
from orch.record import record
from orch.system.gh import Gh

if TYPE_CHECKING:
    from orch.store import Store

_TITLE_MAX = 72


@record
class PrRequest:
    attempt: str
    draft: bool = False
    base: str | None = None  # the branch to merge into; None: the repository's default
    title: str | None = None
    body: str | None = None  # the text of --body-file, else a body orch writes


def choose_remote(remotes: list[str]) -> str:
    """``origin`` when there is one, else the only remote; refused with none or several."""
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return remotes[0]
    if not remotes:
        raise PullRequestUnavailable(
            "the repository has no remote to push the attempt's branch to: "
            "add one with 'git remote add origin URL'"
        )
    raise PullRequestUnavailable(
        f"the repository has several remotes and none is 'origin' ({', '.join(remotes)})"
    )


def default_title(attempt: Attempt) -> str:
    first = next((ln.strip() for ln in attempt.prompt.splitlines() if ln.strip()), "")
    title = f"{attempt.task_key}: {first}" if first else attempt.task_key
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


def default_body(attempt: Attempt, check: Run | None) -> str:
    """The task, the attempt, its base commit, its prompt and its newest check result."""
    if check is None:
        checked = "no check has run"
    elif check.timed_out:
        checked = f"timed out (check run {check.number})"
    elif check.exit_code is None:
        checked = f"running (check run {check.number})"
    else:
        verdict = "passed" if check.exit_code == 0 else f"failed (exit {check.exit_code})"
        checked = f"{verdict} (check run {check.number}, at {check.started_at:%Y-%m-%d %H:%M}Z)"
    quoted = "\n".join(f"> {ln}" if ln else ">" for ln in attempt.prompt.splitlines())
    return (
        f"Task: `{attempt.task_key}`\n"
        f"Attempt: `{attempt.id}` (attempt {attempt.attempt_number}, {attempt.state})\n"
        f"Base commit: `{attempt.base_commit}` ({attempt.base_ref})\n"
        f"Check: {checked}\n\n"
        f"Prompt:\n\n{quoted or '> (empty)'}\n\n"
        "Opened by orch pr.\n"
    )


def open_pull_request(
    store: Store, git: Git, request: PrRequest, actor: str, gh: Gh | None = None
) -> Attempt:
    """Push the attempt's branch and open its pull request; the attempt as recorded."""
    gh = gh or Gh()
    attempt = find_attempt(store, request.attempt)
    if attempt.pr_number is not None:
        raise Conflict(f"attempt {attempt.id} already has pull request {attempt.pr_url}")
    if not attempt.branch_name:
        raise InvalidInput(f"attempt {attempt.id} has no branch of its own to push")
    if request.title is not None and not request.title.strip():
        raise InvalidInput("--title must not be empty")
    repo = git.discover(Path(attempt.repository))
    if git.branch_commit(repo, attempt.branch_name) is None:
        raise NotFound(f"attempt {attempt.id}'s branch {attempt.branch_name} is gone")
    gh.check_logged_in(repo.root)
    remote = choose_remote(git.remotes(repo))
    failed = git.push_branch(repo, remote, attempt.branch_name)
    if failed is not None:
        raise GitError(f"pushing {attempt.branch_name} to {remote} failed: {failed}")
    body = request.body
    if body is None:
        body = default_body(attempt, store.latest_checks([attempt.id]).get(attempt.id))
    made = gh.create(
        repo.root,
        head=attempt.branch_name,
        title=request.title or default_title(attempt),
        body=body,
        base=request.base,
        draft=request.draft,
    )
    return store.record_pull_request(
        attempt.id, made.url, made.number, actor, remote=remote, draft=request.draft
    )
