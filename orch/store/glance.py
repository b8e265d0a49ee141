"""Reads of the embedded store for shell completion, without SQLAlchemy.

A completion request is a fresh process per key press: importing SQLAlchemy alone costs
more than the whole answer may take. So this module reads the SQLite file directly with
the standard library's ``sqlite3``: opened read-only (``mode=ro``), with a short busy
timeout, newest first, at most ``LIMIT`` rows.

It must never create, migrate or write a store, never import SQLAlchemy (a test holds
it to that), and never raise: a missing, locked, corrupt or foreign file is an empty
answer, because whatever a completion prints lands in the user's shell.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from orch.record import record

LIMIT = 200  # more than a screen of choices; the shell filters the rest as one types
BUSY_TIMEOUT = 0.1  # seconds; WAL readers wait only while a writer recovers the file
_BATCH = 256
_SCAN_ROWS = 2048  # newest attempts read for task keys before the index takes over

# "Newest first" is the order the store recorded the rows (``rowid``): a scan from the end
# of the table stops after LIMIT rows, where ordering by ``created_at`` sorts them all.
# Measured on 10,000 / 100,000 attempts (4 per task; 2 cores, busy): newest ids 0.07 ms
# against 8-22 / 26-335 ms by created_at; task keys 0.4-1.1 ms without a prefix against
# 2-11 / 25-47 ms for GROUP BY over the index, 0.01-0.2 ms with a prefix matching a few.
_NEWEST_IDS = "SELECT id, task_key, state FROM attempts ORDER BY rowid DESC LIMIT ?"
# a prefix is a range on the primary key's index; only the matches are sorted
_NEWEST_IDS_FROM = """
SELECT id, task_key, state FROM attempts
WHERE id >= ? AND id < ?
ORDER BY rowid DESC
LIMIT ?
"""
# no prefix: every attempt, newest first, until LIMIT distinct task keys were seen (a few
# hundred rows where tasks have a few attempts each)
_NEWEST_TASKS = "SELECT task_key, id, state FROM attempts ORDER BY rowid DESC"
# a prefix: its range of the task key index, one newest attempt per key; the cost is the
# attempts that match, so a key being typed that matches nothing costs nothing (scanning
# newest first would read the whole table then)
_NEWEST_TASKS_FROM = """
SELECT a.task_key, a.id, a.state FROM attempts AS a
JOIN (
    SELECT max(rowid) AS newest FROM attempts
    WHERE task_key >= ? AND task_key < ?
    GROUP BY task_key
    ORDER BY newest DESC
    LIMIT ?
) AS t ON a.rowid = t.newest
ORDER BY a.rowid DESC
"""
# above every character: ``prefix + _TOP`` bounds the strings that start with ``prefix``
_TOP = "\U0010ffff"


@record
class Suggestion:
    """One completion: the word, and a few words about it (shells that show them)."""

    value: str
    about: str


def attempt_ids(sqlite_file: Path, prefix: str, limit: int = LIMIT) -> list[Suggestion]:
    """Attempt ids starting with ``prefix``, newest first, each with its task and state."""

    def read(conn: sqlite3.Connection) -> list[Suggestion]:
        if prefix:
            rows = conn.execute(_NEWEST_IDS_FROM, (prefix, prefix + _TOP, limit))
        else:
            rows = conn.execute(_NEWEST_IDS, (limit,))
        return [Suggestion(str(id_), f"{task} ({state})") for id_, task, state in rows]

    return _read(sqlite_file, read)


def task_keys(sqlite_file: Path, prefix: str, limit: int = LIMIT) -> list[Suggestion]:
    """Task keys starting with ``prefix``, the most recently attempted first, each with
    its latest attempt."""

    def read(conn: sqlite3.Connection) -> list[Suggestion]:
        if not prefix and (newest := _scan_newest_tasks(conn, limit)) is not None:
            return newest
        rows = conn.execute(_NEWEST_TASKS_FROM, (prefix, prefix + _TOP, limit))
        return [Suggestion(str(key), f"latest {id_} ({state})") for key, id_, state in rows]

    return _read(sqlite_file, read)


def _scan_newest_tasks(conn: sqlite3.Connection, limit: int) -> list[Suggestion] | None:
    """The newest attempts' task keys, read from the end of the table; None when
    ``_SCAN_ROWS`` attempts held fewer than ``limit`` keys and more remain (a few tasks
    with many attempts each: the index answers that faster)."""
    found: dict[str, Suggestion] = {}
    rows = conn.execute(_NEWEST_TASKS)
    scanned = 0
    while len(found) < limit and (batch := rows.fetchmany(_BATCH)):
        if scanned >= _SCAN_ROWS:
            return None
        scanned += len(batch)
        for key, id_, state in batch:
            if key not in found:
                found[key] = Suggestion(str(key), f"latest {id_} ({state})")
                if len(found) == limit:
                    break
    return list(found.values())


def _read(
    sqlite_file: Path, read: Callable[[sqlite3.Connection], list[Suggestion]]
) -> list[Suggestion]:
    """``read`` on a read-only connection; nothing when the file cannot be opened (mode=ro
    never creates one) or SQLite fails on it: not a database, not orch's, a store still
    empty, busy for too long."""
    try:
        conn = sqlite3.connect(_read_only_uri(sqlite_file), uri=True, timeout=BUSY_TIMEOUT)
    except (sqlite3.Error, OSError, ValueError):
        return []
    try:
        return read(conn)
    except (sqlite3.Error, OSError, ValueError):
        return []
    finally:
        conn.close()


def _read_only_uri(sqlite_file: Path) -> str:
    """``sqlite_file`` as a read-only SQLite URI: the characters a URI gives a meaning
    to are escaped, as SQLite's documentation asks (no ``urllib``: it costs an import)."""
    path = str(sqlite_file.absolute())
    for char, escaped in (("%", "%25"), ("?", "%3f"), ("#", "%23")):
        path = path.replace(char, escaped)
    return f"file:{path}?mode=ro"
