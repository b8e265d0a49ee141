"""The one owner of "private by default" (DESIGN.md §2, contract 8): what orch creates
under its home is readable by its user alone (files 0600, directories 0700), and a home
that another account could change is refused before anything is written there.

Every directory, log, lock, record, archive and store file orch makes goes through
``make_dir``, ``open_fd``, ``open_append`` or ``fix``; each also repairs the mode of a
file or directory an older orch left 0644/0755. Never changes the mode of anything orch
did not make (a repository, a custom store's directory, the files inside a worktree) and
never loosens a mode. Stdlib only: every layer may use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from orch.errors import UnsafeHome

DIR_MODE = 0o700
FILE_MODE = 0o600
_SHARED = 0o077  # any bit for the group or others
_WRITABLE_BY_OTHERS = 0o022


def _tighten(path: Path | int, mode: int) -> None:
    if mode & _SHARED:
        tight = stat.S_IMODE(mode) & ~_SHARED
        if isinstance(path, int):
            os.fchmod(path, tight)
        else:
            os.chmod(path, tight)


def make_dir(path: Path, *, fix_existing: bool = True) -> None:
    """Create ``path`` and its missing parents, each 0700 (whatever the umask).

    ``fix_existing``: an existing ``path`` (orch's own directory, made by an older orch)
    loses its group and other bits; pass False for a directory orch may share with its
    user (a custom store's directory, a repository's admin directory)."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made by a concurrent orch: its mode is fixed below like any other
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask
    if fix_existing:
        _tighten(path, path.stat().st_mode)


def open_fd(path: Path, flags: int = os.O_RDWR) -> int:
    """Open (creating it 0600) the file at ``path`` and make sure only its user reads it."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        _tighten(fd, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: Path) -> IO[bytes]:
    """A private log file opened for appending (binary), its directory made if missing."""
    make_dir(path.parent)
    return os.fdopen(open_fd(path, os.O_WRONLY | os.O_APPEND), "ab")


def create_new(path: Path) -> IO[bytes]:
    """A new private file for writing (an archive's tarball or patch); never an existing one."""
    return os.fdopen(open_fd(path, os.O_WRONLY | os.O_EXCL | os.O_TRUNC), "wb")


def create_empty(path: Path) -> None:
    """Create ``path`` as an empty private file unless it exists; an existing file is not
    even opened (see ``orch.store.engine``: a closed descriptor drops SQLite's locks)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def fix(path: Path) -> None:
    """Make an existing file private (the store's file, its -wal and -shm); a missing
    file is left missing."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    _tighten(path, mode)


def check_home(home: Path, store_file: Path | None = None) -> None:
    """Refuse a home (or store file) that another account owns or could change, the way
    ssh refuses a key file others can write; write nothing, change nothing.

    Checks the home, each existing directory above it (one writable by others lets them
    swap the home; the sticky bit of /tmp prevents that) and the store file with its
    directory. A missing home is fine: orch creates it 0700."""
    uid = os.geteuid()
    real = home.resolve()  # a symbolic link is judged by where it leads
    for path in (real, *real.parents):
        try:
            st = path.stat()
        except OSError:
            continue  # missing, or a file in the way: whoever writes there says so
        _check(path, st, uid, home, own=path == real)
    if store_file is not None:
        for path in (store_file.parent, store_file):
            try:
                st = path.stat()
            except OSError:
                continue
            _check(path, st, uid, home, own=True)


def _check(path: Path, st: os.stat_result, uid: int, home: Path, own: bool) -> None:
    what = (
        f"the orch home {home}"
        if own and path == home.resolve()
        else (f"the orch home {home} is unsafe: {path}")
    )
    owners = (uid,) if own else (uid, 0)
    if st.st_uid not in owners:
        raise UnsafeHome(
            f"{what} is owned by uid {st.st_uid}, not by you (uid {uid}): refused; "
            "use an ORCH_HOME of your own"
        )
    sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and not own
    if st.st_mode & _WRITABLE_BY_OTHERS and not sticky_dir:
        raise UnsafeHome(
            f"{what} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"refused; 'chmod go-w {path}' once you trust what it holds"
        )


def secure_home(home: Path, store_file: Path | None = None) -> None:
    """Refuse an unsafe home (``check_home``), then make a home an older orch left open
    (0755) private: the home and what orch wrote in it, once. The files inside worktrees
    keep the repository's modes: the 0700 directories above them keep others out."""
    check_home(home, store_file)
    try:
        mode = home.stat().st_mode
    except OSError:
        return  # missing (made 0700 by the first command that writes there) or unusable
    if not mode & _SHARED:
        return
    for top, dirs, files in os.walk(home):
        here = Path(top)
        if ".git" in dirs or ".git" in files:
            dirs.clear()  # a worktree: its files are the repository's, not orch's
            continue
        _tighten(here, here.stat().st_mode)
        for name in files:
            path = here / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                _tighten(path, st.st_mode)
    _tighten(home, mode)
