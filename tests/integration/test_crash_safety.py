"""Crash safety (issue 4, point 3): kill -9 at every step, then ``orch doctor --fix``.

``ORCH_CRASH_AT=<step>`` makes the installed ``orch`` kill itself with SIGKILL at that
step of dispatch, cleanup or doctor, exactly as an operator's kill -9 would. After
``orch doctor --fix`` every case must be consistent (no orphan branch or worktree, no row
pointing at nothing, a second doctor exits 0) and no work may be lost: commits are on a
branch or fetchable from an archive bundle, uncommitted edits are in the archive. A full
disk is a real one: a tiny tmpfs filled to the last byte under the inbox or the archive.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.archives import (
    archives,
    commit_is_kept,
    manifest,
    restore_commits,
    restore_worktree,
)
from tests.support.attempts import (
    AGENT_LEAVES_WORK,
    assert_consistent,
    attempts_of,
    cancel,
    dispatch,
    doctor,
    kinds,
    payload_files,
    repaired,
    shown_attempt,
    work,
)
from tests.support.cli import RunCli, RunOrch, assert_failed_cleanly
from tests.support.repos import branch_tip, fresh_clone, git, orch_branches, worktrees
from tests.support.trouble import crashed_dispatch, orphan_branch, orphan_worktree, worktree_dir

DISPATCH_STEPS = ["intent-recorded", "branch-created", "worktree-added", "payload-written"]
CLEANUP_STEPS = ["archived", "worktree-removed", "branch-deleted", "payload-removed"]


def row(run_cli: RunCli, repo: Path, task_key: str) -> dict[str, Any]:
    [found] = [r for r in attempts_of(run_cli, repo) if r["task_key"] == task_key]
    return found


def killed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)


# -- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", DISPATCH_STEPS)
def test_dispatch_killed_at_each_step_is_repaired_by_doctor(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, step: str
) -> None:
    bystander = dispatch(run_cli, repo, "bystander")
    crashed_dispatch(run_orch, repo, "victim", step)
    victim = row(run_cli, repo, "victim")
    assert (victim["state"], victim["workspace_status"]) == ("queued", "provisioning")
    # what the crash left behind, step by step
    after = DISPATCH_STEPS.index(step)
    assert (branch_tip(repo, victim["branch_name"]) is not None) == (after >= 1)
    if after >= 2:  # before, it may be there or not: a cold dispatch checks out ahead
        assert Path(victim["worktree_path"]).is_dir()
    inbox = isolated_env / "inbox" / f"{victim['id']}.json"
    assert inbox.is_file() == (after >= 3)

    code, data = doctor(run_cli, repo)
    assert code == 18
    assert kinds(data) == ["stuck-provisioning"]
    assert data["findings"][0]["detail"] == "victim: its dispatch process is gone"
    # nobody else removes it meanwhile
    line = run_cli("cleanup", "--force", victim["id"], cwd=repo).stdout.splitlines()[0]
    assert line.endswith("still provisioning (if its dispatch died, run 'orch doctor --fix')")

    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    victim = row(run_cli, repo, "victim")
    assert (victim["state"], victim["workspace_status"]) == ("failed", "failed")
    assert_consistent(run_cli, repo, isolated_env)
    assert archives(isolated_env) == []  # there was no work to save
    # the healthy attempt next to it is untouched, and the task can be dispatched again
    assert shown_attempt(run_cli, repo, bystander["id"])["workspace_status"] == "ready"
    assert Path(bystander["worktree_path"]).is_dir()
    assert Path(bystander["payload_path"]).is_file()
    again = dispatch(run_cli, repo, "victim")
    assert again["workspace_status"] == "ready"
    assert_consistent(run_cli, repo, isolated_env)


@pytest.mark.parametrize("step", ["worktree-started-ahead", "checked-out-ahead"])
def test_dispatch_killed_before_its_intent_leaves_what_doctor_removes(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, step: str
) -> None:
    """A cold dispatch starts its worktree (detached, named after the attempt) before the
    store opens, under a marker naming its pid. Killed then, it may leave a worktree no
    row owns and a dead marker, or already a provisioning row: doctor repairs either."""
    bystander = dispatch(run_cli, repo, "bystander")
    crashed_dispatch(run_orch, repo, "victim", step)
    markers = sorted((isolated_env / "checkouts").iterdir())
    victims = [r for r in attempts_of(run_cli, repo) if r["task_key"] == "victim"]
    assert markers or victims  # something says what the dispatch had begun
    if step == "worktree-started-ahead":
        assert not victims and len(markers) == 1  # killed before the store opened

    code, data = doctor(run_cli, repo)
    assert code == 18
    assert set(kinds(data)) <= {
        "dead-dispatch-marker",
        "orphan-worktree",
        "stray-directory",
        "stuck-provisioning",
    }, data
    repaired(run_cli, repo, isolated_env)
    assert list((isolated_env / "checkouts").iterdir()) == []
    assert archives(isolated_env) == []  # a fresh detached checkout holds no work
    assert [w for w in worktrees(repo) if "victim" in w["worktree"]] == []
    assert shown_attempt(run_cli, repo, bystander["id"])["workspace_status"] == "ready"
    assert dispatch(run_cli, repo, "victim")["workspace_status"] == "ready"
    assert doctor(run_cli, repo)[0] == 0


def test_doctor_racing_a_dispatch_spares_its_branch_and_worktree(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    """Doctor reads the store, then a dispatch records its intent and makes its branch,
    then doctor looks at git: the branch and the worktree (made ahead, still detached)
    are the new attempt's, which doctor finds by reading the store again."""
    from orch.attempts.dispatch import DispatchRequest
    from orch.attempts.dispatch import dispatch as dispatch_request
    from orch.attempts.doctor import Doctor
    from orch.config import resolve
    from orch.git import Git
    from orch.store import open_store

    dispatch(run_cli, repo, "first")  # so that doctor looks at this repository
    settings = resolve(os.environ)
    store = open_store(settings.database_url, settings.locks_dir)
    try:
        before_the_intent = Doctor(store, settings, Git(), "doctor", fix=True)._mine()
        findings = []

        def doctor_meanwhile(step: str) -> None:
            if step == "branch-created":
                racing = Doctor(store, settings, Git(), "doctor", fix=True)
                racing._mine = lambda: before_the_intent  # type: ignore[method-assign]
                findings.extend(racing.run())

        request = DispatchRequest("second", repo, None, strict=False, prompt="p")
        made = dispatch_request(
            request, settings, Git(), lambda: store, "me", doctor_meanwhile
        ).attempt
    finally:
        store.close()
    assert [f.kind for f in findings] == []
    worktree = Path(made.worktree_path or "")
    assert git("symbolic-ref", "HEAD", cwd=worktree).strip() == f"refs/heads/{made.branch_name}"
    assert git("rev-parse", "HEAD", cwd=worktree).strip() == made.base_commit
    assert git("status", "--porcelain", cwd=worktree) == ""
    assert_consistent(run_cli, repo, isolated_env)


def test_a_dispatch_failing_right_after_starting_its_checkout_leaves_nothing(
    repo: Path, run_cli: RunCli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of file descriptors (say) between starting the worktree and opening the store:
    the worktree made ahead and its marker go, no branch or row is made."""
    from orch.attempts.dispatch import DispatchRequest
    from orch.attempts.dispatch import dispatch as dispatch_request
    from orch.config import resolve
    from orch.git import Git

    def no_more_files(self: Git, repo: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(Git, "start_repository_facts", no_more_files)
    opened = []
    request = DispatchRequest("doomed", repo, None, strict=False, prompt="p")
    with pytest.raises(OSError):
        dispatch_request(request, resolve(os.environ), Git(), lambda: opened.append(1), "me")  # type: ignore[arg-type,return-value]
    assert opened == []
    assert len(worktrees(repo)) == 1
    assert orch_branches(repo) == []
    assert list((isolated_env / "checkouts").iterdir()) == []
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1


def test_a_dead_dispatchs_marker_stays_until_its_worktree_is_gone(
    repo: Path, run_cli: RunCli, isolated_env: Path, tmp_path: Path
) -> None:
    """The marker is what leads doctor to a repository no row names: while that
    repository cannot be read, doctor reports the marker and keeps it; once it can, the
    orphan worktree goes, then the marker. An unreadable marker (an interrupted write)
    goes once it is a minute old."""
    from orch.config import resolve
    from orch.git import Git
    from orch.models import CheckoutSpec
    from orch.workspace.ahead import CheckoutAhead

    # what a dispatch killed once its checkout was done leaves (see the test above)
    git_ = Git()
    path = isolated_env / "worktrees" / "victim-0badc0de"
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    made = CheckoutAhead.start(
        git_, git_.discover(repo), resolve(os.environ), "0badc0de", path, head, CheckoutSpec()
    )
    made.result()
    dead = subprocess.Popen(["true"])
    dead.wait()
    marker = made.marker
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "pid": dead.pid}))
    away = tmp_path / "moved-away"
    repo.rename(away)
    try:
        code, data = doctor(run_cli, tmp_path, "--fix")
        assert code == 18
        assert kinds(data) == ["dead-dispatch-marker"]
        assert not data["findings"][0]["fixed"]
        assert marker.exists()
    finally:
        away.rename(repo)
    garbage = isolated_env / "checkouts" / ".half-written.tmp"
    garbage.write_text("12")
    os.utime(garbage, (0, 0))
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert kinds(data) == ["dead-dispatch-marker", "dead-dispatch-marker", "orphan-worktree"]
    assert list((isolated_env / "checkouts").iterdir()) == []
    assert_consistent(run_cli, repo, isolated_env)


def test_post_checkout_sees_the_attempts_branch_once(repo: Path, run_cli: RunCli) -> None:
    """A worktree made ahead of its branch runs post-checkout once HEAD is on the
    branch, once, as `git worktree add -b` does."""
    log = repo.parent / "hook.log"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$1 $2 $3 $(git symbolic-ref -q HEAD)" >> {log}\n')
    hook.chmod(0o755)
    made = dispatch(run_cli, repo, "hooked")
    zeros = "0" * len(made["base_commit"])
    assert log.read_text().splitlines() == [
        f"{zeros} {made['base_commit']} 1 refs/heads/{made['branch_name']}"
    ]


def test_an_orch_home_reached_through_a_symbolic_link_is_consistent(
    repo: Path,
    run_cli: RunCli,
    isolated_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """git lists worktrees by their real path; orch records them the same way, so doctor
    does not take live attempts' worktrees for orphans (nor remove them with --fix)."""
    real = tmp_path / "real-home"
    real.mkdir()
    link = tmp_path / "linked-home"
    link.symlink_to(real)
    monkeypatch.setenv("ORCH_HOME", str(link))
    made = dispatch(run_cli, repo, "linked")
    assert Path(made["worktree_path"]).is_relative_to(real)
    code, data = doctor(run_cli, repo, "--fix")
    assert (code, data["findings"]) == (0, []), data
    assert Path(made["worktree_path"]).is_dir()


def test_a_worktree_registered_but_never_checked_out_holds_no_work(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    """What a dispatch killed between `worktree add --no-checkout` and the checkout
    leaves: its status lists every file as deleted, which is nobody's work (nothing is
    archived); one where somebody put a file is archived before it goes."""
    root = Path(dispatch(run_cli, repo, "made")["worktree_path"]).parent
    empty, used = root / "empty-0badc0de", root / "used-0badc0de"
    for path in (empty, used):
        git("worktree", "add", "-q", "--no-checkout", "--detach", str(path), cwd=repo)
    (used / "notes.txt").write_text("somebody's\n")
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert kinds(data) == ["orphan-worktree", "orphan-worktree"]
    assert not empty.exists() and not used.exists()
    [saved] = archives(isolated_env)
    assert saved.name.startswith("used-0badc0de")
    assert_consistent(run_cli, repo, isolated_env)


def test_doctor_leaves_a_worktree_made_ahead_by_a_live_dispatch(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    """Between starting its worktree and recording its intent a dispatch owns a worktree
    no row names; its marker keeps doctor away while its process lives."""
    from orch.config import resolve
    from orch.git import Git
    from orch.models import CheckoutSpec
    from orch.workspace.ahead import CheckoutAhead

    made = dispatch(run_cli, repo, "made")  # the worktree root, from a real attempt
    git_ = Git()
    settings = resolve(os.environ)
    path = Path(made["worktree_path"]).parent / "pending-0badc0de"
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    ahead = CheckoutAhead.start(
        git_, git_.discover(repo), settings, "0badc0de", path, head, CheckoutSpec()
    )
    ahead.result()  # this process is the live dispatch
    code, data = doctor(run_cli, repo, "--fix")
    assert (code, data["findings"]) == (0, [])
    assert path.is_dir()
    # the dispatch dies (a pid that was and is no more): its worktree is an orphan now
    dead = subprocess.Popen(["true"])
    dead.wait()
    marker = isolated_env / "checkouts" / "0badc0de"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "pid": dead.pid}))
    code, data = doctor(run_cli, repo)
    assert kinds(data) == ["dead-dispatch-marker", "orphan-worktree"], data
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert not path.exists() and not marker.exists()
    assert_consistent(run_cli, repo, isolated_env)


def test_work_done_in_a_crashed_dispatchs_worktree_is_archived_before_the_roll_back(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    crashed_dispatch(run_orch, repo, "victim", "payload-written")
    victim = row(run_cli, repo, "victim")
    worktree = Path(victim["worktree_path"])
    # someone (an agent reading the payload) worked there before doctor ran
    (worktree / "done.txt").write_text("committed\n")
    git("add", "done.txt", cwd=worktree)
    git("commit", "-q", "-m", "work in a half-dispatched attempt", cwd=worktree)
    tip = git("rev-parse", "HEAD", cwd=worktree).strip()
    (worktree / "src/d0/f0.txt").write_text("edited\n")
    (worktree / "loose.txt").write_text("untracked\n")

    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    [finding] = data["findings"]
    assert finding["kind"] == "stuck-provisioning" and finding["archive_path"]
    assert_consistent(run_cli, repo, isolated_env)
    saved = Path(finding["archive_path"])
    clone = fresh_clone(repo, tmp_path / "clone")
    restore_commits(saved, clone)
    restored = restore_worktree(saved, clone, tip, tmp_path / "restored")
    assert (restored / "done.txt").read_text() == "committed\n"
    assert (restored / "src/d0/f0.txt").read_text() == "edited\n"
    assert (restored / "loose.txt").read_text() == "untracked\n"


# -- cleanup --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", CLEANUP_STEPS)
def test_cleanup_force_killed_at_each_step_loses_nothing(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    tmp_path: Path,
    step: str,
) -> None:
    attempt = dispatch(run_cli, repo, "victim")
    work(run_orch, repo, attempt["id"], AGENT_LEAVES_WORK)
    tip = branch_tip(repo, attempt["branch_name"])
    assert tip is not None
    killed(run_orch("cleanup", "--force", attempt["id"], cwd=repo, env={"ORCH_CRASH_AT": step}))
    # the work was saved before anything was removed
    [saved] = archives(isolated_env)
    assert manifest(saved)["attempt_id"] == attempt["id"]

    repaired(run_cli, repo, isolated_env)
    assert commit_is_kept(repo, isolated_env, tip, tmp_path / "check")
    clone = fresh_clone(repo, tmp_path / "clone")
    if not git("branch", "--list", attempt["branch_name"], cwd=clone).strip():
        restore_commits(saved, clone)
    restored = restore_worktree(saved, clone, tip, tmp_path / "restored")
    assert (restored / "agent.txt").read_text() == "committed by the agent\n"
    assert (restored / "src/d0/f0.txt").read_text() == "file 0\nuncommitted edit\n"
    assert (restored / "notes/todo.txt").read_text() == "untracked\n"

    after = shown_attempt(run_cli, repo, attempt["id"])
    if step == "archived":
        # nothing was removed yet: the attempt is intact, and a rerun finishes the job
        assert after["workspace_status"] == "ready"
        assert Path(attempt["worktree_path"], "notes/todo.txt").is_file()
    else:
        # 'orch show' says where the work went, even though the cleanup never finished
        assert (after["workspace_status"], after["archive_path"]) == ("archived", str(saved))
    result = run_cli("cleanup", "--force", attempt["id"], cwd=repo)
    assert result.exit_code == 0, result.output
    assert shown_attempt(run_cli, repo, attempt["id"])["workspace_status"] == "archived"
    assert_consistent(run_cli, repo, isolated_env)


@pytest.mark.parametrize("step", CLEANUP_STEPS)
def test_a_parallel_cleanup_killed_midway_loses_nothing(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    tmp_path: Path,
    step: str,
) -> None:
    attempts = [dispatch(run_cli, repo, f"many-{n}") for n in range(5)]
    tips = []
    for n, attempt in enumerate(attempts):
        work(
            run_orch,
            repo,
            attempt["id"],
            f"echo {n} > mine.txt && git add mine.txt && git commit -qm 'work {n}' && "
            f"echo {n} >> src/d0/f0.txt",
        )
        tips.append(branch_tip(repo, attempt["branch_name"]))
    killed(run_orch("cleanup", "--force", "--all-terminal", cwd=repo, env={"ORCH_CRASH_AT": step}))
    repaired(run_cli, repo, isolated_env)
    for n, (attempt, tip) in enumerate(zip(attempts, tips, strict=True)):
        assert tip is not None
        assert commit_is_kept(repo, isolated_env, tip, tmp_path / f"check-{n}")
        after = shown_attempt(run_cli, repo, attempt["id"])
        if after["workspace_status"] == "ready":
            assert Path(attempt["worktree_path"], "src/d0/f0.txt").read_text() == f"file 0\n{n}\n"
        else:
            # its edits are in the archive that 'orch show' names
            assert after["workspace_status"] == "archived", after
            saved = Path(after["archive_path"])
            assert f"+{n}" in (saved / "uncommitted.patch").read_text()
    assert run_cli("cleanup", "--force", "--all-terminal", cwd=repo).exit_code == 0
    assert {shown_attempt(run_cli, repo, a["id"])["workspace_status"] for a in attempts} == {
        "archived"
    }
    assert_consistent(run_cli, repo, isolated_env)


@pytest.mark.parametrize("step", CLEANUP_STEPS[1:])
@pytest.mark.parametrize("keep_branch", [False, True], ids=["", "keep-branch"])
def test_cleanup_of_a_clean_attempt_killed_at_each_step(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    step: str,
    keep_branch: bool,
) -> None:
    attempt = dispatch(run_cli, repo, "victim")
    # commits stay on a kept branch, so only then may the agent commit without --force
    script = "echo c > c.txt && git add c.txt && git commit -qm c" if keep_branch else "true"
    work(run_orch, repo, attempt["id"], script)
    tip = branch_tip(repo, attempt["branch_name"])
    args = ("--keep-branch",) if keep_branch else ()
    proc = run_orch("cleanup", *args, attempt["id"], cwd=repo, env={"ORCH_CRASH_AT": step})
    if keep_branch and step == "branch-deleted":
        assert proc.returncode == 0, proc.stderr  # a kept branch is never deleted: no such step
    else:
        killed(proc)
    repaired(run_cli, repo, isolated_env)
    assert shown_attempt(run_cli, repo, attempt["id"])["workspace_status"] == "removed"
    if keep_branch:
        assert branch_tip(repo, attempt["branch_name"]) == tip
    assert archives(isolated_env) == []
    assert run_cli("cleanup", *args, attempt["id"], cwd=repo).exit_code == 0
    assert_consistent(run_cli, repo, isolated_env)


# -- doctor ---------------------------------------------------------------------------------

DOCTOR_STEPS = [
    "fixed-stuck-provisioning",
    "fixed-worktree-missing",
    "fixed-orphan-worktree",
    "fixed-stray-directory",
    "fixed-orphan-branch",
    "fixed-partial-payload",
    "fixed-orphan-payload",
    "fixed-missing-payload",
]


@pytest.mark.parametrize("step", DOCTOR_STEPS)
def test_doctor_fix_killed_at_each_step_finishes_on_the_next_run(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    tmp_path: Path,
    step: str,
) -> None:
    # two of every kind, so that the kill always leaves one unrepaired
    root = worktree_dir(run_cli, repo)
    crashed_dispatch(run_orch, repo, "stuck-1", "worktree-added")
    crashed_dispatch(run_orch, repo, "stuck-2", "payload-written")
    for n in (1, 2):
        missing = dispatch(run_cli, repo, f"missing-{n}")
        cancel(run_cli, repo, missing["id"])
        os.rename(missing["worktree_path"], tmp_path / f"moved-away-{n}")
    strays = [orphan_worktree(repo, root, f"stray-{n}") for n in (1, 2)]
    lost = [orphan_branch(repo, f"lost-{n}") for n in (1, 2)]
    for n in (1, 2):
        (root / f"junk-{n}").mkdir()
        (root / f"junk-{n}" / "file.txt").write_text(f"junk {n}\n")
    inbox = isolated_env / "inbox"
    for n in (1, 2):
        (inbox / f"0badc0d{n}.json").write_text("{}\n")
        (inbox / f".0badc0d{n}.json.tmp{n}.tmp").write_text("{")
        unpaid = dispatch(run_cli, repo, f"unpaid-{n}")
        Path(unpaid["payload_path"]).unlink()

    killed(run_orch("doctor", "--fix", cwd=repo, env={"ORCH_CRASH_AT": step}))
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert step.removeprefix("fixed-") in kinds(data)  # the one left when it was killed
    assert_consistent(run_cli, repo, isolated_env)

    # nothing lost: every commit, every stray worktree's edits, every stray directory
    for n, commit in enumerate([*(s["commit"] for s in strays), *lost]):
        assert commit_is_kept(repo, isolated_env, commit, tmp_path / f"check-{n}")
    saved = {manifest(a).get("worktree_path"): a for a in archives(isolated_env)}
    for n, stray in enumerate(strays):
        clone = fresh_clone(repo, tmp_path / f"clone-{n}")
        restore_commits(saved[stray["path"]], clone)
        restored = restore_worktree(
            saved[stray["path"]], clone, stray["commit"], tmp_path / f"restored-{n}"
        )
        assert (restored / "src/d0/f0.txt").read_text() == "edited in a stray worktree\n"
        assert (restored / "loose.txt").read_text() == "untracked in a stray worktree\n"
    moved = sorted(
        (a / "files" / "file.txt").read_text()
        for a in archives(isolated_env)
        if a.name.startswith("stray-junk-")
    )
    assert moved == ["junk 1\n", "junk 2\n"]
    rows = {r["task_key"]: r for r in attempts_of(run_cli, repo)}
    for n in (1, 2):
        assert rows[f"stuck-{n}"]["workspace_status"] == "failed"
        assert rows[f"missing-{n}"]["workspace_status"] == "removed"
        assert Path(rows[f"unpaid-{n}"]["payload_path"]).is_file()


# -- a full disk ----------------------------------------------------------------------------


def _mount_tmpfs(path: Path) -> list[str] | None:
    """Mount a 64 KiB tmpfs at ``path``; return the command prefix that worked, or None."""
    for prefix in ([], ["sudo", "-n"]):
        try:
            proc = subprocess.run(
                [*prefix, "mount", "-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", str(path)],
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            continue
        if proc.returncode == 0:
            return prefix
    return None


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system with no space left, holding one empty directory: ``dir``."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    prefix = _mount_tmpfs(mnt)
    if prefix is None:
        reason = "cannot mount a tmpfs here (needs root or passwordless sudo)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the full-disk tests must run on CI: {reason}")
        pytest.skip(f"{reason}: the full-disk tests only run where a tmpfs can be mounted")
    try:
        (mnt / "dir").mkdir()
        with open(mnt / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        with pytest.raises(OSError) as full:
            (mnt / "probe").write_bytes(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
        (mnt / "probe").unlink(missing_ok=True)
        yield mnt
    finally:
        subprocess.run([*prefix, "umount", "-l", str(mnt)], check=False)


def test_dispatch_on_a_full_disk_fails_cleanly_and_leaves_nothing_behind(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, full_disk: Path
) -> None:
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "inbox").symlink_to(full_disk / "dir")
    proc = run_orch("dispatch", "--prompt", "p", "big", cwd=repo)
    line = assert_failed_cleanly(proc, 7)
    failed = row(run_cli, repo, "big")
    expected = isolated_env / "inbox" / f"{failed['id']}.json"
    assert line == f"Error: cannot write the payload {expected}: the disk is full"
    # the attempt is marked failed with the reason; nothing else is left
    assert (failed["state"], failed["workspace_status"]) == ("failed", "failed")
    assert failed["reason"] == f"cannot write the payload {expected}: the disk is full"
    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]
    assert not Path(failed["worktree_path"]).exists()
    assert sorted(os.listdir(full_disk / "dir")) == []  # not even a temp file
    assert_consistent(run_cli, repo, isolated_env)
    # once there is room again, dispatch works
    (full_disk / "filler").unlink()
    again = dispatch(run_cli, repo, "big")
    assert again["workspace_status"] == "ready"
    assert [p.name for p in payload_files(isolated_env)] == [f"{again['id']}.json"]


@pytest.mark.parametrize(
    ("script", "saving"),
    [
        ("echo edit >> src/d0/f0.txt", "cannot save uncommitted changes to "),
        ("echo new > new.txt", "cannot save untracked files to "),
        ("echo c > c.txt && git add c.txt && git commit -qm c", "git bundle failed: "),
    ],
    ids=["patch", "tarball", "bundle"],
)
def test_cleanup_force_on_a_full_disk_removes_nothing_and_leaves_no_partial_archive(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    isolated_env: Path,
    full_disk: Path,
    script: str,
    saving: str,
) -> None:
    attempt = dispatch(run_cli, repo, "busy")
    work(run_orch, repo, attempt["id"], script)
    before = git("status", "--porcelain", cwd=Path(attempt["worktree_path"]))
    tip = branch_tip(repo, attempt["branch_name"])
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "archive").symlink_to(full_disk / "dir")
    result = run_cli("cleanup", "--force", attempt["id"], cwd=repo)
    assert result.exit_code == 20, result.output  # it skipped the attempt: README's code 20
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"skipped        {attempt['id']}  busy: failed: {saving}"), line
    if saving != "git bundle failed: ":
        assert line.endswith(": the disk is full"), line
    assert os.listdir(full_disk / "dir") == []
    assert git("status", "--porcelain", cwd=Path(attempt["worktree_path"])) == before
    assert branch_tip(repo, attempt["branch_name"]) == tip
    assert Path(attempt["payload_path"]).is_file()
    assert shown_attempt(run_cli, repo, attempt["id"])["workspace_status"] == "ready"
    assert_consistent(run_cli, repo, isolated_env)
