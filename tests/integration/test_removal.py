"""orch.workspace.removal: one way to remove a worktree and branch, whatever the caller
(dispatch's and doctor's roll-backs, doctor's repairs, cleanup, the pool)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orch.git import Git, checkout_env
from orch.workspace import removal
from tests.support.repos import git, head


def _worktree(repo: Path, name: str) -> tuple[Path, str]:
    """A worktree on a new branch ``name`` at HEAD."""
    path = repo.parent / name
    git("worktree", "add", "-q", "-b", name, str(path), cwd=repo)
    return path, head(repo)


def _branches(repo: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=repo).split()


def test_a_branch_that_moved_after_it_was_looked_at_is_kept(repo: Path) -> None:
    """Compare-and-swap: the branch is deleted at the commit the survey saw, so a commit
    made between the survey and the deletion is never lost."""
    orch_git = Git()
    repository = orch_git.discover(repo)
    path, _base = _worktree(repo, "topic")
    found = removal.survey(orch_git, repository, path, "topic", removal.Policy())
    (path / "late.txt").write_text("late\n")
    git("add", "late.txt", cwd=path)
    git("commit", "-q", "-m", "late", cwd=path)
    moved = head(path)
    done = removal.carry_out(orch_git, repository, found, removal.Policy())
    assert done.worktree == "removed" and not path.exists()
    assert done.branch is False
    assert git("rev-parse", "refs/heads/topic", cwd=repo).strip() == moved


def test_unsaved_work_is_archived_before_anything_is_removed(repo: Path, tmp_path: Path) -> None:
    orch_git = Git()
    repository = orch_git.discover(repo)
    path, _base = _worktree(repo, "work")
    (path / "new.txt").write_text("untracked\n")
    (path / "src" / "d0" / "f0.txt").write_text("changed\n")
    git("commit", "-q", "--allow-empty", "-m", "only here", cwd=path)
    steps: list[str] = []
    policy = removal.Policy(archive=removal.Archive(tmp_path / "archive", "w", {"saved_by": "t"}))
    done = removal.remove(orch_git, repository, path, "work", policy, steps.append)
    assert steps == ["archived", "worktree-removed", "branch-deleted"]
    assert done.archive_path is not None and done.branch and not path.exists()
    archived = Path(done.archive_path)
    manifest = json.loads((archived / "manifest.json").read_text())
    assert manifest["saved_by"] == "t" and manifest["unmerged_commits"] == 1
    assert {"uncommitted.patch", "untracked.tar.gz", "commits.bundle"} <= set(manifest["files"])
    assert "work" not in _branches(repo)


def test_keep_branch_removes_only_the_worktree(repo: Path) -> None:
    orch_git = Git()
    repository = orch_git.discover(repo)
    path, _base = _worktree(repo, "kept")
    done = removal.remove(orch_git, repository, path, "kept", removal.Policy(keep_branch=True))
    assert done.worktree == "removed" and not done.branch
    assert "kept" in _branches(repo)


def test_what_is_already_gone_is_a_quiet_success(repo: Path) -> None:
    """A worktree deleted by hand has git's record of it dropped; a branch that is gone
    (or never was) is nothing to do."""
    orch_git = Git()
    repository = orch_git.discover(repo)
    path, base = _worktree(repo, "gone")
    shutil.rmtree(path)
    done = removal.remove(orch_git, repository, path, "gone", removal.Policy(branch_at=base))
    assert done.branch  # at base: deleted
    assert str(path) not in git("worktree", "list", "--porcelain", cwd=repo)
    again = removal.remove(orch_git, repository, path, "gone", removal.Policy(branch_at=base))
    assert again == removal.Removed(None, None, False)


def test_a_best_effort_removal_swallows_what_fails(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roll-back undoes what it can: a failing step is skipped, the next one runs."""
    from orch.errors import GitError

    orch_git = Git()
    repository = orch_git.discover(repo)
    path, base = _worktree(repo, "rollback")

    def broken(*args: object, **kwargs: object) -> None:
        raise GitError("disk on fire")

    monkeypatch.setattr(removal, "force_remove_worktree", broken)
    policy = removal.Policy(branch_at=base, best_effort=True)
    done = removal.remove(orch_git, repository, path, "rollback", policy)
    assert done.branch and "rollback" not in _branches(repo)
    with pytest.raises(GitError):
        removal.remove(orch_git, repository, path, None, removal.Policy())


def test_a_known_hooks_directory_without_the_hook_runs_no_git(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The facts a dispatch reads in the background say where the hooks are; a missing
    post-checkout hook there costs no git process (and without them git is asked)."""
    orch_git = Git()
    repository = orch_git.discover(repo)
    facts = orch_git.start_repository_facts(repository).result()
    assert facts.url == str(repository.root)  # no origin: the repository's own path
    assert facts.hooks == repository.common_dir / "hooks"
    ran: list[object] = []
    real_run = Git.run

    def counting(self: Git, args: object, *rest: object, **kwargs: object) -> object:
        ran.append(args)
        return real_run(self, args, *rest, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Git, "run", counting)
    commit = head(repo)
    orch_git.post_checkout(repo, commit, commit, checkout_env(False), facts.hooks)
    assert ran == []
    orch_git.post_checkout(repo, commit, commit, checkout_env(False))
    assert len(ran) == 1
