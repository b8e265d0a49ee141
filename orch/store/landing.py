"""What a land records on the attempt: the intent of a land in progress (the result
commit the target will move to, written before it moves), then either the land itself
or the intent cleared.

Each write is a compare-and-set on the intent's result commit, so that of a land and an
``orch doctor --fix`` completing it after a crash only one records it, and an attempt is
never recorded as landed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from orch.errors import Conflict
from orch.models import Attempt, Landed
from orch.store.base import StoreBase, to_attempt
from orch.store.tables import attempts as _T


class LandingOps(StoreBase):
    def begin_landing(
        self,
        attempt_id: str,
        commit: str,
        intent: Mapping[str, Any],
        actor: str,
        replacing: str | None = None,
    ) -> Attempt:
        """Record the intent to move the target to ``commit`` (``replacing``: this land's
        own earlier intent, when the target moved and the result was built again). Refused
        when the attempt has landed, or another land of it is in progress."""
        expected = (
            _T.c.landing_commit.is_(None) if replacing is None else _T.c.landing_commit == replacing
        )
        with self._write() as conn:
            row = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.landed_commit.is_(None), expected)
                .values(landing_commit=commit, landing=dict(intent), updated_at=self.clock())
                .returning(*_T.c)
            ).first()
            if row is None:
                now = conn.execute(select(_T).where(_T.c.id == attempt_id)).first()
                if now is not None and now.landed_commit is not None:
                    why = f"has landed meanwhile (as {now.landed_commit[:12]})"
                else:
                    why = (
                        "is being landed by another orch land (or by one that was killed: "
                        "run 'orch doctor --fix')"
                    )
                raise Conflict(f"attempt {attempt_id} {why}")
            self._event(conn, attempt_id, "landing", actor, commit=commit, **intent)
            return to_attempt(row)

    def clear_landing(self, attempt_id: str, commit: str, actor: str, reason: str) -> bool:
        """Drop the intent naming ``commit`` (the target did not move to it); False when
        it was no longer there."""
        with self._write() as conn:
            result = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.landing_commit == commit)
                .values(landing_commit=None, landing=None, updated_at=self.clock())
            )
            if result.rowcount != 1:
                return False
            self._event(conn, attempt_id, "landing_cleared", actor, commit=commit, reason=reason)
            return True

    def record_landed(
        self, attempt_id: str, landed: Landed, actor: str, **detail: Any
    ) -> Attempt | None:
        """The intent naming ``landed.commit`` became the land: recorded with a
        ``landed`` event (``detail``: what else the event says, e.g. how it was checked).
        None when the intent was no longer there (someone else recorded or cleared it)."""
        with self._write() as conn:
            now = self.clock()
            row = conn.execute(
                update(_T)
                .where(_T.c.id == attempt_id, _T.c.landing_commit == landed.commit)
                .values(
                    landed_commit=landed.commit,
                    landed_tip=landed.tip,
                    landed_into=landed.into,
                    landed_strategy=landed.strategy,
                    landed_by=landed.by[:255],
                    landed_at=now,
                    landing_commit=None,
                    landing=None,
                    updated_at=now,
                )
                .returning(*_T.c)
            ).first()
            if row is None:
                return None
            self._event(
                conn,
                attempt_id,
                "landed",
                actor,
                commit=landed.commit,
                tip=landed.tip,
                into=landed.into,
                strategy=landed.strategy,
                **detail,
            )
            return to_attempt(row)

    def landings_in_progress(self) -> list[Attempt]:
        """The attempts with a land intent recorded (in progress, or left by a crash)."""
        with self._read() as conn:
            rows = conn.execute(select(_T).where(_T.c.landing_commit.is_not(None)))
            return [to_attempt(r) for r in rows]
