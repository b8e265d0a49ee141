"""The warm worktree pool: clean, detached worktrees made ahead of time for dispatch.

On a large repository creating a worktree costs seconds; a pool member is one made
earlier (``orch pool fill``), so that dispatch only has to check it and point HEAD at the
attempt's branch. Layout, per repository and checkout flavour::

    <worktree_root>/<repo dir>/.orch-pool/<flavour>/w-<id>         a member's worktree
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/m-<id>         marker: w-<id> is ready
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.filling-<id>  marker: being made,
                                                                   refreshed or returned
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.damaged-<id>  taken out, to be removed
    <worktree_root>/<repo dir>/.orch-pool/size                     the size `fill` keeps
    <worktree_root>/<repo dir>/.orch-pool/repository               whose pool it is

A member is handed over where it was made: the attempt records the member's path as its
worktree_path. It never moves, so the untracked cache its index keeps (git keys it on the
worktree's path) stays valid: the hand-over check and every later `git status` in the
attempt read only directories that changed. Claiming is the removal of the ready marker:
of two processes removing it, exactly one succeeds, on every file system and with either
store. Whoever holds a member (a fill refreshing or removing it) first renames its marker
the same way. A ``w-`` directory with no marker belongs to the attempt that claimed it.
Members are locked (``git worktree lock``) while in the pool. What is handed out is
checked first (a worktree of this repository, detached, locked by the pool, clean);
anything else is taken out and replaced, never handed out. Fills are serialised per
repository by a lock, so two never overfill.

Members never have submodules, and a repository whose checkout includes them (HEAD has a
``.gitmodules`` and the ``submodules`` setting is on) has no pool: refreshing a member or
handing it over at another commit would have to bring every submodule along too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orch import atomic, naming
from orch.config import Settings
from orch.errors import GitError, OrchError, WorkspaceError, describe_os_error
from orch.fslock import file_lock, try_lock
from orch.git import (
    DirtyPath,
    Git,
    PendingDirtyCheck,
    Repository,
    checkout_env,
    force_remove_worktree,
    parse_porcelain,
    worktree_admin_dir,
)
from orch.models import CheckoutSpec

POOL_DIR = ".orch-pool"
LOCK_REASON = "orch pool member"
WORKTREE = "w-"  # a member's worktree directory
READY = "m-"  # marker file: the member is ready to hand out
FILLING = ".filling-"  # marker file: the member is being made, refreshed or returned
DAMAGED = ".damaged-"  # a member's directory, set aside
SIZE_FILE = "size"
REPOSITORY_FILE = "repository"


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A pool member that is now the attempt's worktree, detached at ``commit``."""

    path: Path
    commit: str
    member: str


@dataclasses.dataclass(frozen=True)
class Probe:
    """A ``git status`` of one ready member, started before the dispatch claims it."""

    member: Path
    check: PendingDirtyCheck

    def close(self) -> None:
        self.check.close()  # reap the process


@dataclasses.dataclass(frozen=True)
class MemberInfo:
    path: Path
    flavour: str
    commit: str | None
    problem: str | None  # None: ready to hand out

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "flavour": self.flavour,
            "commit": self.commit,
            "problem": self.problem,
        }


@dataclasses.dataclass(frozen=True)
class FillResult:
    size: int
    created: int
    refreshed: int
    removed: tuple[str, ...]  # "<path>: <problem>" of members taken out
    ready: int


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


# -- checks ----------------------------------------------------------------------------------


def _admin_problem(repo: Repository, path: Path) -> str | None:
    """What makes ``path`` unfit before git's bookkeeping is touched (cheap file reads)."""
    if not path.is_dir():
        return "missing"
    admin = worktree_admin_dir(path)
    if admin is None:
        return "not a git worktree"
    worktrees = (repo.common_dir / "worktrees").resolve()
    if admin.resolve().parent != worktrees:
        return "a worktree of another repository"
    if not admin.is_dir():
        return "git no longer knows this worktree"
    try:
        reason = (admin / "locked").read_text().strip()
    except OSError:
        return "not locked by the pool"
    if reason != LOCK_REASON:
        return f"locked by someone else ({reason or 'no reason given'})"
    try:
        head = (admin / "HEAD").read_text().strip()
    except OSError:
        return "no HEAD"
    if head.startswith("ref:"):
        return "has a branch checked out"
    return None


def _admin_head(path: Path) -> str | None:
    admin = worktree_admin_dir(path)
    try:
        return (admin / "HEAD").read_text().strip() if admin else None
    except OSError:
        return None


def dirt_problem(pending: PendingDirtyCheck) -> str | None:
    dirt = pending.result()
    return "git status failed" if dirt is None else _describe(dirt)


def _describe(dirt: list[DirtyPath]) -> str | None:
    if not dirt:
        return None
    shown = ", ".join(d.path for d in dirt[:3])
    return f"dirty ({len(dirt)} path{'s' if len(dirt) != 1 else ''}: {shown})"


def check_member(
    git: Git, repo: Repository, path: Path, started: PendingDirtyCheck | None = None
) -> str | None:
    """Why this member must not be handed out, or None (full check, with ``git status``;
    ``started``: that status, already running in the member)."""
    problem = _admin_problem(repo, path) or _bookkeeping_problem(path)
    if problem is None:
        problem = dirt_problem(started or git.start_dirty_check(path))
    return problem


def _bookkeeping_problem(path: Path) -> str | None:
    """Whether git's record of the worktree (checked by _admin_problem) points back at it."""
    admin = worktree_admin_dir(path)
    try:
        recorded = Path((admin / "gitdir").read_text().strip()) if admin else None
    except OSError:
        recorded = None
    if recorded is None:
        return "git's bookkeeping of it is incomplete"
    if recorded.resolve() != (path / ".git").resolve():
        return "git's bookkeeping points elsewhere"
    return None


# -- claiming (dispatch) ---------------------------------------------------------------------


def probe(git: Git, repo: Repository, settings: Settings, spec: CheckoutSpec) -> Probe | None:
    """Start checking one ready member (at random, so that concurrent dispatches mostly
    look at different ones); None when the pool has none."""
    if not spec.poolable:
        return None
    members = _claimable(flavour_dir(settings, repo, spec))
    if not members:
        return None
    member = members[int.from_bytes(os.urandom(4), "big") % len(members)]
    try:
        return Probe(member, git.start_dirty_check(member, yield_cpu=True))
    except OSError:
        return None  # gone: the claim finds out and takes it out of the pool


def _claimable(directory: Path) -> list[Path]:
    """Ready members for a dispatch; an unreadable pool is an empty one (the dispatch
    makes a fresh worktree; `orch pool fill` and `orch doctor` report the pool)."""
    try:
        return ready_members(directory)
    except WorkspaceError:
        return []


def claim(
    git: Git,
    repo: Repository,
    settings: Settings,
    spec: CheckoutSpec,
    member: Path,
    probe: Probe | None = None,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> Claimed | None:
    """Take the ready member whose worktree is ``member`` if it is clean; None when
    another dispatch (or a fill) took it first, or when it failed a check (a worktree of
    this repository where git's bookkeeping says, locked by the pool, detached, clean):
    it is then set aside as damaged.

    The caller records ``member`` as its worktree before the claim (an ``orch doctor``
    running meanwhile must see whose it is); once its ready marker is gone it is the
    caller's to remove. ``probe``: a ``git status`` already running in ``member``.
    """
    if not spec.poolable:
        return None
    directory = flavour_dir(settings, repo, spec)
    try:
        _marker(member, READY).unlink()
    except FileNotFoundError:
        return None  # another dispatch (or a fill) took it first
    except OSError as exc:
        raise WorkspaceError(
            f"cannot claim pool member {member}: {describe_os_error(exc)}"
        ) from exc
    checkpoint("pool-member-claimed")
    probed = probe.check if probe is not None and member == probe.member else None
    problem = check_member(git, repo, member, probed)
    commit = _admin_head(member)
    if problem is None and commit:
        try:
            git.run(["worktree", "unlock", str(member)], cwd=repo.root)
        except GitError as exc:
            problem = exc.message
    if problem is None and commit:
        return Claimed(path=member, commit=commit, member=member.name)
    set_aside(git, repo, member, directory)
    return None


class MemberStuck(WorkspaceError):
    """A damaged member could not be moved aside: it stays where it is, with whatever it
    holds (nothing may delete it; ``orch doctor --fix`` archives it)."""


def set_aside(git: Git, repo: Repository, path: Path, directory: Path) -> None:
    """Move a member that must not be handed out out of the way as damaged (git's
    bookkeeping follows it when it is this repository's, so its path stays free)."""
    aside = directory / f"{DAMAGED}{path.name.removeprefix(WORKTREE)}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.rename(path, aside)
    except FileNotFoundError:
        _forget(git, repo, path)  # nothing there to keep
        _unmark(path)
        return
    except OSError as exc:
        raise MemberStuck(
            f"a damaged pool member could not be moved aside to {aside} "
            f"({describe_os_error(exc)}); it is kept at {path}: 'orch doctor --fix' "
            "archives it"
        ) from exc
    _unmark(path)
    if _admin_problem(repo, aside) != "a worktree of another repository":
        git.run(["worktree", "repair", str(aside)], cwd=repo.root, check=False)


def switch_to_branch(
    git: Git,
    repo: Repository,
    path: Path,
    branch: str,
    old: str,
    new: str,
    spec: CheckoutSpec,
) -> None:
    """Check out ``branch`` (already at ``new``) in a clean member detached at ``old``.

    Only the files that differ between the two commits are rewritten (a two-way
    ``read-tree -m -u``); at the same commit nothing but HEAD changes.
    """
    env = checkout_env(spec.lfs_skip_smudge)
    if old != new:
        git.run(["read-tree", "-m", "-u", old, new], cwd=path, env=env)
    git.attach_head(path, branch, old)
    git.post_checkout(path, old, new, env, repo)


# -- filling ---------------------------------------------------------------------------------


def fill(
    git: Git,
    repo: Repository,
    settings: Settings,
    spec: CheckoutSpec,
    size: int | None = None,
) -> FillResult:
    """Bring the pool to ``size`` (recorded for later refills) or the recorded size.

    Under the repository's fill lock: damaged members and leftovers of an interrupted
    fill are removed, members at an older commit are brought to the main worktree's
    HEAD, and new members are made until the pool holds the size; extra ones go.
    """
    root = pool_root(settings, repo)
    with _filling(repo, settings):
        try:
            root.mkdir(parents=True, exist_ok=True)
            if size is not None:
                atomic.write_text(root / SIZE_FILE, f"{size}\n")
            if not (root / REPOSITORY_FILE).exists():
                atomic.write_text(root / REPOSITORY_FILE, f"{repo.root}\n")  # for orch doctor
        except OSError as exc:
            raise WorkspaceError(f"cannot write the pool {root}: {describe_os_error(exc)}") from exc
        # no members for a checkout with submodules (module docstring): old ones go
        target = target_size(settings, repo) if spec.poolable else 0
        directory = flavour_dir(settings, repo, spec)
        removed = _sweep(git, repo, settings, directory)
        for gone, _commit in _missing_members(git, repo, directory):
            removed.append(f"{gone}: missing")
            discard(git, repo, settings, gone)
        head = git.resolve_commit(repo, "HEAD")
        refreshed = 0
        for member in ready_members(directory):
            problem = check_member(git, repo, member)
            if problem is None and _admin_head(member) == head:
                continue
            if not _take(member):
                continue  # claimed meanwhile
            if problem is None:
                problem = _refresh(git, repo, member, head, spec)
                refreshed += problem is None
            if problem is not None:
                removed.append(f"{member}: {problem}")
                if problem.startswith("dirty") or "another repository" in problem:
                    # maybe someone's work: orch doctor --fix archives it, then removes it
                    set_aside(git, repo, member, directory)
                else:
                    discard(git, repo, settings, member)
        for extra in ready_members(directory)[target:]:
            # taken out first, so that no dispatch claims it while it goes
            if _take(extra):
                discard(git, repo, settings, extra)
        created = 0
        while len(ready_members(directory)) < target:
            _create(git, repo, directory, head, spec)
            created += 1
        return FillResult(
            size=target,
            created=created,
            refreshed=refreshed,
            removed=tuple(removed),
            ready=len(ready_members(directory)),
        )


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


def _sweep(git: Git, repo: Repository, settings: Settings, directory: Path) -> list[str]:
    """Remove what a fill that died left half made (damaged members stay for
    ``orch doctor --fix``, which archives anything unsaved in them first), and members
    an older orch left in its layout (a ready member was a directory named ``m-<id>``)."""
    removed: list[str] = []
    for name in _names(directory):
        path = directory / name
        if name.startswith(FILLING) and path.is_dir():  # an older orch's, in the making
            removed.append(f"{path}: left over")
            discard(git, repo, settings, path)
        elif name.startswith(FILLING):
            member = directory / f"{WORKTREE}{name.removeprefix(FILLING)}"
            removed.append(f"{member}: left over")
            discard(git, repo, settings, member)
        elif name.startswith(READY) and path.is_dir():
            problem = check_member(git, repo, path)
            removed.append(f"{path}: made by an older orch")
            if problem is not None and (
                problem.startswith("dirty") or "another repository" in problem
            ):
                set_aside(git, repo, path, directory)
            else:
                discard(git, repo, settings, path)
    return removed


def _create(git: Git, repo: Repository, directory: Path, head: str, spec: CheckoutSpec) -> None:
    building = directory / f"{WORKTREE}{naming.random_hex()}"
    directory.mkdir(parents=True, exist_ok=True)
    _marker(building, FILLING).touch(exist_ok=False)
    try:
        git.add_worktree(
            repo,
            building,
            None,
            head,
            submodules=False,  # a member has none (module docstring)
            lfs_skip_smudge=spec.lfs_skip_smudge,
        )
        problem = _settle(git, building)
        if problem is not None:
            raise WorkspaceError(f"a new pool member is not clean: {problem}")
        _enter(git, repo, building)
    except BaseException:
        with contextlib.suppress(OrchError, OSError):
            git.remove_worktree(repo, building)
        _unmark(building)
        raise


def _has_submodules_at(git: Git, repo: Repository, spec: CheckoutSpec, commit: str) -> bool:
    """Whether a worktree of this flavour at ``commit`` would have submodules checked out
    (``spec`` may have been worked out for another commit: an attempt's base)."""
    return spec.submodules is not False and git.has_submodules(repo, commit)


def _settle(git: Git, path: Path) -> str | None:
    """Check a member that nobody else uses yet, and leave its index with fresh stat data
    (no racily clean entries to re-read at hand-over) and an untracked cache.

    The cache is what makes the hand-over check cheap: with it `git status` reads only the
    directories that changed instead of every one (at 50k files about half the time).
    git keys it on the worktree's path, which is why members are handed over where they
    are made. A repository that turns the cache off (core.untrackedCache=false) gets
    none."""
    _outwait_racy_entries(path)
    setting = (git.config_value_in(path, "core.untrackedCache") or "").lower()
    cache = setting not in ("false", "no", "off", "0")
    proc = git.run(
        [
            *(["-c", "core.untrackedCache=true"] if cache else []),
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=normal",
        ],
        cwd=path,
        check=False,
    )
    if proc.returncode != 0:
        return "git status failed"
    return _describe(parse_porcelain(proc.stdout))


RACY_INDEX_BYTES = 256 * 1024  # about 2,500 entries


def _outwait_racy_entries(path: Path) -> None:
    """Files written in the same second as the index are "racily clean": every `git
    status` re-reads them until the index is written again later. A member is checked
    with `--no-optional-locks` (no index write) at hand-over, so on a large checkout wait
    until the index is older than a second; the status that follows rewrites it."""
    admin = worktree_admin_dir(path)
    try:
        st = (admin / "index").stat() if admin else None
    except OSError:
        return
    if st is not None and st.st_size >= RACY_INDEX_BYTES:
        delay = st.st_mtime + 1.1 - time.time()
        if delay > 0:
            time.sleep(delay)


def _enter(git: Git, repo: Repository, member: Path) -> None:
    """Lock a checked member and make it claimable (the ready marker is the moment)."""
    git.run(["worktree", "lock", "--reason", LOCK_REASON, str(member)], cwd=repo.root)
    os.rename(_marker(member, FILLING), _marker(member, READY))


def _refresh(git: Git, repo: Repository, member: Path, head: str, spec: CheckoutSpec) -> str | None:
    """Move a member the caller took out (_take) from an older commit to ``head`` (only
    differing files are rewritten) and put it back. Returns what is wrong with it (None:
    refreshed); a member that failed stays out of the pool."""
    if _has_submodules_at(git, repo, spec, head):
        return "HEAD has submodules: a pool member cannot hold them"
    try:
        env = checkout_env(spec.lfs_skip_smudge)
        git.run(["checkout", "-q", "--detach", head], cwd=member, env=env)
        problem = _settle(git, member)
        if problem is not None:
            return problem
        os.rename(_marker(member, FILLING), _marker(member, READY))
    except (OrchError, OSError) as exc:
        return exc.message if isinstance(exc, OrchError) else describe_os_error(exc)
    return None


def discard(git: Git, repo: Repository, settings: Settings, path: Path) -> str | None:
    """Remove a pool member and its markers; one of another repository is moved into the
    archive instead (nothing is deleted that orch cannot tell is its own). Returns an
    archive path."""
    try:
        return _discard(git, repo, settings, path)
    finally:
        if path.name.startswith(WORKTREE) and not path.exists():
            _unmark(path)


def _forget(git: Git, repo: Repository, path: Path) -> None:
    """Drop git's record of a member whose directory is gone (git keeps a locked one's
    bookkeeping until it is unlocked)."""
    git.run(["worktree", "unlock", str(path)], cwd=repo.root, check=False)
    git.run(["worktree", "prune"], cwd=repo.root, check=False)


def _discard(git: Git, repo: Repository, settings: Settings, path: Path) -> str | None:
    if not path.exists():
        _forget(git, repo, path)
        return None
    admin = worktree_admin_dir(path)
    if admin is not None and admin.resolve().parent != (repo.common_dir / "worktrees").resolve():
        from orch.system import archive  # rarely needed; tarfile is not imported on every dispatch

        return str(archive.move_aside(path, settings.home / "archive", f"pool-{path.name}"))
    if admin is not None and admin.is_dir():
        git.run(["worktree", "repair", str(path)], cwd=repo.root, check=False)
        git.run(["worktree", "unlock", str(path)], cwd=repo.root, check=False)
    force_remove_worktree(git, repo, path)
    return None


def give_back(
    git: Git, repo: Repository, settings: Settings, path: Path, spec: CheckoutSpec
) -> bool:
    """Make an ended attempt's worktree a pool member instead of deleting it (cleanup's
    opt-in). The caller has checked that it holds nothing unsaved. It is detached at the
    main worktree's HEAD (only differing files rewritten), ignored files are removed, and
    it enters the pool only if it is then clean. False when the pool is already full, or
    the worktree cannot be made like a fresh member (the caller then removes it, where it
    was)."""
    if not spec.poolable or worktree_admin_dir(path) is None:
        return False
    directory = flavour_dir(settings, repo, spec)
    try:
        with _filling(repo, settings):
            return _give_back(git, repo, settings, path, spec, directory)
    except OrchError:
        return False


def _give_back(
    git: Git, repo: Repository, settings: Settings, path: Path, spec: CheckoutSpec, directory: Path
) -> bool:
    # size 0 is "no warm pool": the next fill would delete what came back
    if len(ready_members(directory)) >= target_size(settings, repo):
        return False
    try:
        if git.config_value_in(path, "core.sparseCheckout") == "true":
            return False  # a sparse worktree is not a full member
        head = git.resolve_commit(repo, "HEAD")
        if _has_submodules_at(git, repo, spec, head):
            return False  # a member cannot hold submodules (module docstring)
        env = checkout_env(spec.lfs_skip_smudge)
        git.run(["checkout", "-q", "--detach", head], cwd=path, env=env)
        git.run(["clean", "-ffdxq"], cwd=path)
    except (OrchError, OSError):
        return False
    # a member taken from this pool goes back where it is (its untracked cache stays
    # valid); any other worktree moves in under a member's name
    member = path
    if not (path.parent == directory and path.name.startswith(WORKTREE)):
        member = directory / f"{WORKTREE}{naming.random_hex()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _marker(member, FILLING).touch(exist_ok=False)
    except OSError:
        return False
    try:
        if member != path:
            os.rename(path, member)
            git.run(["worktree", "repair", str(member)], cwd=repo.root)
        if _settle(git, member) is None:
            _enter(git, repo, member)
            return True
    except (OrchError, OSError):
        pass
    # not a member after all: back where it was, for the caller to remove
    with contextlib.suppress(OSError):
        if member != path and member.exists():
            os.rename(member, path)
            git.run(["worktree", "repair", str(path)], cwd=repo.root, check=False)
    _unmark(member)
    return False


def drain(git: Git, repo: Repository, settings: Settings) -> tuple[int, int]:
    """Remove every member of every flavour and forget the size; returns (removed, kept).

    Members set aside as damaged are kept: they may hold someone's work, which only
    ``orch doctor --fix`` archives before it removes them. Worktrees that attempts
    claimed are theirs, not the pool's."""
    root = pool_root(settings, repo)
    count = kept = 0
    with _filling(repo, settings):
        with contextlib.suppress(FileNotFoundError):
            (root / SIZE_FILE).unlink()
        for directory in _flavour_dirs(root):
            count += len(_sweep(git, repo, settings, directory))
            for name in _names(directory):
                if name.startswith(DAMAGED):
                    kept += 1
                elif name.startswith(READY):
                    member = directory / f"{WORKTREE}{name.removeprefix(READY)}"
                    if _take(member):
                        discard(git, repo, settings, member)
                        count += 1
    return count, kept


def _flavour_dirs(root: Path) -> list[Path]:
    # a link counts: one that cannot be followed is reported, not skipped
    return [root / n for n in _names(root) if (root / n).is_dir() or (root / n).is_symlink()]


# -- inspection (orch pool list, orch doctor) ------------------------------------------------


def inspect(git: Git, repo: Repository, settings: Settings) -> list[MemberInfo]:
    """Every member of every flavour, with what is wrong with it; plus members git still
    lists under the pool whose directory is gone. A fill in progress is left alone, and
    so are the worktrees attempts claimed."""
    root = pool_root(settings, repo)
    try:
        filling = try_lock(_fill_lock(repo), "orch pool inspect")
    except OSError:
        filling = None  # cannot tell whether a fill runs: leave work in progress alone
    try:
        infos = []
        seen = set()
        for directory in _flavour_dirs(root):
            for name in _names(directory):
                path = directory / name
                seen.add(path)
                if name.startswith(WORKTREE):
                    continue  # reported under its marker, or claimed: an attempt's
                if name.startswith(READY) and not path.is_dir():
                    path = directory / f"{WORKTREE}{name.removeprefix(READY)}"
                    seen.add(path)
                    problem = check_member(git, repo, path)
                elif filling is None:
                    continue  # a fill is running: its work in progress is not a problem
                elif name.startswith(FILLING):
                    path = directory / f"{WORKTREE}{name.removeprefix(FILLING)}"
                    seen.add(path)
                    problem = "left over by an interrupted fill"
                elif name.startswith(READY):
                    problem = "made by an older orch (the next fill replaces it)"
                elif name.startswith(DAMAGED):
                    problem = "set aside as damaged by a dispatch"
                else:
                    problem = "not a pool member"
                infos.append(MemberInfo(path, directory.name, _admin_head(path), problem))
        for path, commit in _missing_members(git, repo, root):
            if path in seen or (filling is None and path.name.startswith(FILLING)):
                continue
            infos.append(MemberInfo(path, path.parent.name, commit, "missing"))
        return infos
    finally:
        if filling is not None:
            filling.release()


def _missing_members(git: Git, repo: Repository, under: Path) -> list[tuple[Path, str | None]]:
    """Members git still lists under ``under`` whose directory is gone, with HEAD (an
    attempt's claimed worktree that is gone is the attempt's business: orch doctor)."""
    found = []
    for entry in git.list_worktrees(repo):
        path = Path(entry.get("worktree", ""))
        if _inside(path, under) and not path.exists() and _is_member(path):
            found.append((path, entry.get("HEAD")))
    return found


def _is_member(path: Path) -> bool:
    """Whether ``path`` (under a pool directory) is the pool's rather than an attempt's:
    a ``w-`` worktree is the pool's only while it has a marker."""
    if not path.name.startswith(WORKTREE):
        return True
    return _marker(path, READY).exists() or _marker(path, FILLING).exists()


def in_a_pool(path: Path) -> bool:
    """Whether ``path`` lies in a pool directory (a member's, ready or claimed by an
    attempt), as opposed to a worktree named after its attempt."""
    return POOL_DIR in path.parts


def is_pool_path(settings: Settings, repo: Repository, path: Path) -> bool:
    """Whether ``path`` is a pool member (ready, in the making or set aside), not a
    worktree an attempt claimed from the pool."""
    return _inside(path, pool_root(settings, repo)) and _is_member(path)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False
