"""What cleanup saved, restored with plain git and tar.

Restoring happens in a fresh clone that holds only reachable objects, so a commit counts
as saved only if the archive really carries it. Never trusts orch to restore its own work.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.support.repos import fresh_clone, git, reachable_from_a_branch


def archives(home: Path) -> list[Path]:
    root = home / "archive"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def manifest(archive: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((archive / "manifest.json").read_text())
    return loaded


def restore_commits(archive: Path, clone: Path) -> list[str]:
    """Run the manifest's own ``git fetch`` commands in ``clone``; return the fetched refs."""
    text = manifest(archive)["files"]["commits.bundle"]
    assert text.startswith("commits: ")
    fetched = []
    for command in text.removeprefix("commits: ").split("; "):
        argv = shlex.split(command)
        assert argv[:2] == ["git", "fetch"], command
        git("fetch", "-q", *argv[2:], cwd=clone)
        fetched.append(argv[-1].split(":", 1)[1])
    return fetched


def restore_worktree(archive: Path, clone: Path, start: str, dest: Path) -> Path:
    """A fresh worktree of ``clone`` at ``start`` with the saved patch and files restored."""
    git("worktree", "add", "-q", "--detach", str(dest), start, cwd=clone)
    files = manifest(archive)["files"]
    if "uncommitted.patch" in files:
        git("apply", str(archive / "uncommitted.patch"), cwd=dest)
    if "untracked.tar.gz" in files:
        subprocess.run(
            ["tar", "-C", str(dest), "-xzf", str(archive / "untracked.tar.gz")], check=True
        )
    return dest


def tarball_names(archive: Path) -> list[str]:
    with tarfile.open(archive / "untracked.tar.gz") as tar:
        return sorted(tar.getnames())


def commit_is_kept(repo: Path, home: Path, commit: str, scratch: Path) -> bool:
    """On a branch of ``repo``, or fetchable back from an archive bundle into a fresh clone."""
    if reachable_from_a_branch(repo, commit):
        return True
    for n, archive in enumerate(archives(home)):
        # an archive whose manifest was never written (killed while saving) counts for nothing
        if not (archive / "manifest.json").is_file():
            continue
        if "commits.bundle" not in manifest(archive)["files"]:
            continue
        clone = fresh_clone(repo, scratch / f"clone-{n}")
        for ref in restore_commits(archive, clone):
            proc = subprocess.run(
                ["git", "merge-base", "--is-ancestor", commit, ref], cwd=clone, capture_output=True
            )
            if proc.returncode == 0:
                return True
    return False
