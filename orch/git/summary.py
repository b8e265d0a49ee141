"""Counting what an attempt changed: commits ahead of its base, files, lines added and
removed; the tips of many branches at once; the paths a range changed.

Every command here is read-only and runs with ``--no-optional-locks``: the directory it
runs in may be a worktree where an agent is committing. Names travel NUL-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orch.git.runner import Runner
from orch.models import ChangeSummary


class Summaries(Runner):
    def change_summary(self, where: Path, base: str, tip: str) -> ChangeSummary:
        """What ``tip`` changed against ``base`` (run in ``where``, a worktree or the main
        worktree of the repository): two git processes, ``rev-list --count`` and
        ``diff --numstat``."""
        ahead = self.commits_ahead(where, base, tip)
        added = removed = files = 0
        for adds, dels in numstat(self._numstat(where, [base, tip])):
            files += 1
            added += adds or 0
            removed += dels or 0
        return ChangeSummary(tip, ahead, files, added, removed)

    def commits_ahead(self, where: Path, base: str, tip: str) -> int:
        """How many commits ``tip`` has that ``base`` has not."""
        out = self.run(
            ["--no-optional-locks", "rev-list", "--count", "--end-of-options", f"{base}..{tip}"],
            cwd=where,
        ).stdout.strip()
        return int(out or 0)

    def _numstat(self, where: Path, commits: Sequence[str]) -> str:
        return self.run(
            [
                "--no-optional-locks",
                "diff",
                "--no-renames",
                "--numstat",
                "-z",
                "--no-color",
                "--end-of-options",
                *commits,
                "--",
            ],
            cwd=where,
        ).stdout

    def branch_tips(self, where: Path, branches: Sequence[str]) -> dict[str, str]:
        """Branch name -> the commit it points at, for those of ``branches`` that exist:
        one ``for-each-ref`` for all of them."""
        if not branches:
            return {}
        out = self.run(
            [
                "--no-optional-locks",
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                *(f"refs/heads/{b}" for b in branches),
            ],
            cwd=where,
        ).stdout
        tips = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            tips[ref.removeprefix("refs/heads/")] = sha
        return tips

    def changed_paths(self, where: Path, base: str, tip: str) -> list[str]:
        """The paths ``tip`` changed against ``base`` (one ``diff --name-only``)."""
        out = self.run(
            [
                "--no-optional-locks",
                "diff",
                "--no-renames",
                "--name-only",
                "-z",
                "--end-of-options",
                base,
                tip,
                "--",
            ],
            cwd=where,
        ).stdout
        return [p for p in out.split("\0") if p]


def numstat(out: str) -> list[tuple[int | None, int | None]]:
    """Lines added and removed per file of ``git diff --numstat -z --no-renames`` (None
    for a binary file): ``adds\\tdels\\tpath\\0`` per file."""
    counts: list[tuple[int | None, int | None]] = []
    for entry in out.split("\0"):
        if not entry:
            continue
        adds, dels, _path = entry.split("\t", 2)
        counts.append((None, None) if adds == "-" else (int(adds), int(dels)))
    return counts
