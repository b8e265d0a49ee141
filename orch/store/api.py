"""The store's public face: ``Store`` composed of its operations, reading, opening and
migrating.

Recording a dispatch (the intent, provisioning, workspace status) lives in
``provisioning``; lifecycle operations (leases, finishing, follow-ups) in ``lifecycle``;
transactions and row conversion in ``base``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from orch.errors import AmbiguousAttempt, AttemptNotFound, InvalidInput
from orch.models import Attempt, AttemptEvent, State, WorkspaceStatus
from orch.store import revision
from orch.store.base import Clock, to_attempt, to_event, utcnow
from orch.store.bounded import count_up_to, counts_by, rows_of
from orch.store.engine import Connecting, is_sqlite, make_engine
from orch.store.history import HistoryOps
from orch.store.land_queue import LandQueueOps
from orch.store.landing import LandingOps
from orch.store.lifecycle import LifecycleOps
from orch.store.outbox import OutboxOps
from orch.store.ports import PortOps
from orch.store.provisioning import ProvisioningOps
from orch.store.pull_requests import PullRequestOps
from orch.store.review import ReviewOps
from orch.store.tables import attempt_events as _E
from orch.store.tables import attempts as _T
from orch.store.tasks import TaskOps
from orch.store.usage import UsageOps
from orch.store.workspaces import WorkspaceOps

# the repositories, one index lookup each (the unique index leads with the repository):
# the smallest, then the next after it, until there is none
_REPOSITORIES = text(
    "WITH RECURSIVE repos(repository) AS ("
    " SELECT min(repository) FROM attempts"
    " UNION ALL"
    " SELECT (SELECT min(a.repository) FROM attempts a WHERE a.repository > repos.repository)"
    " FROM repos WHERE repos.repository IS NOT NULL)"
    " SELECT repository FROM repos WHERE repository IS NOT NULL"
)
MIN_ID_PREFIX = 4  # shorter prefixes match too much to be meant (ids are 8 hex digits)


class Store(
    LifecycleOps,
    ProvisioningOps,
    PortOps,
    TaskOps,
    WorkspaceOps,
    ReviewOps,
    OutboxOps,
    LandingOps,
    PullRequestOps,
    UsageOps,
    LandQueueOps,
    HistoryOps,
):
    # -- reading ---------------------------------------------------------------------------

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
        """Every repository the store has attempts of: one index lookup per repository
        (a recursive "next one after"), not a pass over every attempt."""
        with self._read() as conn:
            return sorted(conn.scalars(_REPOSITORIES))

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
        before: Attempt | None = None,
        workspaces: Iterable[WorkspaceStatus] = (),
        ended_before: dt.datetime | None = None,
    ) -> list[Attempt]:
        """Attempts, newest first (ties by id); ``before``: only those listed after it,
        the next page of a listing that ended with it; ``workspaces``: only those whose
        workspace is in one of these states (read through an index, unlike
        ``except_workspaces``: the everyday paths ask for what they want);
        ``ended_before``: only those that ended (or last changed) at or before then."""
        query = self._filtered(
            select(_T), states, task_key, repository, except_workspaces, before, workspaces
        )
        if ended_before is not None:
            query = query.where(func.coalesce(_T.c.finished_at, _T.c.updated_at) <= ended_before)
        query = query.order_by(_T.c.created_at.desc(), _T.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [to_attempt(r) for r in conn.execute(query)]

    def count_attempts(
        self,
        states: Iterable[State] = (),
        task_key: str | None = None,
        before: Attempt | None = None,
        workspaces: Iterable[WorkspaceStatus] = (),
        ended_before: dt.datetime | None = None,
        at_most: int | None = None,
    ) -> int:
        """How many attempts ``list_attempts`` with the same filters would list in all;
        ``at_most``: stop at ``at_most + 1`` (a pass over that many index entries at most,
        whatever the history: a result above ``at_most`` says "more than that")."""
        counted = select(func.count()).select_from(_T) if at_most is None else rows_of(_T)
        query = self._filtered(counted, states, task_key, None, (), before, workspaces)
        if ended_before is not None:
            query = query.where(func.coalesce(_T.c.finished_at, _T.c.updated_at) <= ended_before)
        if at_most is not None:  # the rows themselves, newest first, then counted
            query = count_up_to(query, _T.c.created_at, at_most)
        with self._read() as conn:
            return int(conn.scalar(query) or 0)

    @staticmethod
    def _filtered(
        query: Any,
        states: Iterable[State],
        task_key: str | None,
        repository: str | None,
        except_workspaces: Iterable[WorkspaceStatus],
        before: Attempt | None,
        workspaces: Iterable[WorkspaceStatus] = (),
    ) -> Any:
        wanted = [str(st) for st in states]
        if wanted:
            query = query.where(_T.c.state.in_(wanted))
        kept = sorted(str(w) for w in workspaces)
        if kept:
            query = query.where(_T.c.workspace_status.in_(kept))
        unwanted = [str(w) for w in except_workspaces]
        if unwanted:
            query = query.where(_T.c.workspace_status.not_in(unwanted))
        if task_key is not None:
            query = query.where(_T.c.task_key == task_key)
        if repository is not None:
            query = query.where(_T.c.repository == repository)
        if before is not None:  # after it in the order (created_at desc, id)
            # a range of the listing index (created_at, id), then the ties: an OR of the
            # two alone is no range, and a count without an order might pass over them all
            query = query.where(_T.c.created_at <= before.created_at).where(
                (_T.c.created_at < before.created_at) | (_T.c.id > before.id)
            )
        return query

    def count_by_state(self, at_most: int) -> dict[State, int]:
        """How many attempts are in each state (every state, zero included), each count
        stopped at ``at_most + 1``: one statement of a bounded count per state, each read
        through the state index, so it costs the same with a year of history as with a
        day's (a ``GROUP BY`` passes over every attempt)."""
        query = counts_by(_T, _T.c.state, [str(st) for st in State], _T.c.created_at, at_most)
        with self._read() as conn:
            row = conn.execute(query).one()
        return {st: int(n) for st, n in zip(State, row, strict=True)}

    def newest_attempt_numbers(
        self, task_keys: Iterable[str] | None = None
    ) -> dict[tuple[str, str], int]:
        """(repository, task key) -> the highest attempt number of that task; of the tasks
        in ``task_keys`` only, when given (the snapshot asks about the attempts it shows)."""
        query = select(_T.c.repository, _T.c.task_key, func.max(_T.c.attempt_number))
        if task_keys is not None:
            keys = sorted(set(task_keys))
            if not keys:
                return {}
            query = query.where(_T.c.task_key.in_(keys))
        with self._read() as conn:
            rows = conn.execute(query.group_by(_T.c.repository, _T.c.task_key))
            return {(repo, task): int(number) for repo, task, number in rows}

    def branch_owner(self, repository: str, branch: str) -> Attempt | None:
        """The newest attempt of ``repository`` that names ``branch`` and whose workspace
        did not fail to be made (doctor: does someone own this branch?)."""
        query = (
            select(_T)
            .where(_T.c.branch_name == branch)
            .where(_T.c.repository == repository)
            .where(_T.c.workspace_status != str(WorkspaceStatus.FAILED))
            .order_by(_T.c.created_at.desc())
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
            return to_attempt(row) if row is not None else None

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` name attempts in the store."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        with self._read() as conn:
            for at in range(0, len(wanted), 500):
                chunk = wanted[at : at + 500]
                found.update(conn.scalars(select(_T.c.id).where(_T.c.id.in_(chunk))))
        return found

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
