"""The inbox: the worker-facing JSON copy of each attempt.

Owns the payload format (versioned, described by ``orch/schemas/payload-v1.schema.json``)
and the only code that writes or reads payload files. Writes are atomic (temp file in the
same directory, fsync, rename) with mode 0600 in a 0700 directory, so a reader never sees
half a payload and a crash leaves either the old file or the new one. Readers reject
versions newer than this orch understands and upgrade older ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from orch import atomic, private
from orch.errors import PayloadError, WorkspaceError, describe_os_error
from orch.models import Attempt

SCHEMA_VERSION = 1
SCHEMA_FILE = "payload-v1.schema.json"
# version N -> function that turns a version-N payload into version N+1
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def payload_path(inbox_dir: Path, attempt_id: str) -> Path:
    return inbox_dir / f"{attempt_id}.json"


def worker_commands(attempt_id: str) -> dict[str, list[str]]:
    lease = "{lease}"

    def finish(state: str, exit_code: str) -> list[str]:
        return [
            "orch",
            "finish",
            attempt_id,
            "--lease",
            lease,
            "--state",
            state,
            "--exit-code",
            exit_code,
        ]

    return {
        "claim": ["orch", "claim", attempt_id, "--json"],
        "heartbeat": ["orch", "heartbeat", attempt_id, "--lease", lease],
        "finish_succeeded": finish("succeeded", "0"),
        "finish_failed": finish("failed", "1"),
        "show": ["orch", "show", attempt_id, "--json"],
    }


def build_payload(
    attempt: Attempt,
    *,
    orch_home: Path,
    lease_ttl: float,
    ports: dict[str, int] | None = None,
    prompt_history: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``prompt_history``: every prompt the attempt's agent was given, oldest first (a
    continuation's starts with those of the attempt it continues); default its prompt."""
    return {
        "schema_version": SCHEMA_VERSION,
        "attempt_id": attempt.id,
        "attempt_number": attempt.attempt_number,
        "task_key": attempt.task_key,
        "prompt": attempt.prompt,
        "prompt_history": list(prompt_history or [attempt.prompt]),
        "repository": attempt.repository,
        "base_ref": attempt.base_ref,
        "base_commit": attempt.base_commit,
        "branch_name": attempt.branch_name,
        "worktree_path": attempt.worktree_path,
        "workspace_status": str(attempt.workspace_status),
        "state": str(attempt.state),
        "worker": attempt.worker,
        "phase": attempt.phase,
        "host": attempt.workspace_host,
        "ports": dict(ports or {}),
        "checkout": {
            "sparse_paths": list(attempt.sparse_paths) if attempt.sparse_paths else None,
            "submodules": attempt.submodules,
            "lfs_skip_smudge": bool(attempt.lfs_skip_smudge),
        },
        "lease": {"ttl_seconds": lease_ttl},
        "commands": worker_commands(attempt.id),
        "orch_home": str(orch_home),
        "created_at": attempt.created_at.isoformat(),
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically with mode 0600 in a 0700 directory."""
    data = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        private.make_dir(path.parent)
        atomic.write_text(path, data, durable=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot write the payload {path}: {describe_os_error(exc)}") from exc


def remove_payload(path: Path) -> None:
    """Remove the payload if it is there (rollback: the inbox may not even be a directory)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        path.unlink()


def schema() -> dict[str, Any]:
    text = resources.files("orch.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(payload: dict[str, Any], source: str) -> None:
    import jsonschema  # heavy: only when a payload is actually read

    try:
        jsonschema.validate(payload, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise PayloadError(f"invalid payload {source}: {where}: {exc.message}") from exc


def read_payload(path: Path) -> dict[str, Any]:
    """Read, upgrade and validate a payload; one clear ``PayloadError`` for any problem."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PayloadError(f"no payload at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PayloadError(f"cannot read the payload {path}: {exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"corrupt payload {path}: not JSON ({exc.msg} at line {exc.lineno})"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise PayloadError(f"corrupt payload {path}: no integer schema_version")
    version = data["schema_version"]
    if version > SCHEMA_VERSION:
        raise PayloadError(
            f"payload {path} has schema version {version}; this orch reads up to "
            f"{SCHEMA_VERSION}: upgrade orch"
        )
    while version < SCHEMA_VERSION:
        upgrade = _UPGRADES.get(version)
        if upgrade is None:
            raise PayloadError(f"payload {path} has unsupported schema version {version}")
        data = upgrade(data)
        version = data["schema_version"]
    validate(data, str(path))
    result: dict[str, Any] = data
    return result
