"""Lifecycle operations of the store, composed: claims, leases and ends, operator actions,
follow-ups and runs, and the reads of live attempts that waiting needs.

Each part lives in its own module (``claims``, ``leases``, ``operator_actions``,
``followups``; the compare-and-set they share in ``fencing``); this one joins them and
holds the one operation that spans two of them, ``finish_and_claim``. Every write is a
compare-and-set on the attempt's state and, for a worker's writes, on its lease token.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from orch.models import LIVE_STATES, Attempt, Lease, State, WorkerIdentity
from orch.store.base import to_attempt
from orch.store.changes import (
    CHANNEL,
    EVENTS_CHANNEL,
    ChangeWatcher,
    PostgresChangeWatcher,
    SqliteChangeWatcher,
    no_listen_url,
)
from orch.store.claims import ClaimOps, to_lease
from orch.store.engine import (
    APPLICATION_NAME_OPTION,
    LISTEN_URL_OPTION,
    POOLER_OPTION,
    is_sqlite,
)
from orch.store.followups import FollowUpOps
from orch.store.leases import LeaseOps
from orch.store.operator_actions import OperatorOps
from orch.store.tables import attempts as _T


class LifecycleOps(ClaimOps, LeaseOps, OperatorOps, FollowUpOps):
    def finish_and_claim(
        self,
        attempt_id: str,
        token: int,
        state: State,
        actor: str,
        exit_code: int | None,
        summary: str | None,
        worker: WorkerIdentity,
        ttl: float,
        repository_urls: Sequence[str] = (),
    ) -> tuple[Attempt, Lease | None]:
        """``finish`` this attempt and ``claim`` the worker's next one in one transaction.

        A worker that goes on to the next attempt saves a write transaction per attempt;
        if the finish is refused nothing is claimed."""
        with self._write() as conn:
            ended = self._finish_in(conn, attempt_id, token, state, actor, exit_code, summary)
            taken = self._claim_in(conn, worker, ttl, actor, None, repository_urls)
        return to_attempt(ended), to_lease(taken)

    def get_many(self, attempt_ids: Sequence[str]) -> list[Attempt]:
        with self._read() as conn:
            rows = {r.id: r for r in conn.execute(select(_T).where(_T.c.id.in_(attempt_ids)))}
            return [to_attempt(rows[i]) for i in attempt_ids if i in rows]

    def live_attempts(self, repository: str, task_key: str) -> list[Attempt]:
        with self._read() as conn:
            rows = conn.execute(
                select(_T).where(
                    _T.c.repository == repository,
                    _T.c.task_key == task_key,
                    _T.c.state.in_([str(x) for x in sorted(LIVE_STATES)]),
                )
            )
            return [to_attempt(r) for r in rows]

    def change_watcher(self, events: bool = False) -> ChangeWatcher:
        """Something to sleep on until another process commits a change to attempts (with
        ``events``: until it appends an event, state change or not)."""
        if is_sqlite(self.url):
            return SqliteChangeWatcher(self.engine)
        options = self.engine.get_execution_options()
        name = options.get(APPLICATION_NAME_OPTION)
        listen_url = options.get(LISTEN_URL_OPTION)
        channel = EVENTS_CHANNEL if events else CHANNEL
        if listen_url:  # the server itself, past the pooler
            return PostgresChangeWatcher(str(listen_url), channel, name)
        if options.get(POOLER_OPTION):
            return no_listen_url()
        # self.url is for messages and hides the password; the watcher opens a connection
        return PostgresChangeWatcher(
            self.engine.url.render_as_string(hide_password=False), channel, name
        )
