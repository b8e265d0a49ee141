"""Recording a dispatch in the store: the intent, and the compare-and-sets that move an
attempt's workspace status.

``create_attempt`` records the intent (a queued attempt whose workspace is
``provisioning``, numbered after the task's attempts, one retry at a time);
``finish_provisioning``, ``move_worktree`` and ``fail_provisioning`` move it on only if
nobody changed it meanwhile; ``mark_workspace`` records what cleanup, doctor and the pool
did to a workspace later (archived, removed, back in the pool). Each change appends its
event in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from orch.errors import AttemptIdTaken, Conflict, RetryRefused, StoreConflict, StoreError
from orch.models import Attempt, NewAttempt, State, WorkspaceStatus
from orch.store.base import StoreBase, to_attempt
from orch.store.engine import is_sqlite
from orch.store.tables import attempts as _T
from orch.store.workspaces import map_task_workspace


def _task_lock_key(repository: str, task_key: str) -> int:
    digest = hashlib.sha256(f"{repository}\0{task_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ProvisioningOps(StoreBase):
    def create_attempt(self, new: NewAttempt, actor: str, retry_of: int | None = None) -> Attempt:
        """Record the intent: a queued attempt whose workspace is ``provisioning``.

        With ``retry_of`` (the attempt number being retried) the insert happens only if no
        attempt of the task is live and ``retry_of`` is still the latest, in the same
        transaction, so two retries racing each other create one attempt.
        """
        for _ in range(5):
            try:
                with self._write() as conn:
                    if not is_sqlite(self.url):
                        # one numbering at a time per task (SQLite: BEGIN IMMEDIATE does it)
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": _task_lock_key(new.repository, new.task_key)},
                        )
                    if retry_of is not None:
                        self._check_retry(conn, new, retry_of)
                    number = (
                        conn.scalar(
                            select(func.max(_T.c.attempt_number)).where(
                                _T.c.repository == new.repository,
                                _T.c.task_key == new.task_key,
                            )
                        )
                        or 0
                    ) + 1
                    now = self.clock()
                    # another host's attempt waits for its worker to provision it
                    status = (
                        WorkspaceStatus.PENDING if new.target_host else WorkspaceStatus.PROVISIONING
                    )
                    row = conn.execute(
                        insert(_T)
                        .values(
                            id=new.id,
                            task_key=new.task_key,
                            attempt_number=number,
                            state=str(State.QUEUED),
                            workspace_status=str(status),
                            repository=new.repository,
                            base_ref=new.base_ref,
                            base_commit=new.base_commit,
                            branch_name=new.branch_name,
                            worktree_path=new.worktree_path,
                            worker=new.worker,
                            prompt=new.prompt,
                            phase=new.phase,
                            target_host=new.target_host,
                            workspace_host=new.workspace_host,
                            repository_url=new.repository_url,
                            sparse_paths=(
                                list(new.checkout.sparse_paths)
                                if new.checkout and new.checkout.sparse_paths
                                else None
                            ),
                            submodules=new.checkout.submodules if new.checkout else None,
                            lfs_skip_smudge=(
                                new.checkout.lfs_skip_smudge if new.checkout else None
                            ),
                            lease_token=0,
                            dispatcher_host=new.dispatcher.host if new.dispatcher else None,
                            dispatcher_pid=new.dispatcher.pid if new.dispatcher else None,
                            dispatcher_started_at=(
                                new.dispatcher.started_at if new.dispatcher else None
                            ),
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(*_T.c)
                    ).one()
                    self._event(
                        conn,
                        new.id,
                        "created",
                        actor,
                        state=str(State.QUEUED),
                        workspace_status=str(status),
                        base_ref=new.base_ref,
                        base_commit=new.base_commit,
                        branch_name=new.branch_name,
                        worktree_path=new.worktree_path,
                    )
                    return to_attempt(row)
            except AttemptIdTaken as exc:
                raise AttemptIdTaken(f"attempt id {new.id} is already taken") from exc
            except StoreConflict:
                continue  # two processes numbered the same attempt at once: number again
        raise StoreError(f"could not number a new attempt of task {new.task_key!r}")

    def _check_retry(self, conn: Connection, new: NewAttempt, retry_of: int) -> None:
        task = (_T.c.repository == new.repository, _T.c.task_key == new.task_key)
        # Lock the task's rows so that racing retries queue here, then read them again: on
        # PostgreSQL (READ COMMITTED) the statement that waited for the lock does not see
        # the attempt the winner inserted; a new statement does.
        conn.execute(select(_T.c.id).where(*task).with_for_update())
        rows = conn.execute(select(_T.c.id, _T.c.state, _T.c.attempt_number).where(*task)).all()
        live = [r for r in rows if State(r.state).live]
        if live:
            raise RetryRefused(
                f"task {new.task_key!r} has a live attempt ({live[0].id}, {live[0].state}): "
                "wait for it, or cancel it first"
            )
        latest = max((r.attempt_number for r in rows), default=0)
        if latest != retry_of:
            raise RetryRefused(
                f"attempt {latest} of task {new.task_key!r} was created meanwhile; "
                "retry that one if it fails"
            )

    def finish_provisioning(
        self,
        attempt_id: str,
        payload_path: Path,
        actor: str,
        status: WorkspaceStatus = WorkspaceStatus.READY,
        from_pool: str | None = None,
    ) -> Attempt:
        """provisioning -> ready (or reused), only if nobody changed the attempt meanwhile.
        ``from_pool``: the pool member the worktree was, recorded (``workspace_from_pool``)
        in the same transaction; so is the task's workspace, when this one is fresh (the
        one ``--reuse-workspace`` finds)."""
        return self._set_workspace(
            attempt_id,
            WorkspaceStatus.PROVISIONING,
            actor,
            "provisioned",
            before=[("workspace_from_pool", {"member": from_pool})] if from_pool else [],
            then=map_task_workspace,
            workspace_status=status,
            payload_path=str(payload_path),
            dispatcher_host=None,
            dispatcher_pid=None,
            dispatcher_started_at=None,
        )

    def move_worktree(self, attempt_id: str, worktree_path: str, actor: str) -> Attempt:
        """While provisioning: the worktree will be at ``worktree_path`` instead (a pool
        member other than the one first chosen, or a fresh worktree)."""
        return self._set_workspace(
            attempt_id,
            WorkspaceStatus.PROVISIONING,
            actor,
            "worktree_moved",
            worktree_path=worktree_path,
        )

    def fail_provisioning(self, attempt_id: str, reason: str, actor: str) -> Attempt:
        """provisioning -> failed; the attempt itself ends ``failed`` with the reason."""
        now = self.clock()
        return self._set_workspace(
            attempt_id,
            WorkspaceStatus.PROVISIONING,
            actor,
            "provisioning_failed",
            workspace_status=WorkspaceStatus.FAILED,
            state=State.FAILED,
            reason=reason,
            dispatcher_host=None,
            dispatcher_pid=None,
            dispatcher_started_at=None,
            finished_at=now,
        )

    def _set_workspace(
        self,
        attempt_id: str,
        expected: WorkspaceStatus,
        actor: str,
        kind: str,
        before: list[tuple[str, dict[str, Any]]] | None = None,
        then: Callable[[Connection, Any, Any], None] | None = None,
        **values: Any,
    ) -> Attempt:
        """Compare-and-set the workspace columns; the events ``before`` (kind, detail) go
        first, and ``then(conn, row, now)`` last, in the same transaction."""
        with self._write() as conn:
            values["updated_at"] = self.clock()
            row = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.workspace_status == str(expected))
                .values(**{k: (str(v) if isinstance(v, str) else v) for k, v in values.items()})
                .returning(*_T.c)
            ).first()
            if row is None:
                raise Conflict(
                    f"attempt {attempt_id} is no longer {expected}: someone else changed it"
                )
            skip = ("updated_at", "finished_at")
            detail = {k: str(v) for k, v in values.items() if k not in skip and v is not None}
            for earlier_kind, earlier_detail in before or ():
                self._event(conn, attempt_id, earlier_kind, actor, **earlier_detail)
            self._event(conn, attempt_id, kind, actor, **detail)
            if then is not None:
                then(conn, row, values["updated_at"])
            return to_attempt(row)

    def mark_workspace(
        self,
        attempt_ids: Iterable[str],
        expected: Iterable[WorkspaceStatus],
        status: WorkspaceStatus,
        actor: str,
        archive_path: str | None = None,
        reason: str | None = None,
    ) -> list[Attempt]:
        """Move the workspaces of ``attempt_ids`` from one of ``expected`` to ``status``.

        Compare-and-set per attempt: an attempt whose workspace changed meanwhile is left
        alone and not returned.
        """
        wanted = [str(e) for e in expected]
        changed = []
        with self._write() as conn:
            for attempt_id in attempt_ids:
                values: dict[str, Any] = {
                    "workspace_status": str(status),
                    "updated_at": self.clock(),
                }
                if archive_path is not None:
                    values["archive_path"] = archive_path
                row = conn.execute(
                    update(_T)
                    .where(_T.c.id == attempt_id, _T.c.workspace_status.in_(wanted))
                    .values(**values)
                    .returning(*_T.c)
                ).first()
                if row is None:
                    continue
                self._event(
                    conn,
                    attempt_id,
                    f"workspace_{status}".replace("-", "_"),
                    actor,
                    workspace_status=str(status),
                    **({"archive_path": archive_path} if archive_path else {}),
                    **({"reason": reason} if reason else {}),
                )
                changed.append(to_attempt(row))
        return changed
