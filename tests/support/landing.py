"""Attempts with work to land, and what git itself makes of the same land.

Every expectation comes from git: the tree ``git merge --squash`` or ``git merge`` makes,
the commits ``git rebase`` makes, in a scratch clone, never orch's own code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.support.attempts import dispatch, shown_attempt, work
from tests.support.cli import RunCli, RunOrch
from tests.support.repos import commit_all, fresh_clone, git

# two commits: a changed tracked file and a new file
AGENT_COMMITS = (
    "printf 'one\\ntwo\\n' > src/d0/f0.txt && git commit -qam 'first change' && "
    "printf 'a\\nb\\nc\\n' > new.txt && git add new.txt && git commit -qm 'second change'"
)


def attempt_with_commits(
    run_cli: RunCli,
    run_orch: RunOrch,
    repo: Path,
    task_key: str,
    script: str = AGENT_COMMITS,
    *args: str,
) -> dict[str, Any]:
    """A succeeded attempt whose agent ran ``script`` in its worktree (it commits)."""
    made = dispatch(run_cli, repo, task_key, "--prompt", f"do {task_key}\nin detail", *args)
    work(run_orch, repo, made["id"], script)
    return shown_attempt(run_cli, repo, made["id"])


def main_commits(repo: Path, files: dict[str, str | bytes | None], message: str) -> str:
    """A commit on main in the main worktree (None deletes the file); its id."""
    for name, content in files.items():
        path = repo / name
        if content is None:
            git("rm", "-q", name, cwd=repo)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return commit_all(repo, message)


def land(run_cli: RunCli, repo: Path, *args: str) -> Result:
    return run_cli("land", *args, cwd=repo)


def outcomes(result: Result) -> list[dict[str, Any]]:
    """The outcomes of ``orch land --json`` (whatever its exit code)."""
    data = json.loads(result.stdout)
    assert data["version"] == 1, data
    found: list[dict[str, Any]] = data["outcomes"]
    return found


def rev(repo: Path, what: str) -> str:
    return git("rev-parse", what, cwd=repo).strip()


def git_made(repo: Path, branch: str, scratch: Path, *how: str) -> Path:
    """A scratch clone of ``repo`` with ``git <how...> origin/<branch>`` done on main
    (e.g. ``merge --squash``, ``merge --no-ff``), committed when git left it staged."""
    clone = fresh_clone(repo, scratch)
    git(*how, f"origin/{branch}", cwd=clone)
    if git("diff", "--cached", "--name-only", cwd=clone).strip():
        git("commit", "-q", "-m", "made by git", cwd=clone)
    return clone


def rebased_by_git(repo: Path, branch: str, scratch: Path) -> list[tuple[str, ...]]:
    """What ``git rebase main`` makes of ``branch`` in a scratch clone: author, author
    date, message and tree of each commit after main, oldest first."""
    clone = fresh_clone(repo, scratch)
    git("checkout", "-q", "-b", "work", f"origin/{branch}", cwd=clone)
    git("rebase", "-q", "main", cwd=clone)
    return commits_after(clone, "main", "HEAD")


def commits_after(repo: Path, base: str, tip: str) -> list[tuple[str, ...]]:
    out = git(
        "log",
        "--reverse",
        "-z",
        "--format=%an%x1f%ae%x1f%ad%x1f%B%x1f%T",
        f"{base}..{tip}",
        cwd=repo,
    )
    return [tuple(r.strip("\n").split("\x1f")) for r in out.split("\0") if r.strip()]


def worktree_clean(path: Path) -> bool:
    return git("status", "--porcelain", "--untracked-files=no", cwd=path) == ""
