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
(``<home>/checkouts/<attempt id>``, JSON: the dispatch's pid, the worktree's path and
the repository's), so that an ``orch doctor`` running meanwhile leaves it alone. A dispatch
killed before its intent leaves a detached worktree no attempt owns and a marker whose
process is gone: doctor removes the worktree (an orphan), then the marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from orch import atomic, private
from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git, Repository
from orch.models import CheckoutSpec
from orch.record import record

MARKERS = "checkouts"


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
        self._discarded = threading.Event()  # a checkout still waiting for a slot skips

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
        slots: threading.Semaphore | None = None,
    ) -> CheckoutAhead:
        """Write the marker and start the checkout in a thread. ``slots``: taken by the
        thread for its checkout (the checkouts of a best-of-N dispatch share it)."""
        marker = settings.home / MARKERS / attempt_id
        private.make_dir(marker.parent)
        record = {"pid": os.getpid(), "worktree": str(path), "repository": str(repo.root)}
        atomic.write_text(marker, json.dumps(record))
        ahead = cls(git, repo, attempt_id, path, commit, marker)
        thread = threading.Thread(
            target=ahead._check_out,
            args=(spec, checkpoint, slots),
            name=f"orch checkout {attempt_id}",
            daemon=True,
        )
        ahead._thread = thread
        try:
            thread.start()
        except BaseException:  # no thread to be had (RuntimeError): nothing was made
            drop_marker(marker)
            raise
        return ahead

    def _check_out(
        self,
        spec: CheckoutSpec,
        checkpoint: Callable[[str], None],
        slots: threading.Semaphore | None,
    ) -> None:
        try:
            with slots if slots is not None else contextlib.nullcontext():
                if not self._discarded.is_set():
                    self._add_worktree(spec, checkpoint)
        except BaseException as exc:  # handed to the dispatch's thread by result()
            self._failure = exc

    def _add_worktree(self, spec: CheckoutSpec, checkpoint: Callable[[str], None]) -> None:
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
        self._discarded.set()
        self.settle()
        with contextlib.suppress(OrchError, OSError):
            self.git.remove_worktree(self.repo, self.path)
        drop_marker(self.marker)


def drop_marker(marker: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()


@record
class Marker:
    file: Path
    pid: int  # the dispatch that wrote it
    worktree: Path
    repository: Path


def markers(settings: Settings) -> list[Marker]:
    """The markers of worktrees made ahead of an intent (one being written is skipped)."""
    return scan(settings)[0]


def scan(settings: Settings) -> tuple[list[Marker], list[Path]]:
    """The markers, and the files beside them that are none (an interrupted write, or a
    temporary file a killed one left)."""
    found: list[Marker] = []
    others: list[Path] = []
    directory = settings.home / MARKERS
    try:
        names = os.listdir(directory)
    except OSError:
        return found, others
    for name in names:
        file = directory / name
        try:
            data = json.loads(file.read_text())
            found.append(
                Marker(file, int(data["pid"]), Path(data["worktree"]), Path(data["repository"]))
            )
        except FileNotFoundError:
            continue  # gone meanwhile (its dispatch recorded its intent)
        except (OSError, ValueError, TypeError, KeyError):
            others.append(file)
    return found, others
