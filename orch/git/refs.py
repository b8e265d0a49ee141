"""Refs and discovery: which repository a path is in, what a ref names, the attempt's
branch (create-only, and deleted only while it still points where it was checked), and
the repository's facts a dispatch needs (its URL, where its hooks are).

Branches are written with ``update-ref --stdin`` so that creating one that exists, or
deleting one that moved, fails instead of losing a commit. Nothing here touches a
worktree's files.
"""

from __future__ import annotations

import re
from pathlib import Path

from orch.errors import (
    BareRepository,
    BaseRefNotACommit,
    EmptyRepository,
    GitError,
    NotAGitRepository,
    UnknownBaseRef,
)
from orch.git.runner import Pending, Runner, last_line
from orch.record import record

_HEX_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a full SHA-1 or SHA-256 object id


@record
class Repository:
    """A repository as orch uses it: where to run git, and what identifies it."""

    root: Path  # the main worktree
    common_dir: Path  # the shared .git directory: refs, objects, worktree bookkeeping
    invoked_from_linked_worktree: bool
    invoked_root: Path | None = None  # the linked worktree orch was run in, if any

    @property
    def orch_dir(self) -> Path:
        """orch's own bookkeeping inside the repository (locks only; git ignores it)."""
        return self.common_dir / "orch"


@record
class RepositoryFacts:
    """What one read of the repository's config says, at the time of the read."""

    url: str  # its identity across clones: its origin's URL, else its own path
    # where its hooks are when the config sets no core.hooksPath (the default place);
    # None: unknown, ask git (a core.hooksPath is set, or the read failed)
    hooks: Path | None


PendingRepositoryFacts = Pending[RepositoryFacts]
PendingRepositoryUrl = Pending[str]


class Refs(Runner):
    # -- discovery -------------------------------------------------------------------------

    def discover(self, path: Path) -> Repository:
        """Find the repository containing ``path``; refuse bare and non-repositories."""
        if not path.exists():
            raise NotAGitRepository(f"not a git repository: {path} does not exist")
        if not path.is_dir():
            raise NotAGitRepository(f"not a git repository: {path} is not a directory")
        ask = [
            "rev-parse",
            "--path-format=absolute",
            "--is-bare-repository",
            "--is-inside-work-tree",
            "--git-dir",
            "--git-common-dir",
        ]
        # one git process on the usual path: in a work tree --show-toplevel answers too
        # (outside one it fails, and the four answers above say why)
        proc = self.run([*ask, "--show-toplevel"], cwd=path, check=False)
        toplevel = None
        if proc.returncode == 0:
            toplevel = Path(proc.stdout.splitlines()[4])
        else:
            proc = self.run(ask, cwd=path, check=False)
        if proc.returncode != 0:
            if "not a git repository" in proc.stderr:
                raise NotAGitRepository(f"not a git repository: {path}")
            raise GitError(f"cannot inspect {path}: {last_line(proc.stderr)}")
        is_bare, inside, git_dir, common_dir = proc.stdout.splitlines()[:4]
        if is_bare == "true":
            raise BareRepository(
                f"{path} is a bare repository: orch dispatches from a repository "
                "with a main worktree"
            )
        if inside != "true":
            raise NotAGitRepository(f"{path} is inside a .git directory, not a work tree")
        common = Path(common_dir)
        linked = Path(git_dir) != common
        toplevel = toplevel or self._toplevel(path)
        return Repository(
            root=self._main_worktree(path, common) if linked else toplevel,
            common_dir=common,
            invoked_from_linked_worktree=linked,
            invoked_root=toplevel if linked else None,
        )

    def _toplevel(self, path: Path) -> Path:
        out = self.run(["rev-parse", "--show-toplevel"], cwd=path).stdout.strip()
        return Path(out)

    def _main_worktree(self, path: Path, common: Path) -> Path:
        out = self.run(["worktree", "list", "--porcelain"], cwd=path).stdout
        first = out.split("\n\n", 1)[0].splitlines()
        if "bare" in first:
            raise BareRepository(
                f"the main repository {common} is bare: orch dispatches from a main worktree"
            )
        return Path(first[0].removeprefix("worktree "))

    # -- resolving -------------------------------------------------------------------------

    def resolve_commit(self, repo: Repository, ref: str) -> str:
        """Resolve ``ref`` to a commit SHA once; say plainly what is wrong if it cannot."""
        common = ["--git-dir", str(repo.common_dir)]
        verify = [*common, "rev-parse", "--verify", "--quiet", "--end-of-options"]
        commit = self.run([*verify, f"{ref}^{{commit}}"], check=False)
        if commit.returncode == 0:
            return commit.stdout.strip()  # the usual case: one git process
        # say what is wrong: no such ref, an empty repository, or not a commit
        proc = self.run([*verify, ref], check=False)
        if proc.returncode != 0:
            if ref == "HEAD" and self._head_is_unborn(repo):
                raise EmptyRepository(
                    f"the repository {repo.root} has no commits yet: commit something first"
                )
            raise UnknownBaseRef(f"unknown base ref {ref!r} in {repo.root}")
        oid = proc.stdout.strip()
        peeled = self.run([*verify, f"{oid}^{{commit}}"], check=False)
        if peeled.returncode != 0:
            kind = self.run([*common, "cat-file", "-t", oid], check=False).stdout.strip()
            if not kind:
                # rev-parse --verify accepts any full-length hex id without looking it up
                raise UnknownBaseRef(f"unknown base ref {ref!r} in {repo.root}")
            raise BaseRefNotACommit(
                f"base ref {ref!r} names a {kind or 'non-commit object'}, not a commit"
            )
        return peeled.stdout.strip()

    def resolve_base(self, repo: Repository, ref: str) -> tuple[str, bool]:
        """``ref``'s commit and whether that commit has a ``.gitmodules``, from one git
        process (``resolve_commit`` says what is wrong when ``ref`` is not a commit)."""
        if ref.isprintable() and ref.strip() == ref:  # one line of cat-file's input
            proc = self.run(
                ["--git-dir", str(repo.common_dir), "cat-file", "--batch-check"],
                input=f"{ref}^{{commit}}\n{ref}^{{commit}}:.gitmodules\n",
                check=False,
            )
            lines = proc.stdout.splitlines()
            if proc.returncode == 0 and len(lines) == 2:
                commit, _, kind = lines[0].partition(" ")
                if kind.startswith("commit ") and _HEX_ID.fullmatch(commit):
                    return commit, not lines[1].endswith(" missing")
        commit = self.resolve_commit(repo, ref)
        return commit, self.has_submodules(repo, commit)

    def _head_is_unborn(self, repo: Repository) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "symbolic-ref", "-q", "HEAD"], check=False
        )
        return proc.returncode == 0

    def has_commit(self, repo: Repository, commit: str) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "cat-file", "-e", f"{commit}^{{commit}}"],
            check=False,
        )
        return proc.returncode == 0

    def has_submodules(self, repo: Repository, commit: str) -> bool:
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "cat-file", "-e", f"{commit}:.gitmodules"],
            check=False,
        )
        return proc.returncode == 0

    def current_branch(self, worktree: Path) -> str | None:
        proc = self.run(
            ["--no-optional-locks", "symbolic-ref", "-q", "--short", "HEAD"],
            cwd=worktree,
            check=False,
        )
        return proc.stdout.strip() or None

    def head_commit(self, worktree: Path) -> str:
        return self.run(["--no-optional-locks", "rev-parse", "HEAD"], cwd=worktree).stdout.strip()

    def head_commit_if_any(self, worktree: Path) -> str | None:
        """The commit checked out in ``worktree``; None when its HEAD names no commit (a
        branch deleted from under it)."""
        proc = self.run(
            ["--no-optional-locks", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            cwd=worktree,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    # -- branches --------------------------------------------------------------------------

    def create_branch(self, repo: Repository, branch: str, commit: str, reason: str) -> None:
        """Create ``refs/heads/<branch>`` at ``commit``; fail if it exists (create-only)."""
        self.run(
            ["update-ref", "-m", reason, "--stdin"],
            cwd=repo.root,
            input=f"create refs/heads/{branch} {commit}\n",
        )

    def delete_branch_if_at(self, repo: Repository, branch: str, commit: str) -> bool:
        """Delete the branch only while it still points at ``commit`` (never loses work)."""
        proc = self.run(
            ["update-ref", "--stdin"],
            cwd=repo.root,
            input=f"delete refs/heads/{branch} {commit}\n",
            check=False,
        )
        return proc.returncode == 0

    def branch_commit(self, repo: Repository, branch: str) -> str | None:
        return self.verified(repo, f"refs/heads/{branch}")

    def verified(self, repo: Repository, name: str) -> str | None:
        """What ``name`` (a full ref name, or a revision) names in the repository; None
        when it does not exist."""
        proc = self.run(
            ["--git-dir", str(repo.common_dir), "rev-parse", "--verify", "--quiet", name],
            check=False,
        )
        return (proc.stdout.strip() or None) if proc.returncode == 0 else None

    def fetch_origin(self, repo: Repository) -> bool:
        """Fetch from ``origin`` (a worker's clone catching up); False when it failed."""
        return self.run(["fetch", "--quiet", "origin"], cwd=repo.root, check=False).returncode == 0

    # -- config ----------------------------------------------------------------------------

    def config_value(self, repo: Repository, key: str) -> str | None:
        proc = self.run(["--git-dir", str(repo.common_dir), "config", "--get", key], check=False)
        return proc.stdout.strip() or None

    def config_value_in(self, worktree: Path, key: str) -> str | None:
        """A config value as git sees it in ``worktree`` (its own config.worktree too)."""
        proc = self.run(["config", "--get", key], cwd=worktree, check=False)
        return proc.stdout.strip() or None

    def repository_url(self, repo: Repository) -> str:
        """The repository's identity across clones: its origin's URL, else its own path."""
        return self.start_repository_facts(repo).result().url

    def start_repository_url(self, repo: Repository) -> PendingRepositoryUrl:
        """``repository_url``, read in the background."""
        return self._start(_facts_query(repo), lambda rc, out: _facts(repo, rc, out).url)

    def start_repository_facts(self, repo: Repository) -> PendingRepositoryFacts:
        """The repository's URL and where its hooks are, from one git process run in the
        background (a dispatch opens its store meanwhile). The facts hold at the time of
        the read: whoever keeps them decides how long to trust them."""
        return self._start(_facts_query(repo), lambda rc, out: _facts(repo, rc, out))


def branches_with_prefix(git: Refs, repo: Repository, prefix: str) -> dict[str, str]:
    """The branches under ``<prefix>/`` and their tips."""
    out = git.run(
        [
            "--git-dir",
            str(repo.common_dir),
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            f"refs/heads/{prefix}/",
        ],
    ).stdout
    result = {}
    for line in out.splitlines():
        name, _, sha = line.partition(" ")
        result[name] = sha
    return result


def _facts_query(repo: Repository) -> list[str]:
    return [
        "--git-dir",
        str(repo.common_dir),
        "config",
        "--get-regexp",
        r"^(remote\.origin\.url|core\.hookspath)$",
    ]


def _facts(repo: Repository, returncode: int, out: str) -> RepositoryFacts:
    values: dict[str, str] = {}
    for line in out.splitlines():  # the last value wins, as with --get
        key, _, value = line.partition(" ")
        values[key] = value
    # exit 1: no key matched; no core.hooksPath means the hooks are in the default place
    hooks = None
    if returncode in (0, 1) and "core.hookspath" not in values:
        hooks = repo.common_dir / "hooks"
    url = values.get("remote.origin.url", "").strip().rstrip("/")
    return RepositoryFacts(
        url=url.removesuffix(".git").rstrip("/") if url else str(repo.root), hooks=hooks
    )
