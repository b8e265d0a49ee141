"""How a worktree is checked out (issue 7.3, 7.4): sparse paths, submodules, LFS smudging.

Each is recorded in the attempt and told to the worker in the payload. The LFS case uses
a real clean/smudge filter configured under git-lfs's filter name, so what is tested is
that orch's checkouts run with ``GIT_LFS_SKIP_SMUDGE`` exactly when configured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.attempts import assert_nothing_left_behind, dispatch, show
from tests.support.cli import RunCli, assert_failed_cleanly
from tests.support.repos import commit_all, git


@pytest.fixture(autouse=True)
def _no_background_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_POOL_REFILL", "0")


def payload_checkout(attempt: dict[str, Any]) -> dict[str, Any]:
    checkout: dict[str, Any] = json.loads(Path(attempt["payload_path"]).read_text())["checkout"]
    return checkout


def top_level(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name not in (".git", ".orch"))


# -- sparse ----------------------------------------------------------------------------------


def test_sparse_checkout_of_named_directories(
    make_repo: Callable[..., Path], run_cli: RunCli, store_url: str
) -> None:
    repo = make_repo("repo", files=30)
    (repo / "docs").mkdir()
    (repo / "docs" / "guide.md").write_text("guide\n")
    commit_all(repo, "docs")
    attempt = dispatch(run_cli, repo, "sparse", "--sparse", "src/d1", "--sparse", "docs/")
    path = Path(attempt["worktree_path"])
    assert attempt["sparse_paths"] == ["src/d1", "docs"]
    assert top_level(path) == [".gitignore", "docs", "src"]  # cone mode keeps root files
    assert sorted(p.name for p in (path / "src").iterdir()) == ["d1"]
    assert git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
    assert git("sparse-checkout", "list", cwd=path).split() == ["docs", "src/d1"]
    assert payload_checkout(attempt)["sparse_paths"] == ["src/d1", "docs"]
    assert "sparse_paths      src/d1 docs" in run_cli("show", attempt["id"], cwd=repo).stdout
    # the main worktree and other worktrees stay full
    assert git("config", "--bool", "core.sparseCheckout", cwd=repo, check=False).strip() in (
        "",
        "false",
    )
    full = dispatch(run_cli, repo, "full")
    assert len(list((Path(full["worktree_path"]) / "src").iterdir())) == 10
    assert full["sparse_paths"] is None


def test_sparse_default_from_the_repository_config_and_no_pool(
    make_repo: Callable[..., Path], run_cli: RunCli
) -> None:
    repo = make_repo("repo", files=20)
    (repo / "orch.toml").write_text('[workspace]\nsparse = ["src/d2"]\n')
    commit_all(repo, "config")
    assert run_cli("pool", "fill", "--size", "1", cwd=repo).exit_code == 0
    attempt = dispatch(run_cli, repo, "t")
    assert attempt["sparse_paths"] == ["src/d2"]
    assert sorted(p.name for p in (Path(attempt["worktree_path"]) / "src").iterdir()) == ["d2"]
    events = [e["kind"] for e in show(run_cli, attempt["id"], repo)["events"]]
    assert "workspace_from_pool" not in events  # members are full checkouts


@pytest.mark.parametrize(
    "bad", ["../outside", "/etc", "-rf", "a/../../b", ".", " "], ids=lambda b: repr(b)
)
def test_bad_sparse_paths_are_refused_and_leave_nothing(
    repo: Path, run_cli: RunCli, isolated_env: Path, bad: str
) -> None:
    result = run_cli("dispatch", "--prompt", "p", "t", f"--sparse={bad}", cwd=repo)
    assert "invalid sparse path" in assert_failed_cleanly(result, 2)
    assert_nothing_left_behind(run_cli, repo, isolated_env)


def test_bad_sparse_config_is_a_config_error(
    make_repo: Callable[..., Path], run_cli: RunCli, isolated_env: Path
) -> None:
    repo = make_repo("repo")
    (repo / "orch.toml").write_text('[workspace]\nsparse = ["../x"]\n')
    commit_all(repo, "config")
    result = run_cli("dispatch", "--prompt", "p", "t", cwd=repo)
    assert "sparse" in assert_failed_cleanly(result, 11)
    assert_nothing_left_behind(run_cli, repo, isolated_env)


# -- submodules ------------------------------------------------------------------------------


@pytest.fixture
def with_submodule(make_repo: Callable[..., Path], isolated_env: Path) -> Path:
    # local submodule URLs need the file protocol (off by default since git 2.38.1)
    gitconfig = Path(os.environ["GIT_CONFIG_GLOBAL"])
    gitconfig.write_text(gitconfig.read_text() + '[protocol "file"]\n\tallow = always\n')
    lib = make_repo("lib", files=2)
    repo = make_repo("repo", files=2)
    git("submodule", "add", "-q", str(lib), "vendor/lib", cwd=repo)
    commit_all(repo, "add the submodule")
    return repo


def test_submodules_are_initialised_in_fresh_and_pooled_worktrees(
    with_submodule: Path, run_cli: RunCli
) -> None:
    repo = with_submodule
    fresh = dispatch(run_cli, repo, "fresh")
    assert run_cli("pool", "fill", "--size", "1", cwd=repo).exit_code == 0
    pooled = dispatch(run_cli, repo, "pooled")
    for attempt in (fresh, pooled):
        path = Path(attempt["worktree_path"])
        assert attempt["submodules"] is True
        assert (path / "vendor" / "lib" / "src" / "d0" / "f0.txt").read_text() == "file 0\n"
        assert git("submodule", "status", cwd=path).startswith(" ")  # checked out, clean
        assert git("status", "--porcelain", cwd=path) == ""
        assert payload_checkout(attempt)["submodules"] is True


def test_a_pool_never_holds_submodules_and_says_why(
    make_repo: Callable[..., Path], isolated_env: Path, run_cli: RunCli
) -> None:
    """A worktree with submodules cannot be moved (their links are relative), and a claim
    moves a member: once HEAD has submodules, the member made before goes, a worktree
    given back is removed instead, and dispatch makes fresh worktrees that have them."""
    gitconfig = Path(os.environ["GIT_CONFIG_GLOBAL"])
    gitconfig.write_text(gitconfig.read_text() + '[protocol "file"]\n\tallow = always\n')
    lib = make_repo("lib", files=2)
    repo = make_repo("repo", files=2)
    assert run_cli("pool", "fill", "--size", "2", cwd=repo).exit_code == 0
    early = dispatch(run_cli, repo, "early")  # takes one member; its base has none
    assert early["submodules"] is None
    git("submodule", "add", "-q", str(lib), "vendor/lib", cwd=repo)
    commit_all(repo, "add the submodule")

    filled = run_cli("pool", "fill", cwd=repo)
    assert filled.exit_code == 0
    assert "no pool: HEAD's checkout includes submodules" in filled.output
    assert json.loads(run_cli("pool", "list", "--json", cwd=repo).output)["members"] == []
    assert run_cli("cancel", early["id"], cwd=repo).exit_code == 0
    cleaned = json.loads(run_cli("cleanup", "--json", "--to-pool", early["id"], cwd=repo).output)
    assert cleaned["items"][0]["removed"][0] == "worktree"
    assert not Path(early["worktree_path"]).exists()

    late = dispatch(run_cli, repo, "late")
    path = Path(late["worktree_path"])
    assert late["submodules"] is True
    assert (path / "vendor" / "lib" / "src" / "d0" / "f0.txt").read_text() == "file 0\n"
    assert git("submodule", "status", cwd=path).startswith(" ")  # checked out, clean
    assert git("status", "--porcelain", cwd=path) == ""


def test_submodules_can_be_left_alone_by_config(with_submodule: Path, run_cli: RunCli) -> None:
    repo = with_submodule
    (repo / "orch.toml").write_text("[workspace]\nsubmodules = false\n")
    commit_all(repo, "config")
    attempt = dispatch(run_cli, repo, "t")
    path = Path(attempt["worktree_path"])
    assert attempt["submodules"] is False
    assert list((path / "vendor" / "lib").iterdir()) == []
    assert git("submodule", "status", cwd=path).startswith("-")  # not initialised
    assert "not initialised" in run_cli("show", attempt["id"], cwd=repo).stdout


# -- LFS -------------------------------------------------------------------------------------


@pytest.fixture
def with_lfs_filter(make_repo: Callable[..., Path]) -> Path:
    repo = make_repo("repo", files=2)
    # a round-trip filter under git-lfs's name whose smudge shows whether it was skipped
    smudge = "sh -c 'if [ -n \"$GIT_LFS_SKIP_SMUDGE\" ]; then cat; else sed s/^/smudged:/; fi'"
    git("config", "filter.lfs.smudge", smudge, cwd=repo)
    git("config", "filter.lfs.clean", "sed s/^smudged://", cwd=repo)
    (repo / ".gitattributes").write_text("*.bin filter=lfs\n")
    (repo / "model.bin").write_text("pointer\n")
    commit_all(repo, "an lfs file")
    return repo


@pytest.mark.parametrize("skip", [False, True])
def test_lfs_smudge_is_skipped_only_when_configured(
    with_lfs_filter: Path, run_cli: RunCli, skip: bool
) -> None:
    repo = with_lfs_filter
    if skip:
        (repo / "orch.toml").write_text("[workspace]\nlfs_skip_smudge = true\n")
        commit_all(repo, "config")
    fresh = dispatch(run_cli, repo, "fresh")
    assert run_cli("pool", "fill", "--size", "1", cwd=repo).exit_code == 0
    pooled = dispatch(run_cli, repo, "pooled")
    expected = "pointer\n" if skip else "smudged:pointer\n"
    for attempt in (fresh, pooled):
        assert (Path(attempt["worktree_path"]) / "model.bin").read_text() == expected
        assert git("status", "--porcelain", cwd=Path(attempt["worktree_path"])) == ""
        assert attempt["lfs_skip_smudge"] is skip
        assert payload_checkout(attempt)["lfs_skip_smudge"] is skip
