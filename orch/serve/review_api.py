"""The dashboard's review reads: an attempt's diff and one file's patch, a task's
comparison, an attempt's check runs with their output.

Each answer is built by the use case its command uses (``orch diff --json``,
``orch compare TASK --json``, the runs ``orch check`` records), so the dashboard and the
command line never disagree; nothing here runs git or reads the store itself. Whatever the
repository or an agent wrote (file names, commit subjects, log lines) leaves here as JSON
text, and the page shows it as text only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orch.attempts.check import check_logs
from orch.attempts.compare import compare_task
from orch.attempts.review import (
    attempt_diff,
    changes,
    diff_body,
    file_patch,
    locate,
    name_from_base64,
)
from orch.config import Settings
from orch.errors import InvalidInput
from orch.git import Git

if TYPE_CHECKING:
    from orch.store import Store

Query = dict[str, list[str]]
CHECK_LOG_LINES = 60  # lines of each check run's output the check view shows


def attempt_diff_body(
    store: Store, settings: Settings, attempt_id: str, query: Query
) -> dict[str, Any]:
    """``GET /api/attempts/ID/diff[?committed=1]``: the body of ``orch diff ID --json``."""
    committed = _flag(query, "committed")
    git = Git(settings.git_lock_timeout)
    found = locate(store, git, attempt_id, committed=committed)
    return diff_body(found, changes(git, found), committed=committed)


def file_patch_body(
    store: Store, settings: Settings, attempt_id: str, query: Query
) -> dict[str, Any]:
    """``GET /api/attempts/ID/diff/file?path=NAME`` (or ``path_base64=`` for a name that
    is not UTF-8): the file as ``orch diff --json`` lists it and its patch."""
    path = _one(query, "path")
    encoded = _one(query, "path_base64")
    if (path is None) == (encoded is None):
        raise InvalidInput("name the file with either 'path' or 'path_base64'")
    name = path if path is not None else name_from_base64(encoded or "")
    committed = _flag(query, "committed")
    git = Git(settings.git_lock_timeout)
    with attempt_diff(store, git, attempt_id, committed=committed) as found:
        return {"attempt": found.attempt.id, **file_patch(git, found, name).to_dict()}


def compare_body(store: Store, settings: Settings, task_key: str) -> dict[str, Any]:
    """``GET /api/compare/TASK``: the body of ``orch compare TASK --json``."""
    return compare_task(store, Git(settings.git_lock_timeout), task_key).to_dict()


def checks_body(store: Store, settings: Settings, attempt_id: str, query: Query) -> dict[str, Any]:
    """``GET /api/attempts/ID/checks``: its check runs, newest first, each with the tail
    of its output."""
    attempt, found = check_logs(store, settings, attempt_id, CHECK_LOG_LINES)
    return {
        "attempt": attempt.id,
        "task_key": attempt.task_key,
        "checks": [c.to_dict() for c in found],
    }


# what follows /api/attempts/ID/ -> the read that answers it
ATTEMPT_READS: dict[tuple[str, ...], Callable[[Store, Settings, str, Query], dict[str, Any]]] = {
    ("diff",): attempt_diff_body,
    ("diff", "file"): file_patch_body,
    ("checks",): checks_body,
}


def _one(query: Query, name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise InvalidInput(f"bad query: '{name}' given {len(values)} times")
    return values[0] if values else None


def _flag(query: Query, name: str) -> bool:
    value = _one(query, name)
    if value in (None, "", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise InvalidInput(f"bad query: '{name}' is 1 or 0, not {value!r}")
