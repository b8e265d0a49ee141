"""Whole-file writes that a reader never sees half done: a temporary file in the same
directory, then a rename over the target.

``durable`` also flushes the data and the directory entry to disk before returning, for
files that must survive a power cut once written (the inbox payload, an archive's
manifest); status files rewritten every few seconds skip it. Failures are ``OSError``s
for the caller to describe in its own terms.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_text(path: Path, text: str, *, durable: bool = False) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
