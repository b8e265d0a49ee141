"""Names orch derives from what the user typed: attempt ids, slugs, branches, paths.

The task key is stored verbatim; only a sanitised ASCII slug of it reaches git refs and
file names, because refs and paths travel through shells, tools and file systems that
normalise or mangle unicode differently (macOS stores decomposed names). Uniqueness never
rests on the slug: every branch and worktree name ends with the attempt id.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from orch.errors import InvalidInput, InvalidTaskKey

TASK_KEY_MAX = 128
WORKER_MAX = 128  # the store's worker and lease holder columns
SLUG_MAX = 40
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

_HEX_REF = re.compile(r"[0-9a-f]{4,32}")


def new_attempt_id() -> str:
    """Eight hex digits: short enough to type, random so two processes never collide."""
    return random_hex()


def random_hex() -> str:
    """Eight random hex digits (``secrets.token_hex(4)`` without importing ``secrets``,
    which costs every command start its ``hmac`` import)."""
    return os.urandom(4).hex()


def validate_task_key(key: str) -> str:
    """Return ``key`` unchanged, or raise ``InvalidTaskKey`` saying what is wrong."""
    if not key or not key.strip():
        raise InvalidTaskKey("invalid task key: it is empty")
    if len(key) > TASK_KEY_MAX:
        raise InvalidTaskKey(
            f"invalid task key: {len(key)} characters, at most {TASK_KEY_MAX} are allowed"
        )
    if key != key.strip():
        raise InvalidTaskKey(f"invalid task key {key!r}: leading or trailing whitespace")
    if key.startswith("-"):
        raise InvalidTaskKey(f"invalid task key {key!r}: it must not start with '-'")
    if any(unicodedata.category(ch).startswith("C") for ch in key):
        raise InvalidTaskKey(f"invalid task key {key!r}: control or invisible characters")
    parts = re.split(r"[/\\]", key)
    if key.startswith(("/", "\\")) or any(part in (".", "..") for part in parts):
        raise InvalidTaskKey(f"invalid task key {key!r}: it must not be or contain a path")
    return key


def whole_number(text: str) -> int | None:
    """``text`` as a whole number written in ASCII digits; None for anything else (``str.
    isdigit`` takes ``²`` and other digits ``int`` refuses)."""
    return int(text) if text.isascii() and text.isdigit() else None


def slugify(text: str, max_length: int = SLUG_MAX) -> str:
    """Fold ``text`` to lowercase ASCII words joined by '-', never empty, never '-'-led."""
    folded = unicodedata.normalize("NFKD", text)
    ascii_only = folded.encode("ascii", "ignore").decode("ascii").lower()
    slug = _SLUG_JUNK.sub("-", ascii_only).strip("-")
    if len(slug) > max_length:
        cut = slug[:max_length]
        slug = (cut.rsplit("-", 1)[0] if "-" in cut else cut).strip("-")
    return slug or "task"


def validate_branch_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise InvalidInput(
            f"invalid branch prefix {prefix!r}: use letters, digits, '-' or '_' (at most 32)"
        )
    return prefix


def branch_name(prefix: str, task_key: str, attempt_id: str) -> str:
    return f"{prefix}/{slugify(task_key)}-{attempt_id}"


def repository_dir_name(repository: Path) -> str:
    """One directory per repository under the worktree root, stable and collision-free."""
    import hashlib  # here: loading OpenSSL costs every command that reads settings ~2 ms

    digest = hashlib.sha256(str(repository).encode()).hexdigest()[:8]
    return f"{slugify(repository.name, 24)}-{digest}"


def worktrees_named(root: Path, attempt_ref: str) -> list[Path]:
    """The worktrees under ``root`` whose name ends in the attempt id ``attempt_ref``
    begins (``worktree_path``'s layout): a guess made before the store is open, which the
    caller checks against the attempt's recorded worktree_path. Nothing for a ref that
    is not hex (a payload path, a typo)."""
    if not _HEX_REF.fullmatch(attempt_ref):
        return []
    try:
        return [p for p in root.glob(f"*/*-{attempt_ref}*") if p.is_dir()]
    except OSError:
        return []


def worktree_path(root: Path, repository: Path, task_key: str, attempt_id: str) -> Path:
    """The attempt's worktree, always strictly inside ``root``."""
    path = root / repository_dir_name(repository) / f"{slugify(task_key)}-{attempt_id}"
    if not path.resolve().is_relative_to(root.resolve()) or path.resolve() == root.resolve():
        raise InvalidInput(f"worktree path {path} would fall outside the worktree root {root}")
    return path
