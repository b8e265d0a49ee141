"""``record_intent`` against a stand-in store: an outage is ridden out, a try whose answer
was lost is found instead of recorded twice, and a taken id is drawn again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, cast

import pytest

from orch.attempts.intent import record_intent
from orch.errors import AttemptIdTaken, StoreError, StoreUnavailable
from orch.models import Attempt, NewAttempt, State, WorkspaceStatus
from orch.outage import Patience
from tests.support.store import new_attempt

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
QUICK = Patience(limit=5.0, first_delay=0.001, max_delay=0.002)


def new() -> NewAttempt:
    return new_attempt("/r", "t", attempt_id="aaaa0001")


class Store:
    """Records attempts; ``faults`` says, per call of create_attempt, what goes wrong:
    "lost" (committed, then the answer is lost), "down" (nothing committed), or None."""

    def __init__(self, *faults: str | None) -> None:
        self.faults = list(faults)
        self.rows: dict[str, Attempt] = {}
        self.creates = 0

    def create_attempt(self, new: NewAttempt, actor: str, retry_of: int | None = None) -> Attempt:
        self.creates += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault == "down":
            raise StoreUnavailable("attempt store: server closed the connection")
        if new.id in self.rows:
            raise AttemptIdTaken(f"attempt id {new.id} is already taken")
        self.rows[new.id] = Attempt(
            **{
                f.name: getattr(new, f.name)
                for f in dataclasses.fields(Attempt)
                if hasattr(new, f.name) and f.name not in ("checkout",)
            },
            attempt_number=1,
            state=State.QUEUED,
            workspace_status=WorkspaceStatus.PROVISIONING,
            payload_path=None,
            reason=None,
            created_at=NOW,
            updated_at=NOW,
        )
        if fault == "lost":
            raise StoreUnavailable("attempt store: consuming input failed")
        return self.rows[new.id]

    def get_many(self, ids: list[str]) -> list[Attempt]:
        return [self.rows[i] for i in ids if i in self.rows]


def record(store: Store, made: NewAttempt) -> Attempt:
    return record_intent(cast(Any, store), made, "t", patience=QUICK)


def test_an_outage_before_the_commit_is_ridden_out() -> None:
    store = Store("down", "down")
    assert record(store, new()).id == "aaaa0001"
    assert store.creates == 3


def test_a_try_whose_answer_was_lost_is_found_not_recorded_again() -> None:
    store = Store("lost")
    made = record(store, new())
    assert made.id == "aaaa0001" and made.branch_name == "orch/t-aaaa0001"
    assert store.creates == 1 and list(store.rows) == ["aaaa0001"]


def test_an_id_taken_by_another_attempt_is_drawn_again() -> None:
    store = Store()
    record(store, new())
    other = dataclasses.replace(new(), task_key="u", branch_name="orch/u", worktree_path="/w/u")
    made = record(store, other)
    assert made.id != "aaaa0001" and made.task_key == "u"
    assert len(store.rows) == 2


def test_after_a_lost_answer_an_id_taken_by_another_attempt_is_still_drawn_again() -> None:
    store = Store()
    record(store, new())
    store.faults = ["down"]
    other = dataclasses.replace(new(), task_key="u", branch_name="orch/u", worktree_path="/w/u")
    assert record(store, other).id != "aaaa0001"


def test_other_store_errors_are_not_ridden_out() -> None:
    class Broken(Store):
        def create_attempt(self, *args: Any, **kwargs: Any) -> Attempt:
            self.creates += 1
            raise StoreError("attempt store: a broken statement")

    store = Broken()
    with pytest.raises(StoreError, match="a broken statement"):
        record(store, new())
    assert store.creates == 1
