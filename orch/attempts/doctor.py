"""The doctor use case: reconcile the store with git and the file system.

Finds what a crash (kill -9 at any step), a full disk or a hand-deleted directory leaves
behind, and with ``fix`` repairs it: attempts stuck in ``provisioning`` whose dispatch is
gone are rolled back and marked failed; a queued attempt whose worktree is gone gets it made
again from its branch (orch.attempts.dispatch.recreate); an ended attempt's row whose
worktree is gone is marked removed;
worktrees, branches and directories under orch's names that no row owns are removed;
payloads without rows are deleted and rows without payloads get theirs rewritten; git's
stale worktree bookkeeping is pruned. A worktree a live dispatch is making ahead of its
intent (orch.workspace.ahead), or one an attempt recorded after doctor read the store, is left
alone. Nothing holding work that is not kept elsewhere is
deleted without first being saved under ``$ORCH_HOME/archive``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orch import naming
from orch.attempts.dispatch.recreate import recreate_worktree
from orch.attempts.lifecycle import reap, rewrite_payload
from orch.config import Settings
from orch.errors import OrchError
from orch.git import (
    Git,
    Repository,
    admin_of_repository,
    branches_with_prefix,
    prune_candidates,
    worktree_admin_dir,
)
from orch.models import HOLDS_WORKTREE, Attempt, State, WorkspaceStatus
from orch.system import archive, inbox, processes
from orch.workspace import ahead, owners, pool, removal
from orch.workspace.owners import owner_of

if TYPE_CHECKING:
    from orch.store import Store

STUCK_AFTER = dt.timedelta(minutes=10)  # a dispatch whose process cannot be checked
STALE_MARKER_SECONDS = 60.0  # an unreadable marker this old is no write in progress
Checkpoint = Callable[[str], None]


@dataclasses.dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    repair: str
    fixed: bool = False
    archive_path: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class Doctor:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        git: Git,
        actor: str,
        fix: bool,
        checkpoint: Checkpoint = lambda step: None,
    ) -> None:
        self.store, self.settings, self.git, self.actor = store, settings, git, actor
        self.fix, self.checkpoint = fix, checkpoint
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        reap(self.store, self.actor, host=self.settings.host_name)
        attempts = self._mine()
        self._stuck_provisioning(attempts)
        attempts = self._mine()
        by_repo: dict[str, list[Attempt]] = {}
        for a in attempts:
            if a.workspace_status == WorkspaceStatus.SKIPPED_NOT_GIT:
                continue  # ran where it was started, outside git: nothing of orch's to check
            by_repo.setdefault(a.repository, []).append(a)
        for repository, rows in sorted(by_repo.items()):
            try:
                repo = self.git.discover(Path(repository))
            except OrchError as exc:
                # rows whose worktrees went with the repository are repaired all the same;
                # only worktrees still on disk keep this a problem
                self._missing_worktrees(rows)
                if any(_has_worktree(a) for a in rows):
                    self._report(
                        "repository-unusable", repository, exc.message, "none (report only)"
                    )
                continue
            self._repository(repo, rows)
        # pools of repositories that have no attempts (any more), and repositories where
        # a dispatch died before recording its intent
        checked = {str(Path(r)) for r in by_repo}
        for marker in ahead.markers(self.settings):
            if str(marker.repository) in checked or owners.making(marker):
                continue
            checked.add(str(marker.repository))
            with contextlib.suppress(OrchError):
                self._repository(self.git.discover(marker.repository), [])
        for root in pool.pooled_repositories(self.settings):
            if str(root) in checked:
                continue
            try:
                repo = self.git.discover(root)
            except OrchError:
                continue
            if str(repo.root) not in checked:
                self._pool(repo)
        self._payloads(attempts)
        self._dead_markers()
        return self.findings

    def _mine(self) -> list[Attempt]:
        """This host's attempts: doctor only ever touches its own disk."""
        here = self.settings.host_name
        return [a for a in self.store.list_attempts() if a.workspace_host in (None, here)]

    # -- helpers ---------------------------------------------------------------------------

    def _report(self, kind: str, subject: str, detail: str, repair: str) -> Finding:
        finding = Finding(kind, subject, detail, repair)
        self.findings.append(finding)
        return finding

    def _repair(self, finding: Finding, action: Callable[[], str | None]) -> None:
        if not self.fix:
            return
        try:
            finding.archive_path = action()
            finding.fixed = True
            self.checkpoint(f"fixed-{finding.kind}")
        except OrchError as exc:
            finding.error = exc.message

    def _save_and_remove(
        self, repo: Repository, path: Path | None, branch: str | None, name: str
    ) -> str | None:
        """Remove a worktree (and its branch) nobody owns, archiving unsaved work first."""
        policy = removal.Policy(
            archive=removal.Archive(
                self.settings.home / "archive", name, {"saved_by": "orch doctor"}
            ),
            forget_if_gone=False,  # git's stale bookkeeping is a finding of its own
        )
        return removal.remove(self.git, repo, path, branch, policy).archive_path

    def _in_use(self, path: Path, repo: Repository | None = None) -> bool:
        """Whether a worktree no row read earlier owns is someone's after all: a live
        dispatch's (one it is making ahead of its intent, or recorded since), or a member
        of ``repo``'s pool."""
        return owner_of(path, self.settings, self.store, repo).owned

    def _branch_owned_since(self, repo: Repository, branch: str) -> bool:
        """Whether an attempt recorded after doctor read the store owns ``branch`` (a
        dispatch records its intent before it makes its branch)."""
        return any(
            a.branch_name == branch
            and a.repository == str(repo.root)
            and a.workspace_status != WorkspaceStatus.FAILED
            for a in self.store.list_attempts()
        )

    # -- checks ----------------------------------------------------------------------------

    def _stuck_provisioning(self, attempts: list[Attempt]) -> None:
        host = self.settings.host_name
        now = self.store.clock()
        for a in attempts:
            if a.workspace_status != WorkspaceStatus.PROVISIONING:
                continue
            by = a.provisioner
            gone = by is not None and by[0] == host and not processes.is_alive(by[1], None)
            if not gone and now - a.updated_at < STUCK_AFTER:
                continue  # a dispatch still at work
            why = "its dispatch process is gone" if gone else "provisioning for over 10 minutes"
            finding = self._report(
                "stuck-provisioning",
                a.id,
                f"{a.task_key}: {why}",
                "roll back the branch, worktree and payload; mark the attempt failed",
            )
            self._repair(finding, functools.partial(self._roll_back, a))

    def _roll_back(self, a: Attempt) -> str | None:
        saved = None
        try:
            repo = self.git.discover(Path(a.repository))
        except OrchError:
            repo = None
        if repo is not None and a.worktree_path and self._not_its_own(repo, a):
            # the pool member its intent names, still ready or claimed by another
            # dispatch meanwhile: this one never made it its own
            # (the branch, only while it still points at the base)
            if a.branch_name and a.base_commit:
                policy = removal.Policy(branch_at=a.base_commit, best_effort=True)
                removal.remove(self.git, repo, None, a.branch_name, policy)
        elif repo is not None and a.worktree_path:
            # commits someone made on the branch meanwhile go to the archive first
            saved = self._save_and_remove(repo, Path(a.worktree_path), a.branch_name, a.id)
        if a.payload_path:
            inbox.remove_payload(Path(a.payload_path))
        else:
            inbox.remove_payload(inbox.payload_path(self.settings.inbox_dir, a.id))
        self.store.release_ports(a.id, self.actor, "provisioning interrupted")
        with contextlib.suppress(OrchError):
            self.store.fail_provisioning(
                a.id, "interrupted while provisioning (repaired by orch doctor)", self.actor
            )
        return saved

    def _not_its_own(self, repo: Repository, a: Attempt) -> bool:
        """Whether the worktree at ``a``'s path is not ``a``'s: a pool member still in the
        pool, or one another attempt has recorded (a dispatch records a member's path
        before it claims it, so a member two dispatches named is the live one's)."""
        path = Path(a.worktree_path or "")
        if pool.is_pool_path(self.settings, repo, path):
            return True
        if not pool.in_a_pool(path):
            return False  # named after the attempt: nobody else's
        return any(other.id != a.id for other in self.store.live_attempts_using_worktree(str(path)))

    def _repository(self, repo: Repository, rows: list[Attempt]) -> None:
        root = self.settings.worktree_root / naming.repository_dir_name(repo.root)
        # resolved, as git lists worktrees (rows written before orch resolved the
        # worktree root may name it through a symbolic link)
        owned_paths = {
            str(Path(a.worktree_path).resolve())
            for a in rows
            if a.worktree_path and a.workspace_status.occupies_worktree
        }
        owned_branches = {
            a.branch_name
            for a in rows
            if a.branch_name and a.workspace_status != WorkspaceStatus.FAILED
        }
        self._missing_worktrees(rows, repo)
        # registered worktrees under orch's root that no row owns
        registered = []
        for entry in self.git.list_worktrees(repo):
            path = Path(entry.get("worktree", ""))
            if not _inside(path, self.settings.worktree_root):
                continue
            registered.append(path)
            if str(path) in owned_paths or "prunable" in entry:
                continue
            if self._in_use(path, repo):
                continue  # a pool member (checked below), or a live dispatch's or attempt's
            branch = entry.get("branch", "").removeprefix("refs/heads/") or None
            if (
                branch
                and branch not in owned_branches
                and not branch.startswith(f"{self.settings.branch_prefix}/")
            ):
                branch = None  # never delete a branch orch did not name
            if branch in owned_branches:
                branch = None
            finding = self._report(
                "orphan-worktree",
                str(path),
                "a worktree under orch's root that no attempt owns",
                "remove it (saving unsaved work to the archive first)",
            )
            self._repair(
                finding, functools.partial(self._save_and_remove, repo, path, branch, path.name)
            )
        # directories under the repository's root that git does not know
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if child in registered or str(child) in owned_paths or child.name == pool.POOL_DIR:
                    continue
                if self._in_use(child):
                    continue
                finding = self._report(
                    "stray-directory",
                    str(child),
                    "not a registered worktree",
                    "move it into the archive (nothing is deleted)"
                    if _nonempty(child)
                    else "remove it (empty)",
                )
                self._repair(finding, functools.partial(self._move_aside, child))
        self._pool(repo)
        # branches with orch's prefix that no row owns
        for branch, tip in sorted(
            branches_with_prefix(self.git, repo, self.settings.branch_prefix).items()
        ):
            if branch in owned_branches:
                continue
            checked_out = any(
                e.get("branch") == f"refs/heads/{branch}" for e in self.git.list_worktrees(repo)
            )
            if checked_out:
                continue  # reported above as an orphan worktree, or someone's own checkout
            if self._branch_owned_since(repo, branch):
                continue
            finding = self._report(
                "orphan-branch",
                branch,
                f"at {tip[:12]}, no attempt owns it",
                "delete it (bundling commits no other ref keeps into the archive first)",
            )
            self._repair(
                finding,
                functools.partial(
                    self._save_and_remove, repo, None, branch, branch.replace("/", "-")
                ),
            )
        # git's own stale bookkeeping
        candidates = prune_candidates(self.git, repo)
        if candidates:
            finding = self._report(
                "prunable-worktrees", str(repo.root), "; ".join(candidates), "git worktree prune"
            )
            self._repair(finding, functools.partial(self._prune, repo))

    def _pool(self, repo: Repository) -> None:
        """Warm pool members that must not be handed out: removed (a member of another
        repository is moved into the archive; unsaved work is archived first)."""
        for member in pool.inspect(self.git, repo, self.settings):
            if member.problem is None:
                continue
            finding = self._report(
                "pool-member-damaged",
                str(member.path),
                member.problem,
                "remove it (saving anything unsaved to the archive first)",
            )
            self._repair(finding, functools.partial(self._remove_member, repo, member.path))

    def _remove_member(self, repo: Repository, path: Path) -> str | None:
        if not pool.take(path):
            return None  # a dispatch claimed it since it was checked: the attempt's now
        admin = worktree_admin_dir(path) if path.is_dir() else None
        if admin is None or not admin_of_repository(repo, admin):
            return pool.discard(self.git, repo, self.settings, path)
        self.git.repair_worktree(repo, path, check=False)
        saved = self._save_and_remove(repo, path, None, f"pool-{path.name}")
        pool.unmark(path)
        return saved

    def _dead_markers(self) -> None:
        """Markers of dispatches that died before recording their intent. The worktree
        such a dispatch started is an orphan worktree (removed above); its marker goes
        once the worktree is gone, not before: the marker is what leads doctor to a
        repository no row names."""
        for marker in ahead.markers(self.settings):
            if owners.making(marker):
                continue
            if os.path.lexists(marker.worktree):
                self._report(
                    "dead-dispatch-marker",
                    str(marker.file),
                    f"left by dispatch {marker.pid} (gone); its worktree {marker.worktree} "
                    "is still there",
                    "none until the worktree is removed (run 'orch doctor --fix' where "
                    f"{marker.repository} is)",
                )
                continue
            finding = self._report(
                "dead-dispatch-marker",
                str(marker.file),
                f"left by dispatch {marker.pid} (gone) for {marker.worktree}",
                "delete it",
            )
            self._repair(finding, functools.partial(ahead.drop_marker, marker.file))
        for leftover in ahead.scan(self.settings)[1]:
            age = _age(leftover)
            if age is None or age < STALE_MARKER_SECONDS:
                continue  # gone meanwhile, or maybe still being written
            finding = self._report(
                "dead-dispatch-marker",
                str(leftover),
                "unreadable (an interrupted write)",
                "delete it",
            )
            self._repair(finding, functools.partial(ahead.drop_marker, leftover))

    def _missing_worktrees(self, rows: list[Attempt], repo: Repository | None = None) -> None:
        """Rows whose worktree is gone: a queued attempt's is made again (in ``repo``)."""
        for a in rows:
            if (
                a.workspace_status.holds_worktree
                and a.worktree_path
                and not Path(a.worktree_path).is_dir()
            ):
                if a.state == State.QUEUED and repo is not None:
                    finding = self._report(
                        "worktree-missing",
                        a.id,
                        f"{a.task_key} is queued but {a.worktree_path} is gone",
                        "make the worktree again from its branch (or its base commit)",
                    )
                    self._repair(finding, functools.partial(self._recreate, a, repo))
                    continue
                if not a.terminal:
                    self._report(
                        "worktree-missing",
                        a.id,
                        f"{a.task_key} is {a.state} but {a.worktree_path} is gone",
                        "none while it is live (cancel it)",
                    )
                    continue
                finding = self._report(
                    "worktree-missing",
                    a.id,
                    f"{a.worktree_path} is gone",
                    "mark the workspace removed (the branch is kept)",
                )
                self._repair(finding, functools.partial(self._mark_removed, a))

    def _recreate(self, a: Attempt, repo: Repository) -> None:
        recreate_worktree(a, repo, self.settings, self.git, self.store, self.actor)

    def _mark_removed(self, a: Attempt) -> str | None:
        # a cleanup --force killed after saving the work: say where it went ('orch show')
        saved = archive.latest_archive(self.settings.home / "archive", a.id)
        self.store.release_ports(a.id, self.actor, "worktree gone")
        self.store.mark_workspace(
            [a.id],
            HOLDS_WORKTREE,
            WorkspaceStatus.ARCHIVED if saved else WorkspaceStatus.REMOVED,
            self.actor,
            archive_path=str(saved) if saved else None,
            reason="worktree found missing by orch doctor",
        )
        if a.payload_path:
            inbox.remove_payload(Path(a.payload_path))
        return str(saved) if saved else None

    def _move_aside(self, path: Path) -> str | None:
        if not _nonempty(path):
            path.rmdir()
            return None
        return str(archive.move_aside(path, self.settings.home / "archive", f"stray-{path.name}"))

    def _rewrite_payload(self, a: Attempt) -> None:
        rewrite_payload(a, self.settings, self.store)  # with its port bundle

    def _prune(self, repo: Repository) -> None:
        self.git.prune_worktrees(repo)

    def _payloads(self, attempts: list[Attempt]) -> None:
        inbox_dir = self.settings.inbox_dir
        known = {a.id: a for a in attempts}
        if inbox_dir.is_dir():
            for path in sorted(inbox_dir.iterdir()):
                attempt_id = path.name.removesuffix(".json")
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    finding = self._report(
                        "partial-payload", str(path), "left by an interrupted write", "delete it"
                    )
                elif path.suffix == ".json" and attempt_id not in known:
                    finding = self._report(
                        "orphan-payload", str(path), "no attempt in the store", "delete it"
                    )
                else:
                    continue
                self._repair(finding, functools.partial(_remove_file, path))
        for a in attempts:
            if (
                a.workspace_status.holds_worktree
                and not a.terminal
                and a.payload_path
                and not Path(a.payload_path).exists()
            ):
                finding = self._report(
                    "missing-payload",
                    a.id,
                    f"{a.payload_path} is gone",
                    "write it again from the store",
                )
                self._repair(finding, functools.partial(self._rewrite_payload, a))


def _age(path: Path) -> float | None:
    """Seconds since ``path`` was last written; None when it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def _remove_file(path: Path) -> None:
    inbox.remove_payload(path)


def _has_worktree(a: Attempt) -> bool:
    return bool(
        a.workspace_status.occupies_worktree and a.worktree_path and Path(a.worktree_path).is_dir()
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _nonempty(path: Path) -> bool:
    try:
        return not path.is_dir() or any(path.iterdir())
    except OSError:
        return True


def doctor(
    store: Store,
    settings: Settings,
    git: Git,
    actor: str,
    fix: bool,
    checkpoint: Checkpoint = lambda step: None,
) -> list[Finding]:
    return Doctor(store, settings, git, actor, fix, checkpoint).run()
