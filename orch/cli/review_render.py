"""The JSON bodies of ``orch diff --json`` and ``orch compare A B --json`` (no click, no
I/O; the text forms are git's own output, passed through by orch.cli.review_commands).

A file name need not be UTF-8: ``path`` shows it with replacement characters, and
``path_base64`` (only then) gives its exact bytes, so that every JSON reader can use it.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from orch.attempts.review import AttemptDiff, Changes, Comparison
from orch.git import FileChange


def diff_body(diff: AttemptDiff, found: Changes, *, committed: bool) -> dict[str, Any]:
    """The body of ``orch diff --json``."""
    attempt = diff.attempt
    return {
        "attempt": attempt.id,
        "task_key": attempt.task_key,
        "base_commit": diff.range.base,
        "tip": diff.tip,
        "source": diff.source,
        "committed_only": committed,
        "branch_name": attempt.branch_name,
        "worktree_path": attempt.worktree_path,
        "archive_path": attempt.archive_path,
        "notes": list(diff.notes),
        "files": [file_dict(f) for f in found.files],
        "commits": [dataclasses.asdict(c) for c in found.commits],
        "totals": found.totals(),
    }


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


def file_dict(change: FileChange) -> dict[str, Any]:
    """One changed file."""
    out: dict[str, Any] = {"path": _text(change.path)}
    if change.old_path is not None:
        out["old_path"] = _text(change.old_path)
    out.update(
        status=change.status,
        additions=change.additions,
        deletions=change.deletions,
        binary=change.binary,
    )
    for key, name in (("path", change.path), ("old_path", change.old_path)):
        raw = _not_utf8(name) if name is not None else None
        if raw is not None:
            out[f"{key}_base64"] = base64.b64encode(raw).decode("ascii")
    return out


def _text(name: str) -> str:
    """The name as text (git's bytes were decoded with surrogate escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _not_utf8(name: str) -> bytes | None:
    """The name's bytes when they are not UTF-8 (None when they are)."""
    raw = name.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None
