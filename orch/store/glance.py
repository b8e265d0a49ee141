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

import dataclasses
import sqlite3
from pathlib import Path

LIMIT = 200  # more than a screen of choices; the shell filters the rest as one types
BUSY_TIMEOUT = 0.1  # seconds; WAL readers wait only while a writer recovers the file

# newest first; ``id >= ? AND id < ?`` is the prefix as a range, so the primary key's
# index answers it (LIKE would need escaping and is case-insensitive)
_ATTEMPT_IDS = """
SELECT id, task_key, state FROM attempts
WHERE id >= ? AND id < ?
ORDER BY created_at DESC, id DESC
LIMIT ?
"""
_TASK_KEYS = """
SELECT task_key, count(*), max(created_at) AS newest FROM attempts
WHERE task_key >= ? AND task_key < ?
GROUP BY task_key
ORDER BY newest DESC, task_key
LIMIT ?
"""
# above every character: ``prefix + _TOP`` bounds the strings that start with ``prefix``
_TOP = "\U0010ffff"


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """One completion: the word, and a few words about it (shells that show them)."""

    value: str
    about: str


def attempt_ids(sqlite_file: Path, prefix: str, limit: int = LIMIT) -> list[Suggestion]:
    """Attempt ids starting with ``prefix``, newest first, each with its task and state."""
    rows = _query(sqlite_file, _ATTEMPT_IDS, prefix, limit)
    return [Suggestion(str(id_), f"{task} ({state})") for id_, task, state in rows]


def task_keys(sqlite_file: Path, prefix: str, limit: int = LIMIT) -> list[Suggestion]:
    """Task keys starting with ``prefix``, the most recently attempted first."""
    rows = _query(sqlite_file, _TASK_KEYS, prefix, limit)
    return [Suggestion(str(key), f"{count} attempt(s)") for key, count, _newest in rows]


def _query(sqlite_file: Path, sql: str, prefix: str, limit: int) -> list[tuple[object, ...]]:
    try:
        conn = sqlite3.connect(_read_only_uri(sqlite_file), uri=True, timeout=BUSY_TIMEOUT)
    except (sqlite3.Error, OSError, ValueError):
        return []  # no such file (mode=ro never creates one), or no access
    try:
        return conn.execute(sql, (prefix, prefix + _TOP, limit)).fetchall()
    except (sqlite3.Error, OSError, ValueError):
        return []  # not a database, not orch's, a store still empty, busy too long
    finally:
        conn.close()


def _read_only_uri(sqlite_file: Path) -> str:
    """``sqlite_file`` as a read-only SQLite URI: the characters a URI gives a meaning
    to are escaped, as SQLite's documentation asks (no ``urllib``: it costs an import)."""
    path = str(sqlite_file.absolute())
    for char, escaped in (("%", "%25"), ("?", "%3f"), ("#", "%23")):
        path = path.replace(char, escaped)
    return f"file:{path}?mode=ro"
