"""The warm worktree pool: clean, detached worktrees made ahead of time for dispatch.

On a large repository creating a worktree costs seconds; a pool member is one made
earlier (``orch pool fill``), so that dispatch only has to rename a directory and point
HEAD at the attempt's branch. Layout, per repository and checkout flavour::

    <worktree_root>/<repo dir>/.orch-pool/<flavour>/m-<id>        ready members
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.filling-<id> being made or refreshed
    <worktree_root>/<repo dir>/.orch-pool/<flavour>/.damaged-<id> taken out, to be removed
    <worktree_root>/<repo dir>/.orch-pool/size                    the size `fill` keeps
    <worktree_root>/<repo dir>/.orch-pool/repository              whose pool it is

Claiming is a rename of a ready member's directory to the attempt's worktree path: of two
processes renaming the same member, exactly one succeeds, on every file system and with
either store. Members are locked (``git worktree lock``) while in the pool so that a
``git worktree prune`` running between the rename and the repair of git's bookkeeping
never drops them. What is handed out is checked first (a worktree of this repository,
detached, locked by the pool, clean); anything else is taken out and replaced, never
handed out. Fills are serialised per repository by a lock, so two never overfill.

Members never have submodules, and a repository whose checkout includes them (HEAD has a
``.gitmodules`` and the ``submodules`` setting is on) has no pool: claiming moves the
member, and a worktree with submodules cannot be moved (their links to their git
directories are relative paths; ``git worktree move`` refuses such worktrees too).
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
READY = "m-"
FILLING = ".filling-"
DAMAGED = ".damaged-"
SIZE_FILE = "size"
REPOSITORY_FILE = "repository"


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A pool member now at the attempt's worktree path, detached at ``commit``."""

    path: Path
    commit: str
    member: str


@dataclasses.dataclass(frozen=True)
class Probe:
    """A ``git status`` of one ready member, started before the dispatch claims it."""

    member: Path
    check: PendingDirtyCheck

    def problem(self) -> str | None:
        return dirt_problem(self.check)

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
    return [directory / n for n in _names(directory) if n.startswith(READY)]


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


def check_member(git: Git, repo: Repository, path: Path) -> str | None:
    """Why this member must not be handed out, or None (full check, with ``git status``)."""
    problem = _admin_problem(repo, path)
    if problem is None:
        admin = worktree_admin_dir(path)
        assert admin is not None
        try:
            recorded = Path((admin / "gitdir").read_text().strip())
        except OSError:
            return "git's bookkeeping of it is incomplete"
        if recorded.resolve() != (path / ".git").resolve():
            return "git's bookkeeping points elsewhere"
        problem = dirt_problem(git.start_dirty_check(path))
    return problem


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
    return Probe(member, git.start_dirty_check(member))


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
    dest: Path,
    probe: Probe | None = None,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> Claimed | None:
    """Take a ready, clean member and move it to ``dest``; None when the pool has none.

    The rename is the claim. A member that fails a check (a worktree of this repository,
    locked by the pool, detached, clean) is set aside as damaged and the next one is tried.
    The probed member is tried first: its ``git status`` ran just before the claim.
    """
    if not spec.poolable:
        return None
    directory = flavour_dir(settings, repo, spec)
    members = _claimable(directory)
    if probe is not None and probe.member in members:
        members.remove(probe.member)
        members.insert(0, probe.member)
    if not members:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    for src in members:
        try:
            os.rename(src, dest)
        except FileNotFoundError:
            continue  # another dispatch took it first
        except OSError as exc:
            raise WorkspaceError(
                f"cannot move pool member {src} to {dest}: {describe_os_error(exc)}"
            ) from exc
        checkpoint("pool-member-moved")  # git's bookkeeping still names the old path
        problem = _admin_problem(repo, dest)
        commit = _admin_head(dest)
        if problem is None:
            # point git's bookkeeping at the new path at once: until then a concurrent
            # fill sees the member as missing and would prune its record
            try:
                git.run(["worktree", "repair", str(dest)], cwd=repo.root)
            except GitError as exc:
                problem = exc.message
        if problem is None:
            if probe is not None and src == probe.member:
                problem = probe.problem()
            else:
                problem = dirt_problem(git.start_dirty_check(dest))
        if problem is None and commit:
            try:
                git.run(["worktree", "unlock", str(dest)], cwd=repo.root)
            except GitError as exc:
                problem = exc.message
        if problem is None and commit:
            return Claimed(path=dest, commit=commit, member=src.name)
        set_aside(git, repo, dest, directory, src.name)
    return None


class MemberStuck(WorkspaceError):
    """A damaged member could not be moved aside: it stays where it is, with whatever it
    holds (nothing may delete it; ``orch doctor --fix`` archives it)."""


def set_aside(git: Git, repo: Repository, path: Path, directory: Path, member: str) -> None:
    """Move a member that must not be handed out back into the pool as damaged (git's
    bookkeeping follows it when it is this repository's, so its path stays free)."""
    aside = directory / f"{DAMAGED}{member.removeprefix(READY)}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.rename(path, aside)
    except OSError as exc:
        raise MemberStuck(
            f"a damaged pool member could not be moved aside to {aside} "
            f"({describe_os_error(exc)}); it is kept at {path}: 'orch doctor --fix' "
            "archives it"
        ) from exc
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
    git.run(
        [
            "symbolic-ref",
            "-m",
            f"checkout: moving from {old} to {branch}",
            "HEAD",
            f"refs/heads/{branch}",
        ],
        cwd=path,
    )
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
            where = member
            if problem is None and _admin_head(member) != head:
                problem, where = _refresh(git, repo, member, head, spec)
                refreshed += problem is None
            if problem is not None:
                removed.append(f"{member}: {problem}")
                if problem.startswith("dirty") or "another repository" in problem:
                    # maybe someone's work: orch doctor --fix archives it, then removes it
                    set_aside(git, repo, where, directory, member.name)
                else:
                    discard(git, repo, settings, where)
        ready = ready_members(directory)
        for extra in ready[target:]:
            # taken out first (a rename), so that no dispatch claims it while it goes
            doomed = extra.with_name(FILLING + extra.name.removeprefix(READY))
            with contextlib.suppress(FileNotFoundError):
                os.rename(extra, doomed)
                discard(git, repo, settings, doomed)
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
    ``orch doctor --fix``, which archives anything unsaved in them first)."""
    removed: list[str] = []
    for name in _names(directory):
        if name.startswith(FILLING):
            removed.append(f"{directory / name}: left over")
            discard(git, repo, settings, directory / name)
    return removed


def _create(git: Git, repo: Repository, directory: Path, head: str, spec: CheckoutSpec) -> None:
    member = naming.random_hex()
    building = directory / f"{FILLING}{member}"
    try:
        git.add_worktree(
            repo,
            building,
            None,
            head,
            submodules=False,  # a member has none (see NO_SUBMODULES)
            lfs_skip_smudge=spec.lfs_skip_smudge,
        )
        problem = _settle(git, building)
        if problem is not None:
            raise WorkspaceError(f"a new pool member is not clean: {problem}")
        _enter(git, repo, building, directory / f"{READY}{member}")
    except BaseException:
        with contextlib.suppress(OrchError, OSError):
            git.remove_worktree(repo, building)
        raise


def _has_submodules_at(git: Git, repo: Repository, spec: CheckoutSpec, commit: str) -> bool:
    """Whether a worktree of this flavour at ``commit`` would have submodules checked out
    (``spec`` may have been worked out for another commit: an attempt's base)."""
    return spec.submodules is not False and git.has_submodules(repo, commit)


def _settle(git: Git, path: Path) -> str | None:
    """Check a member that nobody else uses yet, and leave its index with fresh stat data
    (no racily clean entries to re-read at hand-over).

    No untracked cache is added: git keys it on the worktree's path, so after the move to
    the attempt's path every `git status` there would warn "untracked cache is disabled
    on this system or location" (unless the repository sets core.untrackedCache, in which
    case git keeps the cache itself, as in a fresh worktree)."""
    _outwait_racy_entries(path)
    proc = git.run(
        ["status", "--porcelain=v1", "-z", "--untracked-files=normal"], cwd=path, check=False
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


def _enter(git: Git, repo: Repository, path: Path, ready: Path) -> None:
    """Lock a checked member and make it claimable (the rename is the moment it is)."""
    git.run(["worktree", "lock", "--reason", LOCK_REASON, str(path)], cwd=repo.root)
    os.rename(path, ready)
    git.run(["worktree", "repair", str(ready)], cwd=repo.root)


def _refresh(
    git: Git, repo: Repository, member: Path, head: str, spec: CheckoutSpec
) -> tuple[str | None, Path]:
    """Move a member at an older commit to ``head`` (only differing files are rewritten).

    Returns what is wrong with it (None: refreshed, or claimed meanwhile) and where it is
    now: a member that failed stays out of the pool, under its ``.filling-`` name."""
    if _has_submodules_at(git, repo, spec, head):
        return "HEAD has submodules: a pool member cannot hold them", member
    working = member.with_name(FILLING + member.name.removeprefix(READY))
    try:
        os.rename(member, working)  # out of the pool while it changes
    except FileNotFoundError:
        return None, member  # claimed meanwhile: not ours to refresh
    try:
        git.run(["worktree", "repair", str(working)], cwd=repo.root)
        env = checkout_env(spec.lfs_skip_smudge)
        git.run(["checkout", "-q", "--detach", head], cwd=working, env=env)
        problem = _settle(git, working)
        if problem is not None:
            return problem, working
        os.rename(working, member)
        git.run(["worktree", "repair", str(member)], cwd=repo.root)
    except (OrchError, OSError) as exc:
        return (exc.message if isinstance(exc, OrchError) else describe_os_error(exc)), working
    return None, member


def discard(git: Git, repo: Repository, settings: Settings, path: Path) -> str | None:
    """Remove a pool member; one of another repository is moved into the archive instead
    (nothing is deleted that orch cannot tell is its own). Returns an archive path."""
    if not path.exists():
        # gone by hand: git keeps its locked bookkeeping until it is unlocked
        git.run(["worktree", "unlock", str(path)], cwd=repo.root, check=False)
        git.run(["worktree", "prune"], cwd=repo.root, check=False)
        return None
    admin = worktree_admin_dir(path)
    if admin is not None and admin.resolve().parent != (repo.common_dir / "worktrees").resolve():
        from orch import archive  # rarely needed; tarfile is not imported on every dispatch

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
    the worktree cannot be made like a fresh member (the caller then removes it)."""
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
        if _settle(git, path) is not None:
            return False
        directory.mkdir(parents=True, exist_ok=True)
        _enter(git, repo, path, directory / f"{READY}{naming.random_hex()}")
    except (OrchError, OSError):
        return False
    return True


def drain(git: Git, repo: Repository, settings: Settings) -> tuple[int, int]:
    """Remove every member of every flavour and forget the size; returns (removed, kept).

    Members set aside as damaged are kept: they may hold someone's work, which only
    ``orch doctor --fix`` archives before it removes them."""
    root = pool_root(settings, repo)
    count = kept = 0
    with _filling(repo, settings):
        with contextlib.suppress(FileNotFoundError):
            (root / SIZE_FILE).unlink()
        for directory in _flavour_dirs(root):
            for name in _names(directory):
                path = directory / name
                if name.startswith(DAMAGED):
                    kept += 1
                    continue
                if name.startswith(READY):
                    taken = path.with_name(FILLING + name.removeprefix(READY))
                    try:
                        os.rename(path, taken)
                    except FileNotFoundError:
                        continue
                    path = taken
                discard(git, repo, settings, path)
                count += 1
    return count, kept


def _flavour_dirs(root: Path) -> list[Path]:
    # a link counts: one that cannot be followed is reported, not skipped
    return [root / n for n in _names(root) if (root / n).is_dir() or (root / n).is_symlink()]


# -- inspection (orch pool list, orch doctor) ------------------------------------------------


def inspect(git: Git, repo: Repository, settings: Settings) -> list[MemberInfo]:
    """Every member of every flavour, with what is wrong with it; plus members git still
    lists under the pool whose directory is gone. A fill in progress is left alone."""
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
                if name.startswith(READY):
                    problem = check_member(git, repo, path)
                elif filling is None:
                    continue  # a fill is running: its work in progress is not a problem
                elif name.startswith(FILLING):
                    problem = "left over by an interrupted fill"
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
    """Worktrees git still lists under ``under`` whose directory is gone, with HEAD."""
    found = []
    for entry in git.list_worktrees(repo):
        path = Path(entry.get("worktree", ""))
        if _inside(path, under) and not path.exists():
            found.append((path, entry.get("HEAD")))
    return found


def is_pool_path(settings: Settings, repo: Repository, path: Path) -> bool:
    return _inside(path, pool_root(settings, repo))


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False
