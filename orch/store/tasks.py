"""The task queue: tasks submitted with ``orch submit`` and their way to an attempt.

Every change of a queued task is a compare-and-set on its state, so a loop that crashed
half-way, or two loops by mistake, never dispatch one submission twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update

from orch.errors import Conflict, NotFound
from orch.models import QueuedTask, TaskState
from orch.store.base import StoreBase, _stamp
from orch.store.bounded import counts_by
from orch.store.tables import queued_tasks as _Q


def _to_task(row: Any) -> QueuedTask:
    return QueuedTask(
        id=row.id,
        task_key=row.task_key,
        repository=row.repository,
        base_ref=row.base_ref,
        prompt=row.prompt,
        workers=tuple(row.workers or ()),
        attempts=row.attempts,
        state=TaskState(row.state),
        attempt_id=row.attempt_id,
        attempt_ids=None if row.attempt_ids is None else tuple(row.attempt_ids),
        reason=row.reason,
        actor=row.actor,
        created_at=_stamp(row.created_at),
        updated_at=_stamp(row.updated_at),
    )


class TaskOps(StoreBase):
    def submit_task(
        self,
        task_key: str,
        repository: str,
        base_ref: str | None,
        prompt: str,
        workers: tuple[str, ...],
        attempts: int,
        actor: str,
    ) -> QueuedTask:
        """Record a ready task; nothing is provisioned until the loop dispatches it."""
        with self._write() as conn:
            now = self.clock()
            row = conn.execute(
                insert(_Q)
                .values(
                    task_key=task_key,
                    repository=repository,
                    base_ref=base_ref,
                    prompt=prompt,
                    workers=list(workers),
                    attempts=attempts,
                    state=str(TaskState.READY),
                    actor=actor[:255],
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_Q.c)
            ).one()
        return _to_task(row)

    def queued_tasks(
        self, states: Iterable[TaskState] = (), newest: int | None = None
    ) -> list[QueuedTask]:
        """Queued tasks, oldest first (the order the loop dispatches them in); ``newest``:
        only the newest that many (read down the key, however many tasks ended before)."""
        query = select(_Q)
        wanted = [str(st) for st in states]
        if wanted:
            query = query.where(_Q.c.state.in_(wanted))
        if newest is not None:
            query = query.order_by(_Q.c.id.desc()).limit(newest)
        with self._read() as conn:
            return sorted((_to_task(r) for r in conn.execute(query)), key=lambda t: t.id)

    def drop_task(self, task_id: int, actor: str) -> QueuedTask:
        """Take a ready task out of the queue before the loop dispatches it (``failed``,
        its reason saying who dropped it): a compare-and-set on ``ready``, so a task the
        loop has begun dispatching is refused, never cut off."""
        with self._write() as conn:
            row = conn.execute(
                update(_Q)
                .where(_Q.c.id == task_id, _Q.c.state == str(TaskState.READY))
                .values(
                    state=str(TaskState.FAILED),
                    reason=f"dropped from the queue by {actor}"[:1000],
                    updated_at=self.clock(),
                )
                .returning(*_Q.c)
            ).first()
            if row is not None:
                return _to_task(row)
            found = conn.execute(select(_Q).where(_Q.c.id == task_id)).first()
        if found is None:
            raise NotFound(f"the task queue has no entry {task_id}")
        task = _to_task(found)
        if task.state == TaskState.DISPATCHING:
            raise Conflict(f"entry {task_id} (task {task.task_key}) is being dispatched now")
        if task.state == TaskState.DISPATCHED:
            raise Conflict(
                f"entry {task_id} (task {task.task_key}) is already dispatched: cancel its "
                f"attempts instead ('orch cancel {' '.join(task.made)}')"
            )
        raise Conflict(f"entry {task_id} (task {task.task_key}) has already ended: {task.state}")

    def count_tasks_by_state(self, at_most: int) -> dict[TaskState, int]:
        """How many queued tasks are in each state (every state, zero included), each count
        stopped at ``at_most + 1`` (down the state index: a year of finished tasks costs
        what a day's does)."""
        states = [str(st) for st in TaskState]
        with self._read() as conn:
            row = conn.execute(counts_by(_Q, _Q.c.state, states, _Q.c.id, at_most)).one()
        return {st: int(n) for st, n in zip(TaskState, row, strict=True)}

    def move_task(
        self,
        task_id: int,
        expected: TaskState,
        state: TaskState,
        attempt_id: str | None = None,
        reason: str | None = None,
        attempt_ids: tuple[str, ...] | None = None,
    ) -> QueuedTask | None:
        """``expected`` -> ``state``; None when the task was no longer ``expected``.
        ``attempt_ids``: every attempt a best-of-N dispatch made (the first becomes
        ``attempt_id``)."""
        values: dict[str, Any] = {"state": str(state), "updated_at": self.clock()}
        if attempt_ids:
            attempt_id = attempt_ids[0]
            values["attempt_ids"] = list(attempt_ids)
        if attempt_id is not None:
            values["attempt_id"] = attempt_id
        if reason is not None:
            values["reason"] = reason
        with self._write() as conn:
            row = conn.execute(
                update(_Q)
                .where(_Q.c.id == task_id, _Q.c.state == str(expected))
                .values(**values)
                .returning(*_Q.c)
            ).first()
        return None if row is None else _to_task(row)
