"""A cold dispatch's checkout, started while the store opens.

With no warm pool member to hand over, a dispatch creates its worktree, which on a large
repository costs as much as everything else together. That checkout is git's work (the
disk and one core); importing and opening the store is Python's (the other core). So
once every check a user can fail has passed, a cold dispatch starts its worktree in a
thread, detached at base_commit, at the path named after the attempt, and only then
opens the store. The attempt's branch is made and checked out in it after the intent is
recorded (DESIGN.md §2.3), as for a warm pool member: what happens before the intent is
the making of a clean detached worktree, the same work ``orch pool fill`` does ahead of
time.

Until the intent names the worktree, a marker in the orch home says whose it is
(``<home>/checkouts/<attempt id>``: the dispatch's pid, the worktree's path and the
repository's), so that an ``orch doctor`` running meanwhile leaves it alone. A dispatch
killed before its intent leaves a detached worktree no attempt owns and a marker whose
process is gone: doctor removes the worktree (an orphan), then the marker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orch import atomic
from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git, Repository
from orch.models import CheckoutSpec

MARKERS = "checkouts"
SWITCH_INTERVAL = 0.0005  # seconds


class CheckoutAhead:
    """A worktree being made in a thread for the attempt ``attempt_id``."""

    def __init__(
        self, git: Git, repo: Repository, attempt_id: str, path: Path, commit: str, marker: Path
    ) -> None:
        self.git, self.repo, self.attempt_id = git, repo, attempt_id
        self.path, self.commit = path, commit
        self.marker = marker
        self.recorded = False  # the intent names the worktree: from then on it is the attempt's
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._switch_interval = sys.getswitchinterval()

    @classmethod
    def start(
        cls,
        git: Git,
        repo: Repository,
        settings: Settings,
        attempt_id: str,
        path: Path,
        commit: str,
        spec: CheckoutSpec,
        checkpoint: Callable[[str], None] = lambda step: None,
    ) -> CheckoutAhead:
        marker = settings.home / MARKERS / attempt_id
        marker.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(marker, f"{os.getpid()}\n{path}\n{repo.root}\n")
        ahead = cls(git, repo, attempt_id, path, commit, marker)
        thread = threading.Thread(
            target=ahead._check_out,
            args=(spec, checkpoint),
            name=f"orch checkout {attempt_id}",
            daemon=True,
        )
        ahead._thread = thread
        # the thread needs the GIL for a moment between its git processes, while the
        # dispatch's thread imports the store's modules (pure Python, holding it): hand it
        # over sooner than the default 5 ms so that git starts its checkout sooner
        ahead._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            thread.start()
        except BaseException:  # no thread to be had (RuntimeError): nothing was made
            sys.setswitchinterval(ahead._switch_interval)
            drop_marker(marker)
            raise
        return ahead

    def _check_out(self, spec: CheckoutSpec, checkpoint: Callable[[str], None]) -> None:
        try:
            self.git.add_worktree(
                self.repo,
                self.path,
                None,
                self.commit,
                sparse=spec.sparse_paths,
                lfs_skip_smudge=spec.lfs_skip_smudge,
                hook=False,  # run once HEAD is on the attempt's branch, after the intent
            )
            checkpoint("checked-out-ahead")
        except BaseException as exc:  # handed to the dispatch's thread by result()
            self._failure = exc
        finally:
            sys.setswitchinterval(self._switch_interval)

    def settle(self) -> None:
        """Wait until git is done here (whether or not it succeeded)."""
        if self._thread is not None:
            self._thread.join()

    def result(self) -> None:
        """Wait for the checkout; raise what made it fail."""
        self.settle()
        if self._failure is not None:
            raise self._failure

    def owned(self) -> None:
        """The intent names the worktree now: the marker's work is done."""
        self.recorded = True
        drop_marker(self.marker)

    def discard(self) -> None:
        """The dispatch failed before its intent: remove what was made."""
        self.settle()
        with contextlib.suppress(OrchError, OSError):
            self.git.remove_worktree(self.repo, self.path)
        drop_marker(self.marker)


def drop_marker(marker: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()


@dataclasses.dataclass(frozen=True)
class Marker:
    file: Path
    pid: int  # the dispatch that wrote it
    worktree: Path
    repository: Path


def markers(settings: Settings) -> list[Marker]:
    """The markers of worktrees made ahead of an intent (one being written is skipped)."""
    found: list[Marker] = []
    directory = settings.home / MARKERS
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        marker = directory / name
        try:
            pid, worktree, repository = marker.read_text().splitlines()[:3]
            found.append(Marker(marker, int(pid), Path(worktree), Path(repository)))
        except (OSError, ValueError):
            continue  # being written, or not a marker of ours
    return found


def unreadable_markers(settings: Settings, older_than: float) -> list[Path]:
    """Files in the markers' directory that are not markers (an interrupted write, a
    temporary file left by a killed one) and older than ``older_than`` seconds."""
    directory = settings.home / MARKERS
    readable = {m.file for m in markers(settings)}
    found: list[Path] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    now = time.time()
    for name in names:
        path = directory / name
        try:
            old = now - path.stat().st_mtime > older_than
        except OSError:
            continue
        if old and path not in readable:
            found.append(path)
    return found
