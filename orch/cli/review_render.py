"""The body of ``orch compare A B --json`` (no click, no I/O; the text forms are git's own
output, passed through by orch.cli.review_commands). ``orch diff --json``'s body is
``orch.attempts.review.diff_body``, which the dashboard serves too.

A file name need not be UTF-8: ``path`` shows it with replacement characters, and
``path_base64`` (only then) gives its exact bytes, so that every JSON reader can use it.
"""

from __future__ import annotations

from typing import Any

from orch.attempts.review import AttemptDiff, Changes, Comparison, file_dict
from orch.git import FileChange


def comparison_body(found: Comparison, files: list[FileChange], worktree: bool) -> dict[str, Any]:
    """The body of ``orch compare A B --json``."""

    def side(diff: AttemptDiff) -> dict[str, Any]:
        return {
            "attempt": diff.attempt.id,
            "task_key": diff.attempt.task_key,
            "tip": diff.tip,
            "source": diff.source,
            "notes": list(diff.notes),
        }

    totals = Changes(files=tuple(files)).totals()
    del totals["commits"]  # a comparison of two tips has no commits of its own
    return {
        "from": side(found.first),
        "to": side(found.second),
        "worktree": worktree,
        "files": [file_dict(f) for f in files],
        "totals": totals,
    }
