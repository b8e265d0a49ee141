"""Pushing an attempt's branch to the repository's remote (``orch pr``).

A push names its ref on both sides (``refs/heads/<branch>``) and never forces: a remote
branch that moved since is refused by the remote, not overwritten.
"""

from __future__ import annotations

from orch.git.refs import Repository
from orch.git.runner import Runner


class Pushing(Runner):
    def remotes(self, repo: Repository) -> list[str]:
        """The repository's remotes, by name (``git remote``)."""
        proc = self.run(["remote"], cwd=repo.root, check=False)
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    def push_branch(self, repo: Repository, remote: str, branch: str) -> None:
        """Push ``branch`` to ``remote`` under the same name; raise ``GitError``."""
        ref = f"refs/heads/{branch}"
        self.run(["push", "--quiet", "--porcelain", remote, f"{ref}:{ref}"], cwd=repo.root)
