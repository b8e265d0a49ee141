"""Saving work: the bytes of a worktree's uncommitted changes (a binary patch), the names
of its untracked files, and a bundle of the commits nothing else keeps.

These only read the repository (a bundle of a detached HEAD needs a short-lived ref of
its own, removed again); the caller decides where the archive goes and whether anything
is removed afterwards (orch.workspace.salvage). Nothing here removes a worktree or branch.
"""

from __future__ import annotations

import os
from pathlib import Path

from orch import private
from orch.errors import GitError, WorkspaceError, describe_os_error
from orch.git.refs import Refs, Repository
from orch.git.runner import Runner, last_line


def save_patch(git: Runner, worktree: Path, dest: Path) -> bool:
    """Write the uncommitted changes to tracked files (staged and not) as a binary patch."""
    patch = git.output_bytes(["--no-optional-locks", "diff", "HEAD", "--binary"], cwd=worktree)
    if not patch:
        return False
    # written here, not with `git diff --output`, which ignores a failed write (full disk)
    try:
        with private.create_new(dest) as fh:
            fh.write(patch)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise WorkspaceError(
            f"cannot save uncommitted changes to {dest}: {describe_os_error(exc)}"
        ) from exc
    return True


def untracked_files(git: Runner, worktree: Path) -> list[str]:
    out = git.run(
        ["--no-optional-locks", "ls-files", "-z", "--others", "--exclude-standard"], cwd=worktree
    ).stdout
    return [p for p in out.split("\0") if p]


def save_bundle(
    git: Refs, repo: Repository, head: str | None, branch: str | None, dest: Path, name: str
) -> list[str]:
    """Bundle the commits that only ``branch`` and ``head`` reach; return the bundle's refs.

    Restorable with ``git fetch <bundle> <ref>:<ref>``. A detached ``head`` gets a
    short-lived ref of its own (``refs/orch-archive/<name>``) because a bundle carries refs.
    """
    refs: list[str] = []
    temp = None
    branch_tip = git.branch_commit(repo, branch) if branch else None
    if branch_tip:
        refs.append(f"refs/heads/{branch}")
    if head and head != branch_tip:
        temp = f"refs/orch-archive/{name}"
        git.run(["update-ref", temp, head], cwd=repo.root)
        refs.append(temp)
    if not refs:
        return []
    try:
        exclude = [f"--exclude={branch}"] if branch else []
        proc = git.run(
            ["bundle", "create", str(dest), *refs, "--not", *exclude, "--branches", "--remotes"],
            cwd=repo.root,
            check=False,
        )
    finally:
        if temp:
            git.run(["update-ref", "-d", temp], cwd=repo.root, check=False)
    if proc.returncode != 0 and "empty bundle" in proc.stderr.lower():
        return []
    if proc.returncode != 0:
        raise GitError(f"git bundle failed: {last_line(proc.stderr)}")
    private.fix(dest)  # git makes it with the umask's mode; saved work is private
    # git leaves out a ref whose tip another branch already keeps: name only what it holds
    heads = git.run(["bundle", "list-heads", str(dest.absolute())], cwd=repo.root).stdout
    held = {line.split(" ", 1)[1] for line in heads.splitlines() if " " in line}
    return [ref for ref in refs if ref in held]
