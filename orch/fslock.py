"""Cross-process file locks that work on Linux and macOS (``flock``).

Used to serialise what must not run concurrently in one repository or one store
(worktree registration, store creation) and to bound how many checkouts run at once.
Lock files are private (``orch.private``); their directories are made 0700 when missing.
A lock is released by the kernel when its holder dies, so kill -9 never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from orch import private
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
    private.make_dir(path.parent, fix_existing=False)
    fd = private.open_fd(path)
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
    private.make_dir(directory)
    fds = [private.open_fd(directory / f"slot-{i}.lock") for i in range(slots)]
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


class HeldLock:
    """An exclusive lock held through an open file; it lasts while any holder of the fd
    lives, so a child process that inherits ``fd`` keeps it held after its parent dies."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def hand_over(self) -> None:
        """Close this process's descriptor without unlocking: a child that inherited it
        holds the lock from now on (unlocking would release it for the child too)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def try_lock(path: Path, owner: str) -> HeldLock | None:
    """Take the lock at ``path`` now or return None; record ``owner`` in the file."""
    private.make_dir(path.parent, fix_existing=False)
    fd = private.open_fd(path)
    if not _try_lock(fd):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, owner.encode() + b"\n")
    return HeldLock(path, fd)


def lock_owner(path: Path) -> str | None:
    """What the holder wrote into the lock file (for messages), if anything."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class WriterLock:
    """Serialises writers across processes and threads with short, fair waits.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms) while another
    connection writes; under contention that, not the work, sets the latency. Taking this
    lock first (polled every fraction of a millisecond) means ``BEGIN IMMEDIATE`` never
    waits inside SQLite. The file descriptor stays open for the life of the object.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        private.make_dir(path.parent, fix_existing=False)
        self._fd = private.open_fd(path)
        self._thread_lock = threading.Lock()
        self.path = path
        self.timeout = timeout

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise LockBusy(f"store write lock is busy: waited {self.timeout:g}s")
        try:
            if not _try_lock(self._fd):
                self._wait()
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _wait(self) -> None:
        busy = LockBusy(f"store write lock is busy: waited {self.timeout:g}s for {self.path}")
        if threading.current_thread() is threading.main_thread():
            # Block in the kernel, which hands the lock to the next waiter the moment it is
            # released (polling made waiters convoy behind a preempted holder); SIGALRM
            # bounds the wait.
            def _expired(signum: int, frame: object) -> None:
                raise busy

            previous = signal.signal(signal.SIGALRM, _expired)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            return
        deadline = time.monotonic() + self.timeout  # other threads cannot take signals
        delay = 0.0002
        while not _try_lock(self._fd):
            if time.monotonic() >= deadline:
                raise busy
            time.sleep(delay)
            delay = min(delay * 1.5, 0.002)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
