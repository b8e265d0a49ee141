"""The store's public face: dispatch bookkeeping, reading, opening and migrating.

Lifecycle operations (leases, finishing, follow-ups) live in ``lifecycle``; transactions
and row conversion in ``base``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from orch.errors import (
    AmbiguousAttempt,
    AttemptIdTaken,
    AttemptNotFound,
    Conflict,
    InvalidInput,
    RetryRefused,
    StoreConflict,
    StoreError,
)
from orch.models import Attempt, AttemptEvent, NewAttempt, State, WorkspaceStatus
from orch.store import revision
from orch.store.base import Clock, to_attempt, to_event, utcnow
from orch.store.engine import Connecting, is_sqlite, make_engine
from orch.store.lifecycle import LifecycleOps
from orch.store.ports import PortOps
from orch.store.review import ReviewOps
from orch.store.tables import attempt_events as _E
from orch.store.tables import attempts as _T
from orch.store.tasks import TaskOps
from orch.store.workspaces import WorkspaceOps, map_task_workspace

MIN_ID_PREFIX = 4  # shorter prefixes match too much to be meant (ids are 8 hex digits)


def _task_lock_key(repository: str, task_key: str) -> int:
    digest = hashlib.sha256(f"{repository}\0{task_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Store(LifecycleOps, PortOps, TaskOps, WorkspaceOps, ReviewOps):
    # -- dispatch --------------------------------------------------------------------------

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

    def latest_attempt(self, task_key: str, repository: str | None = None) -> list[Attempt]:
        """The newest attempt of ``task_key`` in each repository that has one."""
        query = select(_T).where(_T.c.task_key == task_key)
        if repository is not None:
            query = query.where(_T.c.repository == repository)
        newest: dict[str, Any] = {}
        with self._read() as conn:
            for row in conn.execute(query):
                seen = newest.get(row.repository)
                if seen is None or row.attempt_number > seen.attempt_number:
                    newest[row.repository] = row
            return [to_attempt(r) for r in newest.values()]

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

    def attempts_using_worktree(self, worktree_path: str) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(select(_T).where(_T.c.worktree_path == worktree_path))
            return [to_attempt(r) for r in rows]

    def live_attempts_using_worktree(self, worktree_path: str) -> list[Attempt]:
        """The attempts whose workspace at ``worktree_path`` is being made or in use."""
        return [
            a
            for a in self.attempts_using_worktree(worktree_path)
            if a.workspace_status.occupies_worktree
        ]

    def repositories(self) -> list[str]:
        with self._read() as conn:
            return sorted(conn.scalars(select(_T.c.repository).distinct()))

    # -- reading ---------------------------------------------------------------------------

    def get(self, ref: str) -> Attempt:
        """An attempt by id or by a unique id prefix of at least four characters."""
        with self._read() as conn:
            row = conn.execute(select(_T).where(_T.c.id == ref)).first()
            if row is not None:
                return to_attempt(row)
            if ref and all(c in "0123456789abcdef" for c in ref):
                if len(ref) < MIN_ID_PREFIX:
                    raise InvalidInput(
                        f"attempt id prefix {ref!r} is too short: give at least "
                        f"{MIN_ID_PREFIX} characters of the id"
                    )
                shown = 5
                rows = conn.execute(
                    select(_T).where(_T.c.id.startswith(ref)).order_by(_T.c.id).limit(shown + 1)
                ).all()
                if len(rows) == 1:
                    return to_attempt(rows[0])
                if len(rows) > 1:
                    names = ", ".join(f"{r.id} ({r.task_key})" for r in rows[:shown])
                    more = ", …" if len(rows) > shown else ""
                    raise AmbiguousAttempt(
                        f"attempt id prefix {ref!r} matches several attempts: {names}{more}"
                    )
        raise AttemptNotFound(f"no attempt {ref!r} in the store")

    def list_attempts(
        self,
        states: Iterable[State] = (),
        task_key: str | None = None,
        repository: str | None = None,
        limit: int | None = None,
        except_workspaces: Iterable[WorkspaceStatus] = (),
    ) -> list[Attempt]:
        query = select(_T).order_by(_T.c.created_at.desc(), _T.c.id)
        wanted = [str(st) for st in states]
        if wanted:
            query = query.where(_T.c.state.in_(wanted))
        unwanted = [str(w) for w in except_workspaces]
        if unwanted:
            query = query.where(_T.c.workspace_status.not_in(unwanted))
        if task_key is not None:
            query = query.where(_T.c.task_key == task_key)
        if repository is not None:
            query = query.where(_T.c.repository == repository)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [to_attempt(r) for r in conn.execute(query)]

    def count_by_state(self) -> dict[State, int]:
        """How many attempts are in each state (every state, zero included)."""
        counts = dict.fromkeys(State, 0)
        with self._read() as conn:
            for state, count in conn.execute(select(_T.c.state, func.count()).group_by(_T.c.state)):
                counts[State(state)] = int(count)
        return counts

    def newest_attempt_numbers(self) -> dict[tuple[str, str], int]:
        """(repository, task key) -> the highest attempt number of that task."""
        with self._read() as conn:
            rows = conn.execute(
                select(_T.c.repository, _T.c.task_key, func.max(_T.c.attempt_number)).group_by(
                    _T.c.repository, _T.c.task_key
                )
            )
            return {(repo, task): int(number) for repo, task, number in rows}

    def attempts_with_event(self, kind: str) -> dict[str, int]:
        """Attempt id -> how many events of ``kind`` it has (e.g. ``escape_warning``)."""
        with self._read() as conn:
            rows = conn.execute(
                select(_E.c.attempt_id, func.count())
                .where(_E.c.kind == kind)
                .group_by(_E.c.attempt_id)
            )
            return {attempt_id: int(count) for attempt_id, count in rows}

    def events(self, attempt_id: str) -> list[AttemptEvent]:
        with self._read() as conn:
            rows = conn.execute(select(_E).where(_E.c.attempt_id == attempt_id).order_by(_E.c.id))
            return [to_event(r) for r in rows]


def open_store(
    url: str,
    lock_dir: Path,
    *,
    auto_migrate: bool | None = None,
    clock: Clock = utcnow,
    synchronous: str = "NORMAL",
    connecting: Connecting | None = None,
) -> Store:
    """Open a store at the packaged schema head, creating the embedded one on first use.

    ``connecting`` says how this process holds its PostgreSQL connections (its name, a
    pooler in front, where to LISTEN, whether to keep idle ones)."""
    engine = make_engine(url, synchronous, connecting)
    migrate = is_sqlite(url) if auto_migrate is None else auto_migrate
    try:
        revision.ensure_head(engine, url, lock_dir, migrate)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, clock)


def upgrade_store(url: str, lock_dir: Path) -> str:
    """Migrate the store to the packaged head (``orch db upgrade``); return its revision."""
    engine = make_engine(url)
    try:
        revision.check(engine, url)
        return revision.upgrade(engine, url, lock_dir)
    finally:
        engine.dispose()


def store_revision(url: str) -> tuple[str | None, str]:
    """The store's revision and the packaged head (``orch db current``)."""
    engine = make_engine(url)
    try:
        return revision.current_revision(engine), revision.HEAD
    finally:
        engine.dispose()
