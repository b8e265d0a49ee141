"""A store with a long history: ended, cleaned-up attempts with the shape of real rows.

60% succeeded, 25% failed, 10% cancelled, 5% timed out; every workspace cleaned up (one
in ten archived, with its archive path); 8 events and one agent run each, a delivered
follow-up message for one in four, one finished task in the queue (``orch submit``) for
each task key (one in three attempts), and the delivery of each "finished" event to a
webhook sink. Written by bulk
inserts through the store's own tables (``orch.store.tables``), thousands of rows per
statement, so that 100k attempts take seconds, not the hours one ``create_attempt`` per
row would. Used by the history tests (a store big enough that a full scan shows in a
query plan) and by ``bench/history_bench.py``, which runs this module as a script:
``python -m tests.support.history URL COUNT [REPOSITORY]``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from orch.store.tables import (
    attempt_events,
    attempt_messages,
    attempt_runs,
    attempts,
    event_deliveries,
    queued_tasks,
)

if TYPE_CHECKING:
    from orch.store import Store

# the history ends this long before now, spread one attempt a minute further back
ENDED_AGO = dt.timedelta(days=1)
CHUNK = 2000  # attempts per insert statement (SQLite allows 32,766 bound values)
_STATES = ("succeeded",) * 12 + ("failed",) * 5 + ("cancelled",) * 2 + ("timed_out",)
_KINDS = (
    "created",
    "provisioned",
    "claimed",
    "run_started",
    "heartbeat",
    "run_ended",
    "finished",
    "workspace_removed",
)


def history_id(n: int) -> str:
    """The id of the n-th seeded attempt: ``h`` and 7 digits, apart from real (hex) ids."""
    return f"h{n:07d}"


def seed(
    store: Store,
    count: int,
    repository: str = "/src/history",
    now: dt.datetime | None = None,
    start: int = 0,
) -> None:
    """Add ``count`` ended, cleaned-up attempts of ``repository`` to ``store``."""
    now = now or store.clock()
    newest = now - ENDED_AGO
    for first in range(start, start + count, CHUNK):
        last = min(first + CHUNK, start + count)
        rows, events, runs, messages, tasks = [], [], [], [], []
        for n in range(first, last):
            rows.append(_attempt(n, repository, newest - dt.timedelta(minutes=n)))
            events.extend(_events(rows[-1]))
            runs.append(_run(rows[-1]))
            if n % 4 == 0:  # a follow-up sent to one attempt in four
                messages.append(_message(rows[-1]))
            if n % 3 == 0:  # each task was submitted to the queue once, and is done
                tasks.append(_task(rows[-1]))
        with store.engine.begin() as conn:
            conn.execute(insert(attempts), rows)
            conn.execute(insert(attempt_events), events)
            conn.execute(insert(attempt_runs), runs)
            if messages:
                conn.execute(insert(attempt_messages), messages)
            if tasks:
                conn.execute(insert(queued_tasks), tasks)
            # each attempt's "finished" event went to a webhook sink: one delivery each
            finished = conn.execute(
                select(
                    attempt_events.c.id, attempt_events.c.attempt_id, attempt_events.c.created_at
                )
                .where(attempt_events.c.kind == "finished")
                .where(attempt_events.c.attempt_id.in_([r["id"] for r in rows]))
            ).all()
            conn.execute(insert(event_deliveries), [_delivery(*f) for f in finished])


def _attempt(n: int, repository: str, finished: dt.datetime) -> dict[str, Any]:
    attempt_id = history_id(n)
    task = f"history-{n // 3}"  # a task tried about three times
    archived = n % 10 == 0
    created = finished - dt.timedelta(minutes=20)
    return {
        "id": attempt_id,
        "task_key": task,
        "attempt_number": n % 3 + 1,
        "state": _STATES[n % len(_STATES)],
        "workspace_status": "archived" if archived else "removed",
        "repository": repository,
        "base_ref": "main",
        "base_commit": f"{n:040x}",
        "branch_name": f"orch/{task}-{attempt_id}",
        "worktree_path": f"/worktrees/history/{task}-{attempt_id}",
        "worker": "claude",
        "payload_path": None,
        "archive_path": f"/orch/archive/{task}-{attempt_id}" if archived else None,
        "prompt": f"Fix issue {n} in the parser and add a test for it. " * 4,
        "summary": "done",
        "lease_token": 2,
        "exit_code": 0,
        "commits_ahead": 2,
        "files_changed": 3,
        "lines_added": 40,
        "lines_removed": 7,
        "created_at": created,
        "updated_at": finished,
        "finished_at": finished,
    }


def _events(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "attempt_id": row["id"],
            "kind": kind,
            "actor": "worker@host",
            "detail": {"step": i},
            "created_at": row["created_at"] + dt.timedelta(minutes=2 * i),
            "state": row["state"] if kind == "finished" else None,
        }
        for i, kind in enumerate(_KINDS)
    ]


def _run(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempt_id": row["id"],
        "number": 1,
        "prompt": row["prompt"],
        "command": ["claude", "-p"],
        "started_at": row["created_at"],
        "ended_at": row["finished_at"],
        "exit_code": 0,
        "kind": "agent",
        "timed_out": False,
    }


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempt_id": row["id"],
        "body": "also update the changelog",
        "actor": "operator@host",
        "created_at": row["created_at"] + dt.timedelta(minutes=5),
        "delivered_at": row["created_at"] + dt.timedelta(minutes=6),
        "run_number": 1,
    }


def _delivery(event_id: int, attempt_id: str, created: dt.datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "attempt_id": attempt_id,
        "sink": "webhook",
        "state": "delivered",
        "tries": 1,
        "next_try_at": created,
        "delivered_at": created + dt.timedelta(seconds=1),
        "created_at": created,
    }


def _task(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_key": row["task_key"],
        "repository": row["repository"],
        "base_ref": "main",
        "prompt": row["prompt"],
        "workers": [row["worker"]],
        "attempts": 1,
        "state": "done",
        "attempt_id": row["id"],
        "actor": "operator@host",
        "created_at": row["created_at"] - dt.timedelta(minutes=1),
        "updated_at": row["finished_at"],
    }


def main(argv: list[str]) -> None:
    import tempfile
    from pathlib import Path

    from orch.store import open_store

    url, count = argv[0], int(argv[1])
    repository = argv[2] if len(argv) > 2 else "/src/history"
    with tempfile.TemporaryDirectory() as locks:
        store = open_store(url, Path(locks), auto_migrate=True)
        try:
            seed(store, count, repository)
        finally:
            store.close()


if __name__ == "__main__":
    main(sys.argv[1:])
