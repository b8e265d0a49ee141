"""Who owns a worktree path (issue 16.4): one answer for doctor and dispatch."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orch.cli.common import settings_from_env
from orch.git import Git
from orch.store import open_store
from orch.workspace.owners import Owner, owner_of
from tests.support.attempts import dispatch
from tests.support.cli import RunCli, json_out


@pytest.fixture(autouse=True)
def _no_background_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_POOL_REFILL", "0")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _marker(home: Path, name: str, pid: int, worktree: Path, repo: Path) -> None:
    (home / "checkouts").mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "worktree": str(worktree), "repository": str(repo)}
    (home / "checkouts" / name).write_text(json.dumps(record))


def test_owner_of_names_the_attempt_the_pool_a_dispatch_or_nobody(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    json_out(run_cli("pool", "fill", "--json", "--size", "1", cwd=repo))
    attempt = dispatch(run_cli, repo, "taken")  # takes the only member
    json_out(run_cli("pool", "fill", "--json", "--size", "1", cwd=repo))
    (member,) = (
        Path(m["path"])
        for m in json_out(run_cli("pool", "list", "--json", cwd=repo))["members"]
        if m["problem"] is None
    )
    settings = settings_from_env()
    git_repo = Git().discover(repo)
    making = settings.worktree_root / "making"
    abandoned = settings.worktree_root / "abandoned"
    _marker(settings.home, "a1", os.getpid(), making, repo)
    _marker(settings.home, "a2", _dead_pid(), abandoned, repo)

    with open_store(settings.database_url, settings.locks_dir) as store:

        def owner(path: Path, with_repo: bool = True) -> Owner:
            return owner_of(path, settings, store, git_repo if with_repo else None).owner

        used = owner_of(Path(attempt["worktree_path"]), settings, store, git_repo)
        assert used.owner is Owner.ATTEMPT and used.owned
        assert [a.id for a in used.attempts] == [attempt["id"]]
        assert owner(member) is Owner.POOL
        assert owner(member, with_repo=False) is Owner.NOBODY  # no pool was asked about
        assert owner(making) is Owner.DISPATCH
        assert owner(abandoned) is Owner.NOBODY  # its dispatch is gone
        nobody = owner_of(settings.worktree_root / "stray", settings, store, git_repo)
        assert nobody.owner is Owner.NOBODY and not nobody.owned and nobody.attempts == ()
