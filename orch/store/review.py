"""What review records on an attempt: the summary of its committed changes, and the runs
of the repository's check command.

The summary is a cache of what git says at ``changes_tip``: written whenever someone sees
the branch move (the worker, the loop, ``orch check``), never computed by a reader. A
check run is history like an agent's run: recorded whatever the attempt's state, with no
lease (the worktree's lock, taken by the caller, keeps one process per worktree).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, update

from orch.errors import AttemptNotFound
from orch.models import ChangeSummary, Run, RunKind, State
from orch.store.base import StoreBase, to_run
from orch.store.fencing import existing_row
from orch.store.tables import attempt_runs as _R
from orch.store.tables import attempts as _T

_IN_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


class ReviewOps(StoreBase):
    def record_changes(
        self, attempt_id: str, changes: ChangeSummary, token: int | None = None
    ) -> bool:
        """Record the summary counted at ``changes.tip``; False when that tip was already
        the recorded one, or when ``token`` (a worker's lease) no longer holds the running
        attempt: a fenced-out worker writes nothing, not even this."""
        held = (
            (_T.c.lease_token == token, _T.c.state == str(State.RUNNING))
            if token is not None
            else ()
        )
        with self._write() as conn:
            result = conn.execute(
                update(_T)
                .where(
                    _T.c.id == attempt_id,
                    (_T.c.changes_tip.is_(None)) | (_T.c.changes_tip != changes.tip),
                    *held,
                )
                .values(
                    changes_tip=changes.tip,
                    commits_ahead=changes.commits_ahead,
                    files_changed=changes.files_changed,
                    lines_added=changes.lines_added,
                    lines_removed=changes.lines_removed,
                    changes_at=self.clock(),
                )
            )
            # a cache of what git says, not a change of the attempt: no event (the worker
            # would add one per run, and the loop one per commit it sees)
            return bool(result.rowcount == 1)

    def start_check(
        self,
        attempt_id: str,
        command: str,
        log_path: str,
        actor: str,
        runner: Mapping[str, Any] | None = None,
    ) -> Run:
        """Record a check run as started (numbered after every earlier run of the attempt).
        ``runner``: the process that waits for it and records its end (``host``, ``pid``,
        ``pid_started``), kept in the ``check_started`` event (the run keeps the pid), so
        that a check whose process was killed is told from one that still runs."""
        runner = dict(runner or {})
        with self._write() as conn:
            existing_row(conn, attempt_id)
            run = self._new_run(
                conn,
                attempt_id,
                prompt="",
                command=["sh", "-c", command],
                log_path=log_path,
                pid=runner.get("pid"),
                kind=str(RunKind.CHECK),
                timed_out=False,
            )
            self._event(
                conn, attempt_id, "check_started", actor, run=run.number, command=command, **runner
            )
            return run

    def end_check(
        self,
        attempt_id: str,
        number: int,
        exit_code: int | None,
        timed_out: bool,
        actor: str,
        reason: str | None = None,
    ) -> Run:
        """Record how a check run ended, with a ``check_finished`` event carrying the result
        (and ``reason``, when someone other than its process records the end)."""
        with self._write() as conn:
            run = conn.execute(
                update(_R)
                .where(_R.c.attempt_id == attempt_id, _R.c.number == number)
                .values(ended_at=self.clock(), exit_code=exit_code, timed_out=timed_out)
                .returning(*_R.c)
            ).first()
            if run is None:
                raise AttemptNotFound(f"attempt {attempt_id} has no run {number}")
            ended = to_run(run)
            self._event(
                conn,
                attempt_id,
                "check_finished",
                actor,
                run=number,
                result=ended.result,
                exit_code=exit_code,
                timed_out=timed_out,
                duration=ended.duration,
                command=ended.command[-1],
                **({"reason": reason} if reason else {}),
            )
            return ended

    def latest_checks(self, attempt_ids: Iterable[str]) -> dict[str, Run]:
        """The newest check run of each attempt that has one."""
        ids = list(attempt_ids)
        found: dict[str, Run] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk: Sequence[str] = ids[start : start + _IN_CHUNK]
            with self._read() as conn:
                rows = conn.execute(
                    select(_R)
                    .where(_R.c.kind == str(RunKind.CHECK), _R.c.attempt_id.in_(chunk))
                    .order_by(_R.c.attempt_id, _R.c.number)
                )
                for row in rows:
                    found[row.attempt_id] = to_run(row)
        return found

    def runs_of(self, attempt_ids: Iterable[str]) -> dict[str, list[Run]]:
        """Every run of each of ``attempt_ids``, in order (one query per 500 ids)."""
        ids = list(attempt_ids)
        found: dict[str, list[Run]] = {i: [] for i in ids}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk: Sequence[str] = ids[start : start + _IN_CHUNK]
            with self._read() as conn:
                rows = conn.execute(
                    select(_R)
                    .where(_R.c.attempt_id.in_(chunk))
                    .order_by(_R.c.attempt_id, _R.c.number)
                )
                for row in rows:
                    found[row.attempt_id].append(to_run(row))
        return found
