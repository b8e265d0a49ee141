"""The store's edge (``orch.store.engine.translate_errors``) turns driver errors into typed
``StoreError``s, so that callers catch types and never look at ``__cause__``."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from orch.errors import (
    AttemptIdTaken,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)
from orch.store.engine import translate_errors

URL = "sqlite:////tmp/orch.db"


def translated(exc: Exception) -> StoreError:
    with pytest.raises(StoreError) as caught, translate_errors(URL):
        raise exc
    assert caught.value.__cause__ is exc
    return caught.value


class PgUniqueViolation(Exception):
    """What psycopg raises: the broken constraint's name in ``diag``."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f'duplicate key value violates unique constraint "{constraint}"')
        self.diag = SimpleNamespace(constraint_name=constraint)


@pytest.mark.parametrize(
    "driver_error",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed: attempts.id"),
        PgUniqueViolation("attempts_pkey"),
    ],
    ids=["sqlite", "postgresql"],
)
def test_a_taken_attempt_id_is_attempt_id_taken(driver_error: Exception) -> None:
    error = translated(IntegrityError("INSERT", {}, driver_error))
    assert type(error) is AttemptIdTaken
    assert error.constraint == "attempts_pkey"
    assert error.exit_code == 6


@pytest.mark.parametrize(
    "driver_error",
    [
        sqlite3.IntegrityError(
            "UNIQUE constraint failed: attempts.repository, attempts.task_key, "
            "attempts.attempt_number"
        ),
        PgUniqueViolation("uq_attempt_number"),
    ],
    ids=["sqlite", "postgresql"],
)
def test_another_broken_uniqueness_rule_is_a_conflict_that_names_it(
    driver_error: Exception,
) -> None:
    error = translated(IntegrityError("INSERT", {}, driver_error))
    assert type(error) is StoreConflict
    assert error.constraint == "uq_attempt_number"


def test_a_conflict_the_store_cannot_name_is_still_a_conflict() -> None:
    error = translated(IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL failed")))
    assert type(error) is StoreConflict
    assert error.constraint is None


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly")),
        OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")),
        InterfaceError("SELECT", {}, Exception("the connection is closed")),
        PoolTimeout("QueuePool limit reached"),
    ],
    ids=["server-gone", "sqlite-locked", "closed", "pool-busy"],
)
def test_a_store_that_cannot_be_reached_now_is_unavailable(error: Exception) -> None:
    translated_error = translated(error)
    assert type(translated_error) is StoreUnavailable
    assert translated_error.message.startswith("attempt store sqlite:////tmp/orch.db: ")


def test_other_driver_errors_stay_plain_store_errors_with_the_same_line() -> None:
    error = translated(DataError("INSERT", {}, Exception("value too long\nDETAIL: more")))
    assert type(error) is StoreError
    assert error.message == "attempt store sqlite:////tmp/orch.db: value too long"


def test_bugs_keep_their_traceback() -> None:
    with pytest.raises(KeyError), translate_errors(URL):
        raise KeyError("a bug in orch")
