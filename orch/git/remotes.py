"""An attempt's branch and the repository's remotes: ``orch work`` pushes the branch when a
run ends (``push = true``), ``orch pr`` pushes it before opening a pull request, and
``orch land`` on another host fetches it. None of them ever prompts (a remote that wants
a password fails), and a push never overwrites a commit it has not seen (a lease)."""

from __future__ import annotations

from orch.git.refs import Refs, Repository
from orch.git.runner import last_line

_NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0"}


class Remotes(Refs):
    def remotes(self, repo: Repository) -> list[str]:
        """The repository's remotes, by name (``git remote``)."""
        proc = self.run(["remote"], cwd=repo.root, check=False)
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    def push_branch(self, repo: Repository, remote: str, branch: str) -> str | None:
        """Push ``refs/heads/<branch>`` to the same name on ``remote``; None when pushed, or
        git's last line. The branch is the attempt's own, which its agent may rewrite (a
        rebase after a conflict), so it is pushed with a lease: what the remote has must be
        what this repository last pushed or fetched of it, never someone else's commit."""
        ref = f"refs/heads/{branch}"
        proc = self.run(
            ["push", "--quiet", "--porcelain", f"--force-with-lease={ref}", remote, f"{ref}:{ref}"],
            cwd=repo.root,
            check=False,
            env=_NO_PROMPT,
        )
        return None if proc.returncode == 0 else last_line(proc.stderr or proc.stdout)

    def fetch_branch(self, repo: Repository, remote: str, branch: str) -> tuple[str | None, str]:
        """Fetch ``refs/heads/<branch>`` from ``remote`` into ``refs/remotes/<remote>/<branch>``:
        its commit, or None and git's last line (a branch the remote has not got, a remote
        that cannot be reached)."""
        tracking = f"refs/remotes/{remote}/{branch}"
        proc = self.run(
            ["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{tracking}"],
            cwd=repo.root,
            check=False,
            env=_NO_PROMPT,
        )
        if proc.returncode != 0:
            return None, last_line(proc.stderr)
        return self.verified(repo, tracking), ""

    def tracking_commit(self, repo: Repository, remote: str, branch: str) -> str | None:
        """What this repository last pushed to or fetched from ``remote``'s ``branch``
        (``refs/remotes/<remote>/<branch>``); None when it never did."""
        return self.verified(repo, f"refs/remotes/{remote}/{branch}^{{commit}}")

    def delete_remote_branch(
        self, repo: Repository, remote: str, branch: str, expected: str
    ) -> str | None:
        """Delete ``branch`` on ``remote`` only while it is at ``expected`` (a lease: a
        commit pushed there since is never lost); None when deleted, or git's last line."""
        ref = f"refs/heads/{branch}"
        proc = self.run(
            [
                "push",
                "--quiet",
                "--porcelain",
                f"--force-with-lease={ref}:{expected}",
                remote,
                f":{ref}",
            ],
            cwd=repo.root,
            check=False,
            env=_NO_PROMPT,
        )
        return None if proc.returncode == 0 else last_line(proc.stderr or proc.stdout)
