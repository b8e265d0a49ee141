"""A repository in every kind of trouble doctor knows: a dispatch killed half-way, a
worktree and a branch that no row owns.

Made with the real entry point and plain git; never by writing orch's store by hand.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.attempts import cancel, dispatch
from tests.support.cli import RunCli, RunOrch
from tests.support.processes import wait_for_git_under
from tests.support.repos import git


def crashed_dispatch(run_orch: RunOrch, repo: Path, task_key: str, step: str) -> None:
    """``orch dispatch`` killed with SIGKILL at ``step`` (ORCH_CRASH_AT), once the git
    processes it had started are done too (a checkout outlives a killed dispatch, as
    any git process does; an operator's doctor runs after it)."""
    proc = run_orch("dispatch", "--prompt", "p", task_key, cwd=repo, env={"ORCH_CRASH_AT": step})
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)
    wait_for_git_under(repo.parent)


def worktree_dir(run_cli: RunCli, repo: Path) -> Path:
    """The directory orch puts this repository's worktrees in (from a real attempt)."""
    probe = dispatch(run_cli, repo, "probe")
    cancel(run_cli, repo, probe["id"])
    return Path(probe["worktree_path"]).parent


def orphan_worktree(repo: Path, root: Path, name: str, branch: str | None = None) -> dict[str, str]:
    """A worktree under orch's root that no row owns, with a commit and uncommitted work."""
    path = root / name
    branch = branch or f"orch/{name}"
    git("worktree", "add", "-q", "-b", branch, str(path), cwd=repo)
    (path / "stray.txt").write_text(f"committed in the stray worktree {name}\n")
    git("add", "stray.txt", cwd=path)
    git("commit", "-q", "-m", "stray commit", cwd=path)
    (path / "src/d0/f0.txt").write_text("edited in a stray worktree\n")
    (path / "loose.txt").write_text("untracked in a stray worktree\n")
    return {
        "path": str(path),
        "branch": branch,
        "commit": git("rev-parse", "HEAD", cwd=path).strip(),
    }


def orphan_branch(repo: Path, name: str, unique: bool = True) -> str:
    """``orch/<name>`` that no row owns, at a commit no other branch holds (if ``unique``)."""
    if unique:
        tree = git("rev-parse", "HEAD^{tree}", cwd=repo).strip()
        sha = git("commit-tree", tree, "-p", "HEAD", "-m", f"only on {name}", cwd=repo).strip()
    else:
        sha = git("rev-parse", "HEAD", cwd=repo).strip()
    git("branch", f"orch/{name}", sha, cwd=repo)
    return sha
