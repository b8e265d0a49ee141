"""Cross-process file locks that work on Linux and macOS (``flock``).

Used to serialise what must not run concurrently in one repository or one store
(worktree registration, store creation) and to bound how many checkouts run at once.
A lock is released by the kernel when its holder dies, so kill -9 never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from orch.errors import LockBusy


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str = "lock") -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting at most ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockBusy(f"{what} is busy: waited {timeout:g}s for {path}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def slot_lock(directory: Path, slots: int, timeout: float, what: str = "slot") -> Iterator[int]:
    """Hold one of ``slots`` locks in ``directory``: a cross-process semaphore."""
    directory.mkdir(parents=True, exist_ok=True)
    fds = [
        os.open(directory / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600) for i in range(slots)
    ]
    held: int | None = None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while held is None:
            held = next((i for i, fd in enumerate(fds) if _try_lock(fd)), None)
            if held is None:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{what} is busy: waited {timeout:g}s for {directory}")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield held
    finally:
        if held is not None:
            fcntl.flock(fds[held], fcntl.LOCK_UN)
        for fd in fds:
            os.close(fd)
