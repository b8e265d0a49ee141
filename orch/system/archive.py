"""The archive of saved work under ``$ORCH_HOME/archive``.

Before orch removes anything that holds work not kept elsewhere, that work is saved here:
a patch of uncommitted changes, a tarball of untracked files, a git bundle of commits no
other ref keeps, and a manifest saying what each file is and how to restore it. The
manifest is written last (atomically), so an archive without one is incomplete and is
never taken as a reason to delete anything. Owns these files and disk-usage walks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from orch import atomic, private
from orch.errors import WorkspaceError, describe_os_error

MANIFEST = "manifest.json"


def new_archive_dir(archive_root: Path, name: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = archive_root / f"{name}-{stamp}"
    try:
        private.make_dir(archive_root)
        path.mkdir(mode=private.DIR_MODE)
    except OSError as exc:
        raise WorkspaceError(f"cannot create the archive {path}: {describe_os_error(exc)}") from exc
    return path


def save_files(worktree: Path, relative_paths: list[str], dest: Path) -> int:
    """Tar (gzip) the named files of ``worktree`` without following symlinks."""
    count = 0
    try:
        with private.create_new(dest) as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for rel in relative_paths:
                source = worktree / rel
                if source.is_symlink() or source.exists():
                    tar.add(source, arcname=rel, recursive=False)
                    count += 1
    except OSError as exc:
        raise WorkspaceError(
            f"cannot save untracked files to {dest}: {describe_os_error(exc)}"
        ) from exc
    return count


def restore_files(tarball: Path, dest: Path) -> list[str]:
    """Unpack the untracked files saved by ``save_files`` into ``dest``; return their names.

    Refuses (before writing anything) a member that would land outside ``dest`` or on
    something already there: a restore never overwrites."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                target = dest / member.name
                inside = os.path.commonpath([os.path.abspath(target), os.path.abspath(dest)])
                if os.path.isabs(member.name) or inside != os.path.abspath(dest):
                    raise WorkspaceError(f"{tarball} holds {member.name!r}, outside the worktree")
                if os.path.lexists(target):
                    raise WorkspaceError(f"{target} exists: orch restore never overwrites a file")
            tar.extractall(dest, members=members, filter="tar")  # keeps symlinks as saved
    except (OSError, tarfile.TarError) as exc:
        detail = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise WorkspaceError(f"cannot restore untracked files from {tarball}: {detail}") from exc
    return [m.name for m in members]


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    # ASCII: a file name that is not UTF-8 (kept by git as surrogate escapes) stays writable
    data = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    try:
        atomic.write_text(path, data, durable=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot write {path}: {describe_os_error(exc)}") from exc
    return path


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded


def discard(path: Path) -> None:
    """Remove an archive that could not be completed (it holds nothing saved anywhere)."""
    shutil.rmtree(path, ignore_errors=True)


def latest_archive(archive_root: Path, name: str) -> Path | None:
    """The newest complete archive saved under ``name`` (an attempt id), if any."""
    try:
        candidates = sorted(archive_root.glob(f"{name}-*"), reverse=True)
    except OSError:
        return None
    for path in candidates:
        manifest = read_manifest(path)
        if manifest is not None and manifest.get("attempt_id") == name:
            return path
    return None


def move_aside(path: Path, archive_root: Path, name: str) -> Path:
    """Move a stray directory into the archive (a rename: nothing is copied or lost)."""
    dest = new_archive_dir(archive_root, name) / "files"
    try:
        os.replace(path, dest)
    except OSError as exc:
        raise WorkspaceError(f"cannot move {path} to {dest}: {describe_os_error(exc)}") from exc
    write_manifest(
        dest.parent,
        {
            "moved_from": str(path),
            "files": {"files": f"the directory itself: mv {dest} {path}"},
            "saved_by": "orch doctor",
            "saved_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    return dest.parent


def disk_usage(path: Path) -> int:
    """Bytes allocated under ``path`` (symlinks not followed; hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                    total += getattr(st, "st_blocks", 0) * 512 or st.st_size
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return total
