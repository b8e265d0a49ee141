"""Real git repositories: making one, and asking git what is in it.

Every answer comes from git itself; nothing here reads git's administrative files. git's
worktree list is read with orch's own parser of it (tested in tests/unit/test_porcelain.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from orch.git.worktrees import parse_worktree_list


def git(*args: str, cwd: Path, check: bool = True) -> str:
    """Run git in ``cwd`` and return its standard output (unstripped)."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {proc.stdout}{proc.stderr}")
    return proc.stdout


def new_repo(repo: Path, files: int = 3, commits: int = 1) -> Path:
    """A repository at ``repo`` with ``files`` committed files and ``commits`` commits."""
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    for i in range(files):
        sub = repo / "src" / f"d{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "initial", cwd=repo)
    for c in range(1, commits):
        (repo / "history.txt").write_text(f"commit {c}\n")
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", f"commit {c}", cwd=repo)
    return repo


def commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return head(repo)


def head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path).strip()


def branch_tip(repo: Path, branch: str) -> str | None:
    """The commit ``refs/heads/<branch>`` points at, or None when there is no such branch."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() or None


def orch_branches(repo: Path) -> list[str]:
    out = git("for-each-ref", "--format=%(refname)", "refs/heads/orch/", cwd=repo)
    return out.split()


def worktrees(repo: Path) -> list[dict[str, str]]:
    """``git worktree list --porcelain``, one dict per worktree, main worktree first."""
    return parse_worktree_list(git("worktree", "list", "--porcelain", cwd=repo))


def worktrees_by_path(repo: Path) -> dict[Path, dict[str, str]]:
    """``git worktree list --porcelain`` keyed by resolved worktree path."""
    return {Path(entry["worktree"]).resolve(): entry for entry in worktrees(repo)}


def reachable_from_a_branch(repo: Path, commit: str) -> bool:
    out = git("for-each-ref", "--contains", commit, "--format=%(refname)", "refs/heads/", cwd=repo)
    return bool(out.strip())


def fresh_clone(repo: Path, dest: Path) -> Path:
    """A clone holding only what the repository's refs reach (no shared object store)."""
    git("clone", "-q", "--no-local", str(repo), str(dest), cwd=repo.parent)
    return dest


def inside(path: str | Path, root: Path) -> bool:
    """``path`` lies strictly below ``root`` (both resolved)."""
    resolved, top = Path(path).resolve(), root.resolve()
    return resolved != top and resolved.is_relative_to(top)


def repo_root(repo: Path) -> str:
    """The repository as the store records it (resolved)."""
    return str(repo.resolve())
