"""Placing files git does not carry into a new worktree: copy, hard link, reflink, symlink.

Never overwrites: a destination that exists (tracked content, or a file already there)
is left alone and reported. Hard links and reflinks make a ``node_modules``-sized tree
cost almost no disk; a hard-linked file edited in place changes in every worktree that
links it, which is why ``copy`` and ``symlink`` can be chosen per pattern.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from orch.errors import WorkspaceError, describe_os_error

FICLONE = 0x40049409  # Linux ioctl: share the source file's extents (btrfs, xfs, …)


def _reflink_file(src: str, dst: str) -> None:
    if not sys.platform.startswith("linux"):
        raise OSError(errno.EOPNOTSUPP, "reflinks need Linux here")
    with open(src, "rb") as fs, open(dst, "wb") as fd:
        fcntl.ioctl(fd.fileno(), FICLONE, fs.fileno())
    shutil.copystat(src, dst)


# File systems (st_dev) that refused a clone: the rest of a tree goes straight to hard
# links instead of trying, creating and deleting a file per entry (5-7x slower on ext4).
_NO_REFLINK: set[int] = set()


def _reflink_or_link(src: str, dst: str) -> None:
    device = os.stat(os.path.dirname(dst) or ".").st_dev
    if device not in _NO_REFLINK:
        try:
            _reflink_file(src, dst)
            return
        except OSError:
            _NO_REFLINK.add(device)
            if os.path.exists(dst):
                os.unlink(dst)
    _link_or_copy(src, dst)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)  # another file system: a hard link is impossible


_FILE_OPS: dict[str, Callable[[str, str], object]] = {
    "copy": shutil.copy2,
    "hardlink": _link_or_copy,
    "reflink": _reflink_or_link,
}


def place(src: Path, dest: Path, mode: str) -> bool:
    """Put ``src`` (file or directory) at ``dest`` by ``mode``; False if ``dest`` exists."""
    if dest.exists() or dest.is_symlink():
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if mode == "symlink":
            dest.symlink_to(src.resolve(), target_is_directory=src.is_dir())
        elif src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dest, symlinks=True, copy_function=_FILE_OPS[mode])
        elif src.is_symlink():
            dest.symlink_to(os.readlink(src))
        else:
            _FILE_OPS[mode](str(src), str(dest))
    except OSError as exc:
        raise WorkspaceError(f"cannot {mode} {src} to {dest}: {describe_os_error(exc)}") from exc
    return True


def link_shared(target: Path, link: Path) -> bool:
    """Make ``link`` a symlink to the shared directory ``target`` (created if missing)."""
    if link.exists() or link.is_symlink():
        return False
    try:
        target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.resolve(), target_is_directory=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot link {link} to {target}: {describe_os_error(exc)}") from exc
    return True
