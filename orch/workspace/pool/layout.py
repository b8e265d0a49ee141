"""The pool's layout on disk: where a repository's members are, the marker files that say
what state each is in (ready, being worked on, set aside), the size a fill keeps, and
whether a path is a pool member. Claiming and taking out are renames or removals of a
marker (see orch.workspace.pool). Nothing here runs git or removes a worktree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from orch import naming
from orch.config import Settings
from orch.errors import WorkspaceError, describe_os_error
from orch.fslock import file_lock
from orch.git import Repository
from orch.models import CheckoutSpec

POOL_DIR = ".orch-pool"
LOCK_REASON = "orch pool member"
WORKTREE = "w-"  # a member's worktree directory
READY = "m-"  # marker file: the member is ready to hand out
FILLING = ".filling-"  # marker file: the member is being made, refreshed or returned
DAMAGED = ".damaged-"  # a member's directory, set aside
SIZE_FILE = "size"
REPOSITORY_FILE = "repository"


def pool_root(settings: Settings, repo: Repository) -> Path:
    return settings.worktree_root / naming.repository_dir_name(repo.root) / POOL_DIR


def flavour_dir(settings: Settings, repo: Repository, spec: CheckoutSpec) -> Path:
    return pool_root(settings, repo) / spec.flavour


def target_size(settings: Settings, repo: Repository) -> int:
    """The size ``orch pool fill --size`` last set, else the ``pool_size`` setting."""
    try:
        return max(0, int((pool_root(settings, repo) / SIZE_FILE).read_text().strip()))
    except (OSError, ValueError):
        return settings.pool_size


def _names(directory: Path) -> list[str]:
    """The entries of a pool directory, sorted; none when it does not exist. One that
    cannot be read is a workspace error (one line, exit 7), not a traceback."""
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise WorkspaceError(f"cannot read the pool {directory}: {describe_os_error(exc)}") from exc


def ready_members(directory: Path) -> list[Path]:
    """The worktrees of the members ready to hand out (those with a ready marker)."""
    return [
        directory / f"{WORKTREE}{n.removeprefix(READY)}"
        for n in _names(directory)
        if n.startswith(READY) and not (directory / n).is_dir()  # a directory: see _sweep
    ]


def _marker(member: Path, kind: str) -> Path:
    """The marker of kind ``kind`` (READY, FILLING) for the member whose worktree is
    ``member``."""
    return member.with_name(kind + member.name.removeprefix(WORKTREE))


def _take(member: Path, kind: str = READY) -> bool:
    """Take a member out of the pool to work on it: its ``kind`` marker becomes a filling
    marker. False when someone else took it first."""
    try:
        os.rename(_marker(member, kind), _marker(member, FILLING))
    except FileNotFoundError:
        return False
    return True


def take(path: Path) -> bool:
    """Take a pool path out of the pool before removing it (orch doctor): False when it
    was a ready member and someone claimed or took it first."""
    if path.name.startswith(WORKTREE) and _marker(path, READY).exists():
        return _take(path)
    return True


def unmark(path: Path) -> None:
    """Drop the markers of a member whose worktree is gone (removed by orch doctor)."""
    if path.name.startswith(WORKTREE) and not path.exists():
        _unmark(path)


def _unmark(member: Path) -> None:
    for kind in (READY, FILLING):
        with contextlib.suppress(FileNotFoundError):
            _marker(member, kind).unlink()


def _fill_lock(repo: Repository) -> Path:
    return repo.orch_dir / "pool-fill.lock"


@contextlib.contextmanager
def _filling(repo: Repository, settings: Settings) -> Iterator[None]:
    """The repository's fill lock. A lock that cannot even be created, and a file system
    error while the pool changes (full disk, no permission), are workspace errors (one
    line, exit 7), not tracebacks."""
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(file_lock(_fill_lock(repo), settings.lock_timeout, "pool fill"))
    except OSError as exc:
        raise WorkspaceError(
            f"cannot lock the pool of {repo.root}: {describe_os_error(exc)}"
        ) from exc
    with stack:
        try:
            yield
        except OSError as exc:
            raise WorkspaceError(f"pool of {repo.root}: {describe_os_error(exc)}") from exc


def pooled_repositories(settings: Settings) -> list[Path]:
    """The repositories that have a pool under the worktree root (for orch doctor)."""
    found = []
    try:
        dirs = sorted(os.listdir(settings.worktree_root))
    except OSError:
        return []
    for name in dirs:
        try:
            text = (settings.worktree_root / name / POOL_DIR / REPOSITORY_FILE).read_text()
        except OSError:
            continue
        found.append(Path(text.strip()))
    return found


def _flavour_dirs(root: Path) -> list[Path]:
    # a link counts: one that cannot be followed is reported, not skipped
    return [root / n for n in _names(root) if (root / n).is_dir() or (root / n).is_symlink()]


def in_a_pool(path: Path) -> bool:
    """Whether ``path`` lies in a pool directory (a member's, ready or claimed by an
    attempt), as opposed to a worktree named after its attempt."""
    return POOL_DIR in path.parts


def is_pool_path(settings: Settings, repo: Repository, path: Path) -> bool:
    """Whether ``path`` is a pool member (ready, in the making or set aside), not a
    worktree an attempt claimed from the pool."""
    return _inside(path, pool_root(settings, repo)) and _is_member(path)


def _is_member(path: Path) -> bool:
    """Whether ``path`` (under a pool directory) is the pool's rather than an attempt's:
    a ``w-`` worktree is the pool's only while it has a marker."""
    if not path.name.startswith(WORKTREE):
        return True
    return _marker(path, READY).exists() or _marker(path, FILLING).exists()


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False
