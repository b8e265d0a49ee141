"""The event document (version 1, ``orch/schemas/event-v1.schema.json``): what a hook
reads on its standard input, a webhook receives as its body and ``orch events --json``
prints. Built here, once, from the event and its attempt; never written to disk."""

from __future__ import annotations

from typing import Any

from orch.models import Attempt, AttemptEvent

VERSION = 1


def document(event: AttemptEvent, attempt: Attempt | None) -> dict[str, Any]:
    """The event as its sinks see it; ``attempt`` is the attempt as it is now."""
    return {
        "version": VERSION,
        "id": event.id,
        "kind": event.kind,
        "state": str(event.state) if event.state else None,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor,
        "attempt_id": event.attempt_id,
        "detail": event.detail,
        "attempt": None if attempt is None else _attempt(attempt),
    }


def _attempt(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "task_key": a.task_key,
        "attempt_number": a.attempt_number,
        "state": str(a.state),
        "workspace_status": str(a.workspace_status),
        "repository": a.repository,
        "base_ref": a.base_ref,
        "base_commit": a.base_commit,
        "branch_name": a.branch_name,
        "worktree_path": a.worktree_path,
        "phase": a.phase,
        "worker": a.worker,
        "reason": a.reason,
        "exit_code": a.exit_code,
    }


def hook_environment(doc: dict[str, Any], key: str) -> dict[str, str]:
    """The ``ORCH_*`` variables a hook gets (the document itself is on its standard input).

    ``ORCH_STATE`` is the state the event moved the attempt into, else the attempt's
    state as it is now."""
    attempt = doc["attempt"] or {}
    values = {
        "ORCH_EVENT": doc["kind"],
        "ORCH_EVENT_ID": doc["id"],
        "ORCH_DELIVERY": key,
        "ORCH_ATTEMPT_ID": doc["attempt_id"],
        "ORCH_TASK_KEY": attempt.get("task_key"),
        "ORCH_ATTEMPT_NUMBER": attempt.get("attempt_number"),
        "ORCH_STATE": doc["state"] or attempt.get("state"),
        "ORCH_WORKSPACE_STATUS": attempt.get("workspace_status"),
        "ORCH_REPOSITORY": attempt.get("repository"),
        "ORCH_BASE_COMMIT": attempt.get("base_commit"),
        "ORCH_BRANCH": attempt.get("branch_name"),
        "ORCH_WORKTREE": attempt.get("worktree_path"),
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def notification(doc: dict[str, Any]) -> tuple[str, str]:
    """A desktop notification's title and message."""
    attempt = doc["attempt"] or {}
    what = doc["state"] or doc["kind"].replace("_", " ")
    title = f"orch: {attempt.get('task_key', doc['attempt_id'])} {what}"
    parts = [f"attempt {doc['attempt_id']}"]
    if attempt.get("branch_name"):
        parts.append(f"branch {attempt['branch_name']}")
    if doc["detail"].get("reason"):
        parts.append(str(doc["detail"]["reason"]))
    return title, " · ".join(parts)
