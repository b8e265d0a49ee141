"""The warm worktree pool (issue 7.1, 7.2): fill, claim, damaged members, refill, return.

Real repositories, real worktrees and real processes. What a handed-out worktree looks
like is asked of git itself (`worktree list --porcelain`, `status`, `fsck`) and compared
with a worktree orch created fresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.attempts import attempts_of, dispatch, show
from tests.support.cli import ORCH_BIN, RunCli, assert_failed_cleanly, error_line, json_out
from tests.support.processes import all_at_once
from tests.support.repos import commit_all, git, head, orch_branches, worktrees

RunOrch = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _no_background_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    # refills are tested on purpose below; elsewhere a late one would race the assertions
    monkeypatch.setenv("ORCH_POOL_REFILL", "0")


def pool_fill(run_cli: RunCli, repo: Path, *args: str) -> dict[str, Any]:
    return json_out(run_cli("pool", "fill", "--json", *args, cwd=repo))


def pool_members(run_cli: RunCli, repo: Path) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = json_out(run_cli("pool", "list", "--json", cwd=repo))["members"]
    return members


def ready(run_cli: RunCli, repo: Path) -> list[Path]:
    return [Path(m["path"]) for m in pool_members(run_cli, repo) if m["problem"] is None]


def from_pool(run_cli: RunCli, attempt: dict[str, Any], repo: Path) -> bool:
    events = show(run_cli, attempt["id"], repo)["events"]
    return any(e["kind"] == "workspace_from_pool" for e in events)


def entry_of(repo: Path, path: str) -> dict[str, str]:
    (entry,) = [w for w in worktrees(repo) if w["worktree"] == path]
    return entry


def fsck(repo: Path) -> str:
    proc = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def doctor(run_cli: RunCli, repo: Path, *args: str) -> dict[str, Any]:
    """``orch doctor --json``, findings about this test's repository and attempts only
    (the PostgreSQL store is shared by the tests of one xdist worker)."""
    result = run_cli("doctor", "--json", *args, cwd=repo)
    data: dict[str, Any] = json.loads(result.stdout)
    ids = {a["id"] for a in attempts_of(run_cli, repo)}
    here = str(repo.parent)
    data["findings"] = [
        f for f in data["findings"] if f["subject"] in ids or f["subject"].startswith(here)
    ]
    return data


# -- handing out -----------------------------------------------------------------------------


def test_a_pool_member_is_indistinguishable_from_a_fresh_worktree(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    fresh = dispatch(run_cli, repo, "fresh")
    assert pool_fill(run_cli, repo, "--size", "2")["ready"] == 2
    pooled = dispatch(run_cli, repo, "pooled")

    assert from_pool(run_cli, pooled, repo) and not from_pool(run_cli, fresh, repo)
    assert len(ready(run_cli, repo)) == 1
    for attempt in (fresh, pooled):
        path = Path(attempt["worktree_path"])
        entry = entry_of(repo, attempt["worktree_path"])
        assert entry == {
            "worktree": attempt["worktree_path"],
            "HEAD": attempt["base_commit"],
            "branch": f"refs/heads/{attempt['branch_name']}",
        }
        assert head(path) == attempt["base_commit"]
        assert git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
        assert git("symbolic-ref", "HEAD", cwd=path).strip() == (
            f"refs/heads/{attempt['branch_name']}"
        )
        # under the repository's directory of the worktree root (a member is handed
        # over where it was made: its path names the member, not the task)
        assert path.is_relative_to(Path(fresh["worktree_path"]).parent)
    # git says the same in both, on stderr too (a member's index once kept an untracked
    # cache keyed on its pool path: every `git status` in the attempt warned about it)
    said = []
    for attempt in (fresh, pooled):
        proc = subprocess.run(
            ["git", "status"], cwd=attempt["worktree_path"], capture_output=True, text=True
        )
        said.append(
            (proc.returncode, proc.stdout.replace(attempt["branch_name"], "B"), proc.stderr)
        )
    assert said[0] == said[1] and said[1][2] == ""
    # same files, same status output shape
    listing = sorted(p.name for p in Path(pooled["worktree_path"]).iterdir())
    assert listing == sorted(p.name for p in Path(fresh["worktree_path"]).iterdir())
    fsck(repo)
    assert git("worktree", "prune", "--dry-run", "-v", cwd=repo) == ""
    assert doctor(run_cli, repo)["findings"] == []
    # the worker's payload is the same as for a fresh worktree
    payload = json.loads(Path(pooled["payload_path"]).read_text())
    assert payload["worktree_path"] == pooled["worktree_path"]
    assert payload["checkout"] == {
        "sparse_paths": None,
        "submodules": None,
        "lfs_skip_smudge": False,
    }


@pytest.mark.parametrize("hooks", ["default", "core.hooksPath"])
def test_the_post_checkout_hook_runs_for_fresh_and_pooled_worktrees(
    repo: Path, run_cli: RunCli, hooks: str
) -> None:
    """orch skips `git hook run` only when it knows there is no hook; wherever the
    repository keeps its hooks, the one it has runs once per worktree, in it."""
    if hooks == "default":
        hook_dir = repo / ".git" / "hooks"
    else:
        hook_dir = repo.parent / "shared-hooks"
        git("config", "core.hooksPath", str(hook_dir), cwd=repo)
    hook_dir.mkdir(exist_ok=True)
    log = repo.parent / "post-checkout.log"
    hook = hook_dir / "post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$PWD $1 $2 $3" >> "{log}"\n')
    hook.chmod(0o755)
    fresh = dispatch(run_cli, repo, "fresh")
    base = fresh["base_commit"]
    assert log.read_text().splitlines() == [f"{fresh['worktree_path']} {'0' * 40} {base} 1"]
    pool_fill(run_cli, repo, "--size", "1")
    log.write_text("")  # the fill's own checkouts ran it too
    pooled = dispatch(run_cli, repo, "pooled")
    assert from_pool(run_cli, pooled, repo)
    assert log.read_text().splitlines() == [f"{pooled['worktree_path']} {base} {base} 1"]


def test_only_the_files_that_differ_are_rewritten(
    make_repo: Callable[..., Path], run_cli: RunCli
) -> None:
    repo = make_repo("repo", files=20)
    old = head(repo)
    (repo / "src" / "d1" / "f1.txt").write_text("changed\n")
    (repo / "added.txt").write_text("new\n")
    commit_all(repo, "second")
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    inodes = {p: (member / p).stat().st_ino for p in ("src/d2/f2.txt", "src/d1/f1.txt")}

    attempt = dispatch(run_cli, repo, "older", "--base-ref", old)
    path = Path(attempt["worktree_path"])
    assert from_pool(run_cli, attempt, repo)
    assert attempt["base_commit"] == old == head(path)
    assert (path / "src" / "d2" / "f2.txt").stat().st_ino == inodes["src/d2/f2.txt"]
    assert (path / "src" / "d1" / "f1.txt").read_text() == "file 1\n"
    assert not (path / "added.txt").exists()
    assert git("status", "--porcelain", "--untracked-files=all", cwd=path) == ""
    fsck(repo)


def test_an_empty_pool_falls_back_to_a_fresh_worktree(repo: Path, run_cli: RunCli) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    first = dispatch(run_cli, repo, "one")
    second = dispatch(run_cli, repo, "two")
    assert from_pool(run_cli, first, repo) and not from_pool(run_cli, second, repo)
    assert git("status", "--porcelain", cwd=Path(second["worktree_path"])) == ""
    assert doctor(run_cli, repo)["findings"] == []


def test_concurrent_dispatches_never_share_a_member(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    pool_fill(run_cli, repo, "--size", "3")
    env = {**os.environ}
    dispatches = [[ORCH_BIN, "dispatch", "--prompt", "p", f"race-{i}", "--json"] for i in range(6)]
    outputs = all_at_once(dispatches, cwd=repo, env=env)
    attempts = [json.loads(out)["attempt"] for out in outputs]
    paths = {a["worktree_path"] for a in attempts}
    assert len(paths) == 6
    pooled = [a for a in attempts if from_pool(run_cli, a, repo)]
    assert len(pooled) == 3
    assert ready(run_cli, repo) == []
    for a in attempts:
        assert entry_of(repo, a["worktree_path"])["branch"] == f"refs/heads/{a['branch_name']}"
        assert git("status", "--porcelain", cwd=Path(a["worktree_path"])) == ""
    fsck(repo)
    assert doctor(run_cli, repo)["findings"] == []


# -- damaged members -------------------------------------------------------------------------


def test_damaged_members_are_never_handed_out(
    make_repo: Callable[..., Path], run_cli: RunCli, isolated_env: Path
) -> None:
    repo = make_repo("repo")
    other = make_repo("other")
    pool_fill(run_cli, repo, "--size", "3")
    dirty, locked, missing = ready(run_cli, repo)
    (dirty / "src" / "d0" / "f0.txt").write_text("someone's edit\n")
    git("worktree", "unlock", str(locked), cwd=repo)
    git("worktree", "lock", "--reason", "mine", str(locked), cwd=repo)
    shutil.rmtree(missing)
    # a member of another repository dropped into this pool
    pool_fill(run_cli, other, "--size", "1")
    (foreign,) = ready(run_cli, other)
    intruder = dirty.parent / "w-00000000"
    os.rename(foreign, intruder)
    (dirty.parent / "m-00000000").touch()  # marked ready

    problems = {Path(m["path"]).name: m["problem"] for m in pool_members(run_cli, repo)}
    assert problems[dirty.name].startswith("dirty")
    assert problems[locked.name] == "locked by someone else (mine)"
    assert problems[missing.name] == "missing"
    assert problems[intruder.name] == "a worktree of another repository"

    for i in range(2):
        attempt = dispatch(run_cli, repo, f"t{i}")
        assert not from_pool(run_cli, attempt, repo)
        assert git("status", "--porcelain", cwd=Path(attempt["worktree_path"])) == ""
    assert ready(run_cli, repo) == []

    found = {f["kind"] for f in doctor(run_cli, repo)["findings"]}
    assert found == {"pool-member-damaged"}
    fixed = doctor(run_cli, repo, "--fix")
    assert all(f["fixed"] for f in fixed["findings"]), fixed
    assert doctor(run_cli, repo)["findings"] == []
    # nothing lost: the edit and the other repository's member are in the archive
    archived = list((isolated_env / "archive").iterdir())
    assert len(archived) == 2
    assert any((a / "files" / ".git").exists() for a in archived)
    # the other repository's member is still its worktree, only moved
    fsck(repo)
    assert [w["worktree"] for w in worktrees(repo)][1:] == [
        a["worktree_path"] for a in sorted(attempts_of(run_cli, repo), key=lambda a: a["task_key"])
    ]
    # a fill afterwards brings the pool back to its size
    assert pool_fill(run_cli, repo)["ready"] == 3


def index_of(worktree: Path) -> bytes:
    admin = Path(git("rev-parse", "--absolute-git-dir", cwd=worktree).strip())
    return (admin / "index").read_bytes()


@pytest.mark.parametrize("setting", [None, "false"])
def test_a_member_keeps_the_untracked_cache_where_it_is_handed_over(
    repo: Path, run_cli: RunCli, setting: str | None
) -> None:
    """Members keep git's untracked cache (an index extension keyed on the worktree's
    path) and are handed over where they were made, so the cache stays valid: git uses
    it without a word. A repository that turns the cache off gets none."""
    if setting is not None:
        git("config", "core.untrackedCache", setting, cwd=repo)
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    assert (b"UNTR" in index_of(member)) == (setting is None)
    attempt = dispatch(run_cli, repo, "cached")
    assert from_pool(run_cli, attempt, repo) and attempt["worktree_path"] == str(member)
    (member / "new.txt").write_text("an agent's new file\n")
    proc = subprocess.run(["git", "status", "--porcelain"], cwd=member, capture_output=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"?? new.txt\n", b"")
    assert (b"UNTR" in index_of(member)) == (setting is None)


def test_fill_replaces_members_and_refreshes_old_ones(repo: Path, run_cli: RunCli) -> None:
    pool_fill(run_cli, repo, "--size", "2")
    first, second = ready(run_cli, repo)
    shutil.rmtree(first)
    new_head = commit_all_with(repo, "next.txt", "next\n")
    result = pool_fill(run_cli, repo)
    assert result["ready"] == 2 and result["created"] == 1 and result["refreshed"] == 1
    members = pool_members(run_cli, repo)
    assert {m["commit"] for m in members} == {new_head}
    assert all(m["problem"] is None for m in members)
    assert second in [Path(m["path"]) for m in members]  # refreshed in place, not remade
    assert git("worktree", "prune", "--dry-run", "-v", cwd=repo) == ""
    # shrinking removes the extra ones
    assert pool_fill(run_cli, repo, "--size", "1")["ready"] == 1
    assert len([w for w in worktrees(repo) if "locked" in w]) == 1
    result = run_cli("pool", "drain", cwd=repo)
    assert result.exit_code == 0
    assert worktrees(repo) == worktrees(repo)[:1]


def commit_all_with(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    return commit_all(repo, f"add {name}")


def test_two_fills_at_once_do_not_overfill(repo: Path, run_orch: RunOrch) -> None:
    all_at_once([[ORCH_BIN, "pool", "fill", "--size", "3", "--quiet"]] * 3, cwd=repo)
    locked = [w for w in worktrees(repo) if w.get("locked") == "orch pool member"]
    assert len(locked) == 3


def test_dispatch_refills_the_pool_in_the_background(
    repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setenv("ORCH_POOL_REFILL", "1")
    pool_fill(run_cli, repo, "--size", "2")
    for i in range(2):
        assert from_pool(run_cli, dispatch(run_cli, repo, f"t{i}"), repo)
    # the refill runs detached; wait for it (bounded), never for a time
    deadline = time.monotonic() + 120
    while len(ready(run_cli, repo)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    from orch.fslock import file_lock

    with file_lock(repo / ".git" / "orch" / "pool-fill.lock", 120):
        members = pool_members(run_cli, repo)
    assert [m["problem"] for m in members] == [None, None], (
        members,
        (isolated_env / "logs" / "pool-fill.log").read_text(),
    )


def test_refill_is_off_without_a_size(
    repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setenv("ORCH_POOL_REFILL", "1")
    dispatch(run_cli, repo, "t")
    assert not (isolated_env / "logs" / "pool-fill.log").exists()
    assert pool_members(run_cli, repo) == []


# -- cleanup returns worktrees ---------------------------------------------------------------


def test_cleanup_to_pool_returns_clean_worktrees_only(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    taken = dispatch(run_cli, repo, "taken")
    assert from_pool(run_cli, taken, repo)
    clean = dispatch(run_cli, repo, "clean")
    dirty = dispatch(run_cli, repo, "dirty")
    extra = dispatch(run_cli, repo, "extra")
    Path(clean["worktree_path"], "build").mkdir()
    Path(clean["worktree_path"], "build", "out.o").write_text("ignored\n")
    Path(dirty["worktree_path"], "notes.txt").write_text("unsaved\n")
    for a in (clean, dirty, extra):
        assert run_cli("cancel", a["id"], cwd=repo).exit_code == 0

    result = json_out(run_cli("cleanup", "--to-pool", "--json", clean["id"], cwd=repo))
    (item,) = result["items"]
    assert item["removed"] == ["worktree (to the pool)", "branch", "payload"]
    (returned,) = ready(run_cli, repo)
    assert not (returned / "build").exists()
    assert git("status", "--porcelain", "--ignored", cwd=returned) == ""
    assert clean["branch_name"] not in [b.removeprefix("refs/heads/") for b in orch_branches(repo)]

    # unsaved work: skipped as always; the pool is full: removed as always
    skipping = run_cli("cleanup", "--to-pool", "--json", dirty["id"], extra["id"], cwd=repo)
    assert skipping.exit_code == 20, skipping.output  # it skipped one: README's exit code 20
    result = json.loads(skipping.stdout)
    actions = {i["attempt"]: (i["action"], i["removed"]) for i in result["items"]}
    assert actions[dirty["id"]][0] == "skip"
    assert actions[extra["id"]] == ("remove", ["worktree", "branch", "payload"])
    assert len(ready(run_cli, repo)) == 1
    assert not Path(extra["worktree_path"]).exists()
    # the returned worktree serves the next dispatch like any member
    again = dispatch(run_cli, repo, "again")
    assert from_pool(run_cli, again, repo)
    assert git("status", "--porcelain", cwd=Path(again["worktree_path"])) == ""
    fsck(repo)
    assert doctor(run_cli, repo)["findings"] == []


# -- crashes and bad input -------------------------------------------------------------------


@pytest.mark.parametrize("step", ["pool-member-claimed", "worktree-added"])
def test_dispatch_killed_while_taking_a_member_is_repaired(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, step: str
) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    proc = run_orch("dispatch", "--prompt", "p", "crash", cwd=repo, env={"ORCH_CRASH_AT": step})
    assert proc.returncode == -9, (proc.returncode, proc.stderr)
    fixed = doctor(run_cli, repo, "--fix")
    assert fixed["findings"] and all(f["fixed"] for f in fixed["findings"]), fixed
    assert doctor(run_cli, repo)["findings"] == []
    assert orch_branches(repo) == []
    assert [w["worktree"] for w in worktrees(repo)] == [str(repo)]
    fsck(repo)
    assert pool_fill(run_cli, repo)["ready"] == 1
    attempt = dispatch(run_cli, repo, "after")
    assert from_pool(run_cli, attempt, repo)


@pytest.mark.parametrize("step", ["intent-recorded", "branch-created"])
def test_dispatch_killed_before_taking_a_member_leaves_it_in_the_pool(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, step: str
) -> None:
    """The intent names the probed member; killed before the claim, the member is still
    the pool's: doctor rolls the attempt back without touching it."""
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    proc = run_orch("dispatch", "--prompt", "p", "crash", cwd=repo, env={"ORCH_CRASH_AT": step})
    assert proc.returncode == -9, (proc.returncode, proc.stderr)
    (crashed,) = attempts_of(run_cli, repo)
    assert crashed["worktree_path"] == str(member)
    fixed = doctor(run_cli, repo, "--fix")
    assert [f["kind"] for f in fixed["findings"]] == ["stuck-provisioning"], fixed
    assert doctor(run_cli, repo)["findings"] == []
    assert orch_branches(repo) == []
    assert ready(run_cli, repo) == [member]
    attempt = dispatch(run_cli, repo, "after")
    assert from_pool(run_cli, attempt, repo) and attempt["worktree_path"] == str(member)


def test_a_failed_dispatch_never_removes_a_member_another_one_claimed(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    """Dispatches A and B both name the only member in their intents; B claims it, then
    A fails before its own claim: A's rollback leaves B's worktree alone."""
    from orch.attempts.dispatch import DispatchRequest
    from orch.attempts.dispatch import dispatch as dispatch_in_process
    from orch.cli.common import settings_from_env
    from orch.git import Git
    from orch.store import open_store

    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    settings = settings_from_env()
    other: dict[str, Any] = {}

    def meanwhile(step: str) -> None:
        if step == "branch-created":  # A holds the member's path in its intent
            proc = run_orch("dispatch", "--prompt", "p", "--json", "b", cwd=repo)
            other.update(json.loads(proc.stdout)["attempt"])
            raise KeyboardInterrupt  # the operator's Ctrl-C, before A's claim

    request = DispatchRequest(
        task_key="a",
        repo_path=repo,
        base_ref=None,
        strict=False,
        prompt="p",
        worker=None,
        phase=None,
        reuse_workspace=False,
        host=None,
        sparse=(),
    )
    with pytest.raises(KeyboardInterrupt):
        dispatch_in_process(
            request,
            settings,
            Git(),
            lambda: open_store(settings.database_url, settings.locks_dir),
            "test",
            meanwhile,
        )
    assert other["worktree_path"] == str(member)
    assert git("status", "--porcelain", cwd=member) == ""
    assert head(member) == other["base_commit"]
    rows = attempts_of(run_cli, repo)
    states = {a["task_key"]: (a["state"], a["workspace_status"]) for a in rows}
    assert states == {"a": ("failed", "failed"), "b": ("queued", "ready")}
    assert doctor(run_cli, repo)["findings"] == []


def test_doctor_never_removes_a_member_another_dispatch_claimed(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    """A is killed with the member's path in its intent; B claims that member; rolling A
    back leaves B's worktree alone."""
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    proc = run_orch(
        "dispatch", "--prompt", "p", "a", cwd=repo, env={"ORCH_CRASH_AT": "intent-recorded"}
    )
    assert proc.returncode == -9, proc.stderr
    b = dispatch(run_cli, repo, "b")
    assert from_pool(run_cli, b, repo) and b["worktree_path"] == str(member)
    fixed = doctor(run_cli, repo, "--fix")
    assert [f["kind"] for f in fixed["findings"]] == ["stuck-provisioning"], fixed
    assert git("status", "--porcelain", cwd=member) == ""
    assert show(run_cli, b["id"], repo)["attempt"]["workspace_status"] == "ready"
    assert doctor(run_cli, repo)["findings"] == []


def test_a_worktree_returned_to_the_pool_is_not_reused_by_its_old_task(
    repo: Path, run_cli: RunCli
) -> None:
    """--reuse-workspace follows a task's worktree; once cleanup returned it to the pool
    the task gets a worktree of its own again (the member, claimed anew while it is in
    the pool; a fresh one when another task took it)."""
    pool_fill(run_cli, repo, "--size", "1")
    first = dispatch(run_cli, repo, "feat")
    member = first["worktree_path"]
    assert from_pool(run_cli, first, repo)

    def back_to_the_pool(attempt: dict[str, Any]) -> None:
        assert run_cli("cancel", attempt["id"], cwd=repo).exit_code == 0
        json_out(run_cli("cleanup", "--to-pool", "--json", attempt["id"], cwd=repo))
        assert ready(run_cli, repo) == [Path(member)]

    back_to_the_pool(first)
    claimed = dispatch(run_cli, repo, "feat", "--phase", "review", "--reuse-workspace")
    assert claimed["workspace_status"] == "ready" and from_pool(run_cli, claimed, repo)
    assert ready(run_cli, repo) == []  # claimed, not used while still in the pool

    back_to_the_pool(claimed)
    other = dispatch(run_cli, repo, "other")
    assert other["worktree_path"] == member
    fresh = dispatch(run_cli, repo, "feat", "--phase", "fix", "--reuse-workspace")
    assert fresh["workspace_status"] == "ready" and fresh["worktree_path"] != member
    assert (
        git("symbolic-ref", "--short", "HEAD", cwd=Path(member)).strip() == (other["branch_name"])
    )
    assert doctor(run_cli, repo)["findings"] == []


def test_pool_commands_outside_a_repository_fail_cleanly(
    tmp_path: Path, run_cli: RunCli, repo: Path
) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    result = run_cli("pool", "fill", "--size", "1", cwd=outside)
    assert "not a git repository" in assert_failed_cleanly(result, 3)
    result = run_cli("pool", "fill", "--size", "-1", cwd=repo)
    assert result.exit_code == 2
    assert pool_members(run_cli, repo) == []


def test_an_unwritable_worktree_root_is_a_workspace_error(
    repo: Path, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the worktree root should be\n")
    monkeypatch.setenv("ORCH_WORKTREE_ROOT", str(blocker / "worktrees"))
    result = run_cli("pool", "fill", "--size", "1", cwd=repo)
    assert "cannot write the pool" in assert_failed_cleanly(result, 7)
    assert len(worktrees(repo)) == 1


def test_a_repository_whose_orch_directory_is_a_file(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    dispatch(run_cli, repo, "t")
    (repo / ".git" / "orch").rename(repo / ".git" / "orch-moved")
    (repo / ".git" / "orch").write_text("not a directory\n")
    result = run_cli("pool", "fill", "--size", "1", cwd=repo)
    assert "cannot lock the pool" in assert_failed_cleanly(result, 7)
    assert doctor(run_cli, repo)["findings"] == []  # no traceback, nothing to report


def test_an_interrupted_fill_is_found_and_swept(repo: Path, run_cli: RunCli) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    # what a fill killed half-way leaves: a registered worktree marked as in the making
    leftover = member.parent / "w-deadbeef"
    git("worktree", "add", "-q", "--detach", str(leftover), "HEAD", cwd=repo)
    (member.parent / ".filling-deadbeef").touch()
    found = doctor(run_cli, repo)["findings"]
    assert [(f["kind"], f["detail"]) for f in found] == [
        ("pool-member-damaged", "left over by an interrupted fill")
    ]
    result = pool_fill(run_cli, repo)
    assert result["removed"] == [f"{leftover}: left over"] and result["ready"] == 1
    assert not leftover.exists() and not (member.parent / ".filling-deadbeef").exists()
    assert doctor(run_cli, repo)["findings"] == []
    assert len(worktrees(repo)) == 2


def test_members_an_older_orch_made_are_replaced(repo: Path, run_cli: RunCli) -> None:
    """An older orch kept a ready member as a directory named m-<id> (and one in the
    making as .filling-<id>): the next fill removes them and makes members anew."""
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    old_ready = member.parent / "m-0ld0ld00"
    old_filling = member.parent / ".filling-0ld0ld01"
    for old in (old_ready, old_filling):
        git("worktree", "add", "-q", "--detach", str(old), "HEAD", cwd=repo)
    git("worktree", "lock", "--reason", "orch pool member", str(old_ready), cwd=repo)
    # neither is handed out
    attempt = dispatch(run_cli, repo, "t")
    assert from_pool(run_cli, attempt, repo) and attempt["worktree_path"] == str(member)
    result = pool_fill(run_cli, repo)
    assert sorted(result["removed"]) == sorted(
        [f"{old_filling}: left over", f"{old_ready}: made by an older orch"]
    )
    assert result["ready"] == 1
    assert not old_ready.exists() and not old_filling.exists()
    assert doctor(run_cli, repo)["findings"] == []


def test_drain_keeps_a_damaged_member_that_may_hold_work_for_doctor(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    (member / "src" / "d0" / "f0.txt").write_text("someone's edit\n")
    attempt = dispatch(run_cli, repo, "t")  # sets the dirty member aside, never hands it out
    assert not from_pool(run_cli, attempt, repo)

    result = run_cli("pool", "drain", cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert "kept 1 damaged member(s)" in result.stdout
    assert {f["kind"] for f in doctor(run_cli, repo)["findings"]} == {"pool-member-damaged"}
    doctor(run_cli, repo, "--fix")
    archived = list((isolated_env / "archive").iterdir())
    assert len(archived) == 1  # the edit was saved before the member went


def test_an_unreadable_pool_is_one_line_and_never_fails_a_dispatch(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    pool_fill(run_cli, repo, "--size", "1")
    flavour = ready(run_cli, repo)[0].parent
    shutil.rmtree(flavour)
    flavour.symlink_to(flavour.name)  # a link to itself: reading it fails (ELOOP)

    for args in (["pool", "fill"], ["pool", "list"], ["pool", "drain"]):
        proc = run_orch(*args, cwd=repo)
        assert proc.returncode == 7, (args, proc.stderr)
        assert error_line(proc.stderr).startswith("Error: "), proc.stderr
    made = run_orch("dispatch", "--prompt", "p", "--json", "fresh", cwd=repo)
    assert made.returncode == 0, made.stderr
    attempt = json.loads(made.stdout)["attempt"]
    assert not from_pool(run_cli, attempt, repo)
    assert git("status", "--porcelain", cwd=Path(attempt["worktree_path"])) == ""


def test_a_damaged_member_that_cannot_be_moved_aside_is_kept_with_its_work(
    repo: Path, run_orch: RunOrch
) -> None:
    assert run_orch("pool", "fill", "--size", "1", cwd=repo).returncode == 0
    (member,) = [
        p for p in (Path(os.environ["ORCH_HOME"]) / "worktrees").glob("*/.orch-pool/*/w-*")
    ]
    (member / "notes.txt").write_text("someone's unsaved work\n")  # dirty: not handed out
    # where it would be set aside is taken (a non-empty directory): the rename fails
    aside = member.with_name(".damaged-" + member.name.removeprefix("w-"))
    aside.mkdir()
    (aside / "x").write_text("x\n")

    proc = run_orch("dispatch", "--prompt", "p", "kept", cwd=repo)
    assert proc.returncode == 7, proc.stderr
    assert "could not be moved aside" in error_line(proc.stderr)
    assert f"it is kept at {member}" in error_line(proc.stderr)
    assert (member / "notes.txt").read_text() == "someone's unsaved work\n"
    assert not member.with_name("m-" + member.name.removeprefix("w-")).exists()  # not ready


def test_a_hooks_path_set_after_orch_read_the_config_is_honoured(repo: Path) -> None:
    """A long-lived process (`orch work`) read the config when it started; a
    core.hooksPath set since then is not missed: the Git object keeps no facts, and a
    caller that does not hold a fresh read of them lets git look."""
    from orch.git import Git, checkout_env

    orch_git = Git()
    repository = orch_git.discover(repo)
    facts = orch_git.start_repository_facts(repository).result()
    assert facts.hooks == repository.common_dir / "hooks"  # the default place, none there
    hooks = repo.parent / "late-hooks"
    hooks.mkdir()
    log = repo.parent / "late.log"
    (hooks / "post-checkout").write_text(f'#!/bin/sh\necho ran > "{log}"\n')
    (hooks / "post-checkout").chmod(0o755)
    subprocess.run(["git", "config", "core.hooksPath", str(hooks)], cwd=repo, check=True)
    assert orch_git.start_repository_facts(repository).result().hooks is None  # ask git
    commit = head(repo)
    orch_git.post_checkout(repo, commit, commit, checkout_env(False))
    assert log.read_text() == "ran\n"


def test_a_member_refreshed_after_its_probe_began_is_claimed_not_set_aside(
    make_repo: Callable[..., Path], run_cli: RunCli
) -> None:
    """Issue 17, item 4: right after a commit on main, a fill took a ready member to
    refresh it while a dispatch's probe ran `git status` in it; the probe saw the files
    mid-move, the fill marked the member ready again (clean, at the new HEAD), and the
    dispatch then claimed it with the stale verdict and set it aside as damaged. Here the
    probe sees a change that is gone (as after the refresh) by the time of the claim."""
    from orch.cli.common import settings_from_env
    from orch.git import Git
    from orch.models import CheckoutSpec
    from orch.workspace import pool

    repo = make_repo("repo", files=5)
    pool_fill(run_cli, repo, "--size", "1")
    (member,) = ready(run_cli, repo)
    git_ = Git()
    found = git_.discover(repo)
    settings = settings_from_env()
    spec = CheckoutSpec()
    moving = member / "src" / "d1" / "f1.txt"
    kept = moving.read_bytes()
    moving.write_text("half moved by a refresh\n")
    probed = pool.probe(git_, found, settings, spec)
    assert probed is not None and probed.member == member
    assert probed.check.result()  # the probe saw the member mid-move
    moving.write_bytes(kept)  # the refresh ends: clean again, ready again
    claimed = pool.claim(git_, found, settings, spec, member, probed)
    assert claimed is not None and claimed.path == member
    assert [m for m in pool_members(run_cli, repo) if m["problem"]] == []
