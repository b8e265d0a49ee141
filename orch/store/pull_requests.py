"""What the store keeps of an attempt's pull request: its URL, number and state, and
what the CI loop already forwarded from it (``pr_watch``).

``pr_watch`` is read and written under the row's lock with a sequence number that only
grows, so that of two loops looking at one pull request only one records a follow-up;
each write carries its event in the same transaction, and the follow-up is sent only
after its record is committed: a crash in between loses that follow-up (the event says
it was meant) rather than sending it twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from orch.errors import Conflict
from orch.models import Attempt, Landed
from orch.store.base import StoreBase, to_attempt
from orch.store.fencing import existing_row
from orch.store.tables import attempts as _T

OPEN, MERGED, CLOSED = "open", "merged", "closed"


class PullRequestOps(StoreBase):
    def record_pull_request(
        self, attempt_id: str, url: str, number: int, actor: str, **detail: Any
    ) -> Attempt:
        """Record the pull request opened for the attempt, with a ``pr_opened`` event;
        ``Conflict`` when one is recorded already."""
        with self._write() as conn:
            row = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.pr_number.is_(None))
                .values(
                    pr_url=url,
                    pr_number=number,
                    pr_state=OPEN,
                    pr_watch={"seq": 0},
                    updated_at=self.clock(),
                )
                .returning(*_T.c)
            ).first()
            if row is None:
                now = existing_row(conn, attempt_id)
                raise Conflict(f"attempt {attempt_id} already has pull request {now.pr_url}")
            self._event(conn, attempt_id, "pr_opened", actor, url=url, number=number, **detail)
            return to_attempt(row)

    def open_pull_requests(self) -> list[tuple[Attempt, dict[str, Any]]]:
        """Each attempt whose pull request is open, with what was forwarded from it."""
        with self._read() as conn:
            rows = conn.execute(select(_T).where(_T.c.pr_state == OPEN).order_by(_T.c.created_at))
            return [(to_attempt(r), dict(r.pr_watch or {"seq": 0})) for r in rows]

    def save_pr_watch(
        self,
        attempt_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
        actor: str,
        events: list[tuple[str, dict[str, Any]]],
    ) -> bool:
        """Replace the watch read as ``before`` by ``after`` (its ``seq`` one more) and
        append ``events`` (kind, detail), in one transaction; False when another loop
        wrote it first (the caller sends nothing then)."""
        with self._write() as conn:
            row = existing_row(conn, attempt_id, lock=True)
            if row.pr_state != OPEN or int((row.pr_watch or {}).get("seq", 0)) != before["seq"]:
                return False
            conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id)
                .values(pr_watch={**after, "seq": before["seq"] + 1})
            )
            for kind, detail in events:
                self._event(conn, attempt_id, kind, actor, **detail)
            return True

    def end_pull_request(
        self, attempt_id: str, state: str, actor: str, landed: Landed | None = None
    ) -> Attempt | None:
        """The pull request was merged or closed: its state recorded with a ``pr_merged``
        or ``pr_closed`` event; a merge with ``landed`` also records the land (as
        ``orch land`` does, with its ``landed`` event) unless the attempt landed already.
        None when it was no longer open (another loop recorded it)."""
        with self._write() as conn:
            row = existing_row(conn, attempt_id, lock=True)
            if row.pr_state != OPEN:
                return None
            now = self.clock()
            values: dict[str, Any] = {"pr_state": state, "updated_at": now}
            lands = landed is not None and row.landed_commit is None
            if lands and landed is not None:
                values.update(
                    landed_commit=landed.commit,
                    landed_tip=landed.tip,
                    landed_into=landed.into,
                    landed_strategy=landed.strategy,
                    landed_by=landed.by[:255],
                    landed_at=now,
                )
            after = conn.execute(
                update(_T).where(_T.c.id == attempt_id).values(**values).returning(*_T.c)
            ).one()
            detail = {"url": row.pr_url, "number": row.pr_number}
            self._event(conn, attempt_id, f"pr_{state}", actor, **detail)
            if lands and landed is not None:
                self._event(
                    conn,
                    attempt_id,
                    "landed",
                    actor,
                    commit=landed.commit,
                    tip=landed.tip,
                    into=landed.into,
                    strategy=landed.strategy,
                    pull_request=row.pr_url,
                )
            return to_attempt(after)
