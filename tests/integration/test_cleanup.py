"""``orch cleanup`` (issue 4, point 1): remove what ended attempts leave, losing nothing.

Attempts end for real (``orch work`` running an agent script in the worktree, or ``orch
cancel``); every check asks git, the disk or orch. Saved work is restored with plain git
and tar in a fresh clone, so it counts as saved only if the archive really carries it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.attempts.dispatch import DispatchRequest
from orch.attempts.dispatch import dispatch as dispatch_request
from orch.attempts.worker import worktree_lock_path
from orch.config import resolve
from orch.fslock import try_lock
from orch.git import Git
from orch.store import open_store
from tests.support.archives import (
    archives,
    manifest,
    restore_commits,
    restore_worktree,
    tarball_names,
)
from tests.support.attempts import (
    AGENT_LEAVES_WORK,
    assert_consistent,
    cancel,
    dispatch,
    payload_files,
    shown_attempt,
    work,
)
from tests.support.cli import ORCH_BIN, RunCli, RunOrch, assert_failed_cleanly, json_out
from tests.support.repos import (
    branch_tip,
    fresh_clone,
    git,
    head,
    reachable_from_a_branch,
    worktrees,
)

SKIPPED = 20  # the exit code of a cleanup that skipped an attempt (README's table)


def cleanup(run_cli: RunCli, repo: Path, *args: str) -> list[str]:
    """Run ``orch cleanup``; it exits 0, or 20 exactly when its summary counts a skipped
    attempt; return its lines."""
    result = run_cli("cleanup", *args, cwd=repo)
    skipped = int(re.search(r", (\d+) skipped, ", result.stdout.splitlines()[-1]).group(1))
    assert result.exit_code == (SKIPPED if skipped else 0), (result.exit_code, result.output)
    assert result.stderr == ""
    return result.stdout.splitlines()


def cleanup_json(run_cli: RunCli, repo: Path, *args: str) -> dict[str, Any]:
    """``orch cleanup --json``: exit 20 exactly when an attempt was skipped."""
    result = run_cli("cleanup", "--json", *args, cwd=repo)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    assert result.exit_code == (SKIPPED if data["totals"]["skip"] else 0), result.output
    return data


def assert_untouched(repo: Path, attempt: dict[str, Any]) -> None:
    assert Path(attempt["worktree_path"]).is_dir()
    assert branch_tip(repo, attempt["branch_name"]) is not None
    assert Path(attempt["payload_path"]).is_file()


def assert_gone(repo: Path, attempt: dict[str, Any], keep_branch: bool = False) -> None:
    assert not Path(attempt["worktree_path"]).exists()
    assert (branch_tip(repo, attempt["branch_name"]) is not None) == keep_branch
    assert not Path(attempt["payload_path"]).exists()
    listed = [Path(w["worktree"]) for w in worktrees(repo)]
    assert Path(attempt["worktree_path"]) not in listed


def snapshot(root: Path) -> dict[bytes, bytes]:
    """Every file under ``root`` except .git and what git ignores, by raw name and bytes."""
    ignored = set(
        git("ls-files", "-z", "--others", "--ignored", "--exclude-standard", cwd=root).split("\0")
    )
    out = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != b".git"]
        for name in filenames:
            if name == b".git" and dirpath == base:
                continue  # the worktree's link to its repository
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            if os.fsdecode(rel) in ignored:
                continue
            with open(full, "rb") as fh:
                out[rel] = fh.read()
    return out


# -- removing -------------------------------------------------------------------------------


def test_cancelled_attempt_loses_worktree_branch_and_payload_and_says_so(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, "tidy")
    cancel(run_cli, repo, attempt["id"])
    assert run_cli("ports", attempt["id"], cwd=repo).exit_code == 0
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines == [
        f"removed        {attempt['id']}  tidy  (worktree, branch, payload)",
        "1 removed, 0 archived, 0 skipped, 0 already clean",
    ]
    assert_gone(repo, attempt)
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["workspace_status"] == "removed"
    assert after["archive_path"] is None
    events = json_out(run_cli("show", attempt["id"], "--json", cwd=repo))["events"]
    assert [e["kind"] for e in events[-2:]] == ["ports_released", "workspace_removed"]
    # its port bundle is free again
    line = assert_failed_cleanly(run_cli("ports", attempt["id"], cwd=repo), 8)
    assert line == f"Error: attempt {attempt['id']} holds no port bundle"


def test_running_it_again_is_a_quiet_success(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "twice")
    cancel(run_cli, repo, attempt["id"])
    cleanup(run_cli, repo, attempt["id"])
    again = cleanup(run_cli, repo, attempt["id"])
    assert again == ["0 removed, 0 archived, 0 skipped, 1 already clean"]
    data = cleanup_json(run_cli, repo, attempt["id"])  # the JSON still names each attempt
    assert [(i["attempt"], i["action"]) for i in data["items"]] == [(attempt["id"], "clean")]
    assert_consistent(run_cli, repo, isolated_env)


def test_a_succeeded_attempt_with_only_ignored_files_is_removed_without_force(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "ignored")
    work(run_orch, repo, attempt["id"], "mkdir -p build && echo x > build/a.o && echo y > t.log")
    assert shown_attempt(run_cli, repo, attempt["id"])["state"] == "succeeded"
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0].startswith(f"removed        {attempt['id']}")
    assert_gone(repo, attempt)
    assert archives(isolated_env) == []
    assert_consistent(run_cli, repo, isolated_env)


def test_a_worktree_deleted_by_hand_is_a_quiet_success(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "by-hand")
    cancel(run_cli, repo, attempt["id"])
    shutil.rmtree(attempt["worktree_path"])
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0] == f"removed        {attempt['id']}  by-hand  (branch, payload)"
    assert_gone(repo, attempt)
    # git's own bookkeeping of the deleted worktree goes too: nothing left "prunable"
    assert [w for w in worktrees(repo) if "prunable" in w] == []
    assert cleanup(run_cli, repo, attempt["id"])[-1].endswith("1 already clean")
    assert_consistent(run_cli, repo, isolated_env)


def test_many_attempts_at_once(repo: Path, run_cli: RunCli, isolated_env: Path) -> None:
    attempts = [dispatch(run_cli, repo, f"many-{i}") for i in range(6)]
    for a in attempts:
        cancel(run_cli, repo, a["id"])
    data = cleanup_json(run_cli, repo, "--all-terminal")
    assert sorted(i["attempt"] for i in data["items"]) == sorted(a["id"] for a in attempts)
    assert {i["action"] for i in data["items"]} == {"remove"}
    assert data["totals"] == {"remove": 6, "archive": 0, "skip": 0, "clean": 0, "bytes": 0}
    for a in attempts:
        assert_gone(repo, a)
    assert_consistent(run_cli, repo, isolated_env)


# -- work that would be lost ------------------------------------------------------------------


def test_unsaved_work_makes_it_skip_with_the_reason(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = dispatch(run_cli, repo, "busy")
    work(run_orch, repo, attempt["id"], AGENT_LEAVES_WORK)
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines == [
        f"skipped        {attempt['id']}  busy: would lose 2 uncommitted paths and 1 commit on "
        "no other branch or remote; --force saves it to the archive first",
        "0 removed, 0 archived, 1 skipped, 0 already clean",
    ]
    assert_untouched(repo, attempt)
    assert shown_attempt(run_cli, repo, attempt["id"])["workspace_status"] == "ready"


def test_force_saves_the_work_then_removes_and_show_says_where(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    store_url: str,
    isolated_env: Path,
    tmp_path: Path,
) -> None:
    attempt = dispatch(run_cli, repo, "saved")
    work(run_orch, repo, attempt["id"], AGENT_LEAVES_WORK)
    tip = branch_tip(repo, attempt["branch_name"])
    assert tip is not None and tip != attempt["base_commit"]
    lines = cleanup(run_cli, repo, "--force", attempt["id"])
    [saved] = archives(isolated_env)
    assert lines[0] == (
        f"archived       {attempt['id']}  saved  (worktree, branch, payload)  saved to {saved}"
    )
    assert lines[1] == "0 removed, 1 archived, 0 skipped, 0 already clean"
    assert_gone(repo, attempt)
    assert not reachable_from_a_branch(repo, tip)

    after = shown_attempt(run_cli, repo, attempt["id"])
    assert (after["workspace_status"], after["archive_path"]) == ("archived", str(saved))
    text = run_cli("show", attempt["id"], cwd=repo).stdout
    assert f"archive           {saved} (see manifest.json to restore)" in text

    about = manifest(saved)
    assert about["attempt_id"] == attempt["id"]
    assert about["branch_name"] == attempt["branch_name"]
    assert about["head"] == tip
    assert about["unmerged_commits"] == 1
    assert sorted(about["uncommitted_paths"]) == ["notes/todo.txt", "src/d0/f0.txt"]
    assert sorted(about["files"]) == ["commits.bundle", "uncommitted.patch", "untracked.tar.gz"]
    assert tarball_names(saved) == ["notes/todo.txt"]  # nothing ignored (build/) is saved

    # restore for real, in a clone that has never seen the attempt's objects
    clone = fresh_clone(repo, tmp_path / "clone")
    assert restore_commits(saved, clone) == [f"refs/heads/{attempt['branch_name']}"]
    assert head(clone) != tip
    assert git("rev-parse", attempt["branch_name"], cwd=clone).strip() == tip
    restored = restore_worktree(saved, clone, attempt["branch_name"], tmp_path / "restored")
    assert (restored / "agent.txt").read_text() == "committed by the agent\n"
    assert (restored / "src/d0/f0.txt").read_text() == "file 0\nuncommitted edit\n"
    assert (restored / "notes/todo.txt").read_text() == "untracked\n"


# Each kind of unsaved work, alone: (agent script, reason, archive files)
KINDS: dict[str, tuple[str, str, list[str]]] = {
    "commit": (
        "echo c > c.txt && git add c.txt && git commit -q -m c",
        "1 commit on no other branch or remote",
        ["commits.bundle"],
    ),
    "two-commits": (
        "echo 1 > c.txt && git add c.txt && git commit -q -m 1 && "
        "echo 2 > c.txt && git commit -q -am 2",
        "2 commits on no other branch or remote",
        ["commits.bundle"],
    ),
    "detached-commit": (
        "git checkout -q --detach && echo d > d.txt && git add d.txt && git commit -q -m d",
        "1 commit on no other branch or remote",
        ["commits.bundle"],
    ),
    "edit": ("echo more >> src/d1/f1.txt", "1 uncommitted path", ["uncommitted.patch"]),
    "staged-new-file": (
        "echo n > staged.txt && git add staged.txt",
        "1 uncommitted path",
        ["uncommitted.patch"],
    ),
    "deletion": ("rm src/d2/f2.txt", "1 uncommitted path", ["uncommitted.patch"]),
    "binary-edit": (
        "printf '\\000\\377\\001' >> blob.bin",
        "1 uncommitted path",
        ["uncommitted.patch"],
    ),
    "not-utf8-edit": (
        "printf 'na\\357ve\\n' >> latin1.txt",
        "1 uncommitted path",
        ["uncommitted.patch"],
    ),
    "crlf-edit": ("printf 'c\\r\\n' >> crlf.txt", "1 uncommitted path", ["uncommitted.patch"]),
    "untracked": ("echo u > new.txt", "1 uncommitted path", ["untracked.tar.gz"]),
    "not-utf8-name": (
        "printf 'x\\n' > \"$(printf 'caf\\351.txt')\"",
        "1 uncommitted path",
        ["untracked.tar.gz"],
    ),
    "untracked-symlink": ("ln -s src/d0/f0.txt link", "1 uncommitted path", ["untracked.tar.gz"]),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_of_unsaved_work_blocks_and_is_restored_byte_for_byte(
    make_repo: Callable[..., Path],
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    repo = make_repo("repo")
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    (repo / "latin1.txt").write_bytes(b"caf\xe9\n")
    (repo / "crlf.txt").write_bytes(b"a\r\nb\r\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "binary and latin-1", cwd=repo)
    script, reason, files = KINDS[kind]
    attempt = dispatch(run_cli, repo, kind)
    work(run_orch, repo, attempt["id"], script)
    worktree = Path(attempt["worktree_path"])
    before = snapshot(worktree)
    head_before = head(worktree)

    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0] == (
        f"skipped        {attempt['id']}  {kind}: would lose {reason}; "
        "--force saves it to the archive first"
    )
    assert_untouched(repo, attempt)

    lines = cleanup(run_cli, repo, "--force", attempt["id"])
    [saved] = archives(isolated_env)
    assert lines[0].endswith(f"saved to {saved}")
    assert sorted(manifest(saved)["files"]) == files
    assert_gone(repo, attempt)
    assert_consistent(run_cli, repo, isolated_env)

    clone = fresh_clone(repo, tmp_path / "clone")
    if "commits.bundle" in files:
        refs = restore_commits(saved, clone)
        if kind == "detached-commit":
            assert refs == [f"refs/heads/restored-{attempt['id']}"]
    restored = restore_worktree(saved, clone, head_before, tmp_path / "restored")
    assert snapshot(restored) == before


def test_a_hand_deleted_worktree_whose_branch_has_commits_is_bundled_with_force(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "gone-with-commits")
    work(run_orch, repo, attempt["id"], "echo c > c.txt && git add c.txt && git commit -qm c")
    tip = branch_tip(repo, attempt["branch_name"])
    shutil.rmtree(attempt["worktree_path"])
    lines = cleanup(run_cli, repo, attempt["id"])
    assert "would lose 1 commit on no other branch or remote" in lines[0]
    assert branch_tip(repo, attempt["branch_name"]) == tip
    lines = cleanup(run_cli, repo, "--force", attempt["id"])
    [saved] = archives(isolated_env)
    assert lines[0].startswith(
        f"archived       {attempt['id']}  gone-with-commits  (branch, payload)"
    )
    assert sorted(manifest(saved)["files"]) == ["commits.bundle"]
    assert_consistent(run_cli, repo, isolated_env)
    clone = fresh_clone(repo, tmp_path / "clone")
    restore_commits(saved, clone)
    assert git("rev-parse", attempt["branch_name"], cwd=clone).strip() == tip


def test_a_branch_merged_into_the_base_branch_is_always_safe_to_delete(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "merged")
    work(run_orch, repo, attempt["id"], "echo c > c.txt && git add c.txt && git commit -qm c")
    tip = branch_tip(repo, attempt["branch_name"])
    git("merge", "-q", "--no-edit", attempt["branch_name"], cwd=repo)
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0] == f"removed        {attempt['id']}  merged  (worktree, branch, payload)"
    assert archives(isolated_env) == []
    assert head(repo) == tip
    assert_consistent(run_cli, repo, isolated_env)


def test_commits_on_a_remote_tracking_ref_are_safe(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    attempt = dispatch(run_cli, repo, "pushed")
    work(run_orch, repo, attempt["id"], "echo c > c.txt && git add c.txt && git commit -qm c")
    tip = branch_tip(repo, attempt["branch_name"])
    git("push", "-q", "origin", attempt["branch_name"], cwd=repo)
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0].startswith(f"removed        {attempt['id']}")
    assert branch_tip(repo, attempt["branch_name"]) is None
    ref = f"refs/remotes/origin/{attempt['branch_name']}"
    assert git("rev-parse", ref, cwd=repo).strip() == tip
    assert_consistent(run_cli, repo, isolated_env)


def test_keep_branch_removes_only_the_worktree_and_payload(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "keep")
    work(run_orch, repo, attempt["id"], "echo c > c.txt && git add c.txt && git commit -qm c")
    tip = branch_tip(repo, attempt["branch_name"])
    # the commits stay on the kept branch: nothing would be lost, no --force needed
    lines = cleanup(run_cli, repo, "--keep-branch", attempt["id"])
    assert lines[0] == f"removed        {attempt['id']}  keep  (worktree, payload)"
    assert_gone(repo, attempt, keep_branch=True)
    assert branch_tip(repo, attempt["branch_name"]) == tip
    assert shown_attempt(run_cli, repo, attempt["id"])["workspace_status"] == "removed"
    # the row keeps its branch deliberately: neither doctor nor a second cleanup touches it
    assert_consistent(run_cli, repo, isolated_env)
    assert cleanup(run_cli, repo, attempt["id"])[-1].endswith("1 already clean")
    assert branch_tip(repo, attempt["branch_name"]) == tip


def test_keep_branch_still_refuses_to_drop_uncommitted_changes(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = dispatch(run_cli, repo, "keep-dirty")
    work(run_orch, repo, attempt["id"], "echo x >> src/d0/f0.txt")
    lines = cleanup(run_cli, repo, "--keep-branch", attempt["id"])
    assert lines[0].endswith("would lose 1 uncommitted path; --force saves it to the archive first")
    assert_untouched(repo, attempt)


# -- what is never touched ------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_queued_attempt_is_skipped_unless_forced(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "queued")
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0] == (
        f"skipped        {attempt['id']}  queued: queued, not ended (cancel it, or --force)"
    )
    assert_untouched(repo, attempt)
    lines = cleanup(run_cli, repo, "--force", attempt["id"])
    assert lines[0].startswith(f"removed        {attempt['id']}")
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert (after["state"], after["workspace_status"]) == ("cancelled", "removed")
    assert after["reason"] == "cancelled by cleanup --force"
    assert_consistent(run_cli, repo, isolated_env)


def test_an_attempt_whose_worker_is_alive_is_never_touched_even_with_force(
    repo: Path,
    run_cli: RunCli,
    sleeper: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCH_LEASE_TTL", "3600")  # the lease stays valid: no race with time
    attempt = dispatch(run_cli, repo, "alive")
    claimed = run_cli("claim", attempt["id"], "--worker", "w", "--pid", str(sleeper.pid))
    assert claimed.exit_code == 0, claimed.output
    skipped = f"skipped        {attempt['id']}  alive: its worker is alive (cancel it first)"
    for args in ((attempt["id"],), ("--force", attempt["id"]), ("--state", "running", "--force")):
        assert cleanup(run_cli, repo, *args)[0] == skipped, args
    # a live attempt is not even a candidate for the terminal selectors
    assert cleanup(run_cli, repo, "--all-terminal", "--force") == [
        "0 removed, 0 archived, 0 skipped, 0 already clean"
    ]
    assert_untouched(repo, attempt)
    assert shown_attempt(run_cli, repo, attempt["id"])["state"] == "running"


def test_an_attempt_whose_worker_died_is_reaped_then_removed(
    repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setenv("ORCH_LEASE_TTL", "3600")
    attempt = dispatch(run_cli, repo, "dead")
    short = subprocess.Popen(["sleep", "600"])
    claimed = run_cli("claim", attempt["id"], "--worker", "w", "--pid", str(short.pid))
    assert claimed.exit_code == 0, claimed.output
    short.kill()
    short.wait()
    lines = cleanup(run_cli, repo, attempt["id"])
    assert lines[0].startswith(f"removed        {attempt['id']}")
    assert shown_attempt(run_cli, repo, attempt["id"])["state"] == "worker_gone"
    assert_consistent(run_cli, repo, isolated_env)


def test_an_agent_still_holding_the_worktree_is_skipped(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "held")
    cancel(run_cli, repo, attempt["id"])
    path = worktree_lock_path(Path(attempt["worktree_path"]), resolve(os.environ))
    lock = try_lock(path, "an agent the test plays")
    assert lock is not None
    try:
        lines = cleanup(run_cli, repo, "--force", attempt["id"])
        assert lines[0] == (
            f"skipped        {attempt['id']}  held: an agent is still running in its worktree"
        )
        assert_untouched(repo, attempt)
    finally:
        lock.release()
    assert cleanup(run_cli, repo, attempt["id"])[0].startswith("removed")
    assert_consistent(run_cli, repo, isolated_env)


def test_a_worktree_shared_with_a_live_continuation_is_kept_until_both_ended(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    first = dispatch(run_cli, repo, "phases")
    work(run_orch, repo, first["id"])
    sent = run_cli("send", first["id"], "now the next phase", cwd=repo)
    assert sent.exit_code == 0, sent.output
    second_id = sent.stdout.split(":")[0]
    second = shown_attempt(run_cli, repo, second_id)
    assert second["workspace_status"] == "reused"
    assert second["worktree_path"] == first["worktree_path"]

    lines = cleanup(run_cli, repo, first["id"])
    assert lines[0] == (
        f"skipped        {first['id']}  phases: attempt {second_id} (queued) still works in "
        "this worktree"
    )
    assert_untouched(repo, first)

    cancel(run_cli, repo, second_id)
    assert cleanup(run_cli, repo, first["id"])[0].startswith(f"removed        {first['id']}")
    assert_gone(repo, first)
    assert shown_attempt(run_cli, repo, second_id)["workspace_status"] == "removed"
    # the continuation's own payload goes with the shared workspace
    assert not Path(second["payload_path"]).exists()
    assert cleanup(run_cli, repo, second_id)[-1].endswith("1 already clean")
    assert_consistent(run_cli, repo, isolated_env)


# -- choosing attempts ------------------------------------------------------------------------


def test_without_attempts_or_selectors_it_refuses(repo: Path, run_cli: RunCli) -> None:
    line = assert_failed_cleanly(run_cli("cleanup", cwd=repo), 2)
    assert line == (
        "Error: name attempts, or select them with --all-terminal, --state, --task or --older-than"
    )


@pytest.mark.parametrize("age", ["7", "d", "7x", "-7d", "1.5h", "", "²d", "٣h"])
def test_a_bad_age_is_refused(repo: Path, run_cli: RunCli, age: str) -> None:
    line = assert_failed_cleanly(run_cli("cleanup", "--older-than", age, cwd=repo), 2)
    assert line == f"Error: invalid age {age!r}: use a number and s, m, h, d or w (e.g. 7d)"


def test_an_unknown_attempt_exits_8(repo: Path, run_cli: RunCli) -> None:
    line = assert_failed_cleanly(run_cli("cleanup", "feedbeef", cwd=repo), 8)
    assert line == "Error: no attempt 'feedbeef' in the store"


def test_all_terminal_state_and_task_select(repo: Path, run_cli: RunCli, run_orch: RunOrch) -> None:
    done = dispatch(run_cli, repo, "alpha")
    work(run_orch, repo, done["id"])
    stopped = dispatch(run_cli, repo, "beta")
    cancel(run_cli, repo, stopped["id"])
    other = dispatch(run_cli, repo, "alpha-2")
    cancel(run_cli, repo, other["id"])
    live = dispatch(run_cli, repo, "gamma")

    data = cleanup_json(run_cli, repo, "--dry-run", "--all-terminal")
    assert sorted(i["attempt"] for i in data["items"]) == sorted(
        [done["id"], stopped["id"], other["id"]]
    )
    data = cleanup_json(run_cli, repo, "--dry-run", "--state", "cancelled")
    assert sorted(i["attempt"] for i in data["items"]) == sorted([stopped["id"], other["id"]])
    data = cleanup_json(run_cli, repo, "--dry-run", "--state", "succeeded", "--state", "queued")
    assert {i["attempt"]: i["action"] for i in data["items"]} == {
        done["id"]: "remove",
        live["id"]: "skip",
    }
    data = cleanup_json(run_cli, repo, "--dry-run", "--task", "alpha")
    assert [i["attempt"] for i in data["items"]] == [done["id"]]

    data = cleanup_json(run_cli, repo, "--task", "alpha")
    assert [(i["attempt"], i["action"]) for i in data["items"]] == [(done["id"], "remove")]
    assert_gone(repo, done)
    for a in (stopped, other, live):
        assert_untouched(repo, a)


def test_older_than_picks_attempts_that_ended_long_enough_ago(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    settings = resolve(os.environ)
    ten_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    with open_store(settings.database_url, settings.locks_dir, clock=lambda: ten_days_ago) as old:
        request = DispatchRequest("ancient", repo, None, False, "p")
        made = dispatch_request(request, settings, Git(), lambda: old, "test").attempt
        old.cancel(made.id, "long ago", "test")
    recent = dispatch(run_cli, repo, "recent")
    cancel(run_cli, repo, recent["id"])

    for age, expected in (("7d", [made.id]), ("2w", []), ("241h", []), ("239h", [made.id])):
        data = cleanup_json(run_cli, repo, "--dry-run", "--older-than", age)
        assert [i["attempt"] for i in data["items"]] == expected, age
    data = cleanup_json(run_cli, repo, "--older-than", "1w")
    assert [(i["attempt"], i["action"]) for i in data["items"]] == [(made.id, "remove")]
    assert not Path(made.worktree_path or "").exists()
    assert Path(recent["worktree_path"]).is_dir()


def test_an_attempt_can_be_named_by_its_payload_path(
    repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "by-payload")
    cancel(run_cli, repo, attempt["id"])
    lines = cleanup(run_cli, repo, attempt["payload_path"], attempt["id"])
    assert lines == [
        f"removed        {attempt['id']}  by-payload  (worktree, branch, payload)",
        "1 removed, 0 archived, 0 skipped, 0 already clean",
    ]


# -- dry run, JSON, progress ------------------------------------------------------------------


def test_dry_run_says_what_would_go_and_the_disk_it_frees_and_changes_nothing(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    clean = dispatch(run_cli, repo, "roomy")
    big = 300 * 1024
    work(run_orch, repo, clean["id"], f"mkdir -p build && head -c {big} /dev/urandom > build/blob")
    busy = dispatch(run_cli, repo, "busy")
    work(run_orch, repo, busy["id"], "echo x >> src/d0/f0.txt")

    data = cleanup_json(run_cli, repo, "--dry-run", "--force", clean["id"], busy["id"])
    assert data["dry_run"] is True
    items = {i["attempt"]: i for i in data["items"]}
    assert items[clean["id"]]["action"] == "remove"
    assert items[clean["id"]]["removed"] == ["worktree", "branch", "payload"]
    assert items[busy["id"]]["action"] == "archive"
    assert items[busy["id"]]["reason"] == "saves 1 uncommitted path first"
    freed = items[clean["id"]]["bytes"]
    assert big <= freed < big + 1024 * 1024
    assert data["totals"]["bytes"] == freed + items[busy["id"]]["bytes"]
    assert data["totals"]["remove"] == data["totals"]["archive"] == 1

    lines = cleanup(run_cli, repo, "--dry-run", clean["id"], busy["id"])
    assert lines[0] == (
        f"would remove   {clean['id']}  roomy  (worktree, branch, payload; {freed / 1024:.1f} KB)"
    )
    assert lines[1] == (
        f"skipped        {busy['id']}  busy: would lose 1 uncommitted path; --force saves it "
        "to the archive first"
    )
    assert (
        lines[2]
        == f"1 to clean up, {freed / 1024:.1f} KB would be freed, 1 skipped, 0 already clean"
    )
    lines = cleanup(run_cli, repo, "--dry-run", "--force", busy["id"])
    assert lines[0].startswith(f"would archive  {busy['id']}  busy  (worktree, branch, payload; ")
    assert lines[0].endswith(" KB)  saves 1 uncommitted path first")
    for a in (clean, busy):
        assert_untouched(repo, a)
        assert shown_attempt(run_cli, repo, a["id"])["workspace_status"] == "ready"
    assert archives(isolated_env) == []


def test_json_reports_each_attempt(repo: Path, run_cli: RunCli, run_orch: RunOrch) -> None:
    plain = dispatch(run_cli, repo, "plain")
    cancel(run_cli, repo, plain["id"])
    busy = dispatch(run_cli, repo, "busy")
    work(run_orch, repo, busy["id"], "echo x > new.txt")
    data = cleanup_json(run_cli, repo, "--force", plain["id"], busy["id"])
    assert data["dry_run"] is False
    items = {i["attempt"]: i for i in data["items"]}
    assert items[plain["id"]] == {
        "attempt": plain["id"],
        "task_key": "plain",
        "action": "remove",
        "reason": "nothing unsaved",
        "bytes": None,
        "archive_path": None,
        "removed": ["worktree", "branch", "payload"],
        "remote_branch": None,
        "worktree_path": plain["worktree_path"],
        "branch_name": plain["branch_name"],
    }
    assert items[busy["id"]]["action"] == "archive"
    assert (
        items[busy["id"]]["archive_path"]
        == shown_attempt(run_cli, repo, busy["id"])["archive_path"]
    )
    assert data["totals"] == {"remove": 1, "archive": 1, "skip": 0, "clean": 0, "bytes": 0}


def _run_with_terminal_stderr(args: list[str], cwd: Path) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [ORCH_BIN, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return code, out, b"".join(chunks).decode()


def test_a_progress_line_on_a_terminal_only(repo: Path, run_cli: RunCli) -> None:
    attempts = [dispatch(run_cli, repo, f"progress-{i}") for i in range(3)]
    for a in attempts:
        cancel(run_cli, repo, a["id"])
    code, out, err = _run_with_terminal_stderr(["cleanup", attempts[0]["id"]], repo)
    assert code == 0, (out, err)
    assert "cleaning up: 1 done" in err
    assert "\n" not in err.replace("\r\n", "")  # one line, rewritten in place
    assert out.splitlines()[-1] == "1 removed, 0 archived, 0 skipped, 0 already clean"
    # not a terminal (and never with --json): no progress at all
    piped = subprocess.run(
        [ORCH_BIN, "cleanup", attempts[1]["id"]], cwd=repo, capture_output=True, text=True
    )
    assert piped.returncode == 0 and piped.stderr == ""
    code, out, err = _run_with_terminal_stderr(["cleanup", "--json", attempts[2]["id"]], repo)
    assert code == 0 and err == ""
    assert json.loads(out)["totals"]["remove"] == 1
    assert payload_files(Path(os.environ["ORCH_HOME"])) == []
