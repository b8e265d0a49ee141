"""``orch doctor [--fix]`` (issue 4, point 2): report, then repair, losing nothing.

Each kind of trouble is made for real: a dispatch killed with SIGKILL, a worktree deleted by
hand, a worktree or branch under orch's names that no row owns, stray and partial files in
the inbox and under the worktree root. Doctor exits 0 when all agree and 18 while problems
remain; whatever holds work is archived first, and the tests restore it from the archive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orch.config import resolve
from orch.models import NewAttempt, WorkerIdentity
from orch.store import open_store, upgrade_store
from tests.support.archives import (
    archives,
    commit_is_kept,
    manifest,
    restore_commits,
    restore_worktree,
)
from tests.support.attempts import (
    assert_consistent,
    attempts_of,
    cancel,
    dispatch,
    doctor,
    kinds,
    payload_files,
    shown_attempt,
    work,
)
from tests.support.cli import RunCli, RunOrch
from tests.support.processes import Start
from tests.support.repos import fresh_clone, git, orch_branches, worktrees
from tests.support.store import new_pg_database
from tests.support.trouble import crashed_dispatch, orphan_branch, orphan_worktree, worktree_dir


def test_a_consistent_state_exits_0(repo: Path, run_cli: RunCli, run_orch: RunOrch) -> None:
    result = run_cli("doctor", cwd=repo)
    assert (result.exit_code, result.stdout) == (
        0,
        "all consistent: store, worktrees, branches and payloads agree\n",
    )
    live = dispatch(run_cli, repo, "live")
    done = dispatch(run_cli, repo, "done")
    work(run_orch, repo, done["id"], "echo x > new.txt")
    gone = dispatch(run_cli, repo, "gone")
    cancel(run_cli, repo, gone["id"])
    assert run_cli("cleanup", gone["id"], cwd=repo).exit_code == 0
    result = run_cli("doctor", "--fix", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == "all consistent: store, worktrees, branches and payloads agree\n"
    assert shown_attempt(run_cli, repo, live["id"])["workspace_status"] == "ready"
    assert Path(done["worktree_path"], "new.txt").is_file()


def test_every_problem_is_reported_then_repaired(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path, tmp_path: Path
) -> None:
    root = worktree_dir(run_cli, repo)
    crashed_dispatch(run_orch, repo, "stuck", "worktree-added")
    missing = dispatch(run_cli, repo, "missing")
    cancel(run_cli, repo, missing["id"])
    shutil.rmtree(missing["worktree_path"])
    stray_wt = orphan_worktree(repo, root, "stray-wt")
    lost = orphan_branch(repo, "lost")
    (root / "junk").mkdir()
    (root / "junk" / "file.txt").write_text("keep me\n")
    (root / "empty").mkdir()
    inbox = isolated_env / "inbox"
    (inbox / "0badc0de.json").write_text("{}\n")
    (inbox / ".0badc0de.json.abc123.tmp").write_text("{")
    unpaid = dispatch(run_cli, repo, "no-payload")
    Path(unpaid["payload_path"]).unlink()

    code, before = doctor(run_cli, repo)
    assert code == 18
    assert kinds(before) == [
        "missing-payload",
        "orphan-branch",
        "orphan-payload",
        "orphan-worktree",
        "partial-payload",
        "prunable-worktrees",
        "stray-directory",
        "stray-directory",
        "stuck-provisioning",
        "worktree-missing",
    ]
    assert not any(f["fixed"] for f in before["findings"])
    text = run_cli("doctor", cwd=repo)
    assert text.exit_code == 18
    lines = text.stdout.splitlines()
    assert lines[-1] == "10 problem(s) left; run 'orch doctor --fix'"
    assert f"found  orphan-branch       orch/lost: at {lost[:12]}, no attempt owns it" in lines
    assert sum(1 for ln in lines if ln.startswith("       --fix would: ")) == 10
    # reporting changed nothing
    assert Path(stray_wt["path"]).is_dir()
    assert (inbox / "0badc0de.json").is_file()

    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert all(f["fixed"] and f["error"] is None for f in data["findings"]), data
    # git's stale entry may already be pruned by the repairs before it: fine either way
    assert set(kinds(data)) | {"prunable-worktrees"} == set(kinds(before))
    assert_consistent(run_cli, repo, isolated_env)
    rows = {r["task_key"]: r for r in attempts_of(run_cli, repo)}
    assert (rows["stuck"]["state"], rows["stuck"]["workspace_status"]) == ("failed", "failed")
    assert rows["stuck"]["reason"] == "interrupted while provisioning (repaired by orch doctor)"
    assert rows["missing"]["workspace_status"] == "removed"
    assert Path(rows["no-payload"]["payload_path"]).is_file()
    # nothing lost: the stray worktree's and the branch's commits, the stray files
    for commit in (stray_wt["commit"], lost):
        assert commit_is_kept(repo, isolated_env, commit, tmp_path / f"check-{commit[:8]}")
    moved = [a for a in archives(isolated_env) if a.name.startswith("stray-junk-")]
    assert [(m / "files" / "file.txt").read_text() for m in moved] == ["keep me\n"]
    assert manifest(moved[0])["moved_from"] == str(root / "junk")
    assert not (root / "empty").exists()


def test_an_orphan_worktree_is_archived_then_removed_and_restores(
    repo: Path, run_cli: RunCli, isolated_env: Path, tmp_path: Path
) -> None:
    root = worktree_dir(run_cli, repo)
    stray = orphan_worktree(repo, root, "orphan")
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    [finding] = [f for f in data["findings"] if f["kind"] == "orphan-worktree"]
    assert finding["subject"] == stray["path"]
    assert finding["fixed"] and finding["archive_path"]
    saved = Path(finding["archive_path"])
    assert not Path(stray["path"]).exists()
    assert "refs/heads/orch/orphan" not in orch_branches(repo)
    assert manifest(saved)["saved_by"] == "orch doctor"
    assert sorted(manifest(saved)["files"]) == [
        "commits.bundle",
        "uncommitted.patch",
        "untracked.tar.gz",
    ]
    clone = fresh_clone(repo, tmp_path / "clone")
    assert restore_commits(saved, clone) == ["refs/heads/orch/orphan"]
    restored = restore_worktree(saved, clone, "orch/orphan", tmp_path / "restored")
    assert (restored / "stray.txt").read_text() == "committed in the stray worktree orphan\n"
    assert (restored / "src/d0/f0.txt").read_text() == "edited in a stray worktree\n"
    assert (restored / "loose.txt").read_text() == "untracked in a stray worktree\n"
    assert_consistent(run_cli, repo, isolated_env)


def test_an_orphan_worktree_on_a_branch_orch_did_not_name_keeps_that_branch(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    root = worktree_dir(run_cli, repo)
    stray = orphan_worktree(repo, root, "mine", branch="feature/mine")
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert not Path(stray["path"]).exists()
    assert git("rev-parse", "feature/mine", cwd=repo).strip() == stray["commit"]
    [saved] = archives(isolated_env)
    # the commit is kept by its branch: only the uncommitted work needed saving
    assert sorted(manifest(saved)["files"]) == ["uncommitted.patch", "untracked.tar.gz"]
    assert_consistent(run_cli, repo, isolated_env)


def test_orphan_branches_are_bundled_when_they_hold_the_only_copy(
    repo: Path, run_cli: RunCli, isolated_env: Path, tmp_path: Path
) -> None:
    dispatch(run_cli, repo, "owner")  # doctor looks at repositories the store knows
    unique = orphan_branch(repo, "unique")
    orphan_branch(repo, "redundant", unique=False)
    theirs = orphan_branch(repo, "theirs")
    git("branch", "-q", "-m", "orch/theirs", "feature/not-orch", cwd=repo)
    git("branch", "orchestra", theirs, cwd=repo)  # shares the prefix, not the namespace
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    found = {f["subject"]: f for f in data["findings"]}
    assert sorted(found) == ["orch/redundant", "orch/unique"]
    assert found["orch/redundant"]["archive_path"] is None
    saved = Path(found["orch/unique"]["archive_path"])
    assert sorted(manifest(saved)["files"]) == ["commits.bundle"]
    assert orch_branches(repo) == [f"refs/heads/orch/owner-{dispatch_ids(run_cli, repo)[0]}"]
    for other in ("feature/not-orch", "orchestra"):
        assert git("rev-parse", other, cwd=repo).strip() == theirs
    clone = fresh_clone(repo, tmp_path / "clone")
    assert restore_commits(saved, clone) == ["refs/heads/orch/unique"]
    assert git("rev-parse", "orch/unique", cwd=clone).strip() == unique
    assert_consistent(run_cli, repo, isolated_env)


def dispatch_ids(run_cli: RunCli, repo: Path) -> list[str]:
    return [r["id"] for r in attempts_of(run_cli, repo)]


def test_stray_directories_are_moved_into_the_archive_never_deleted(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    root = worktree_dir(run_cli, repo)
    (root / "half-made" / "deep").mkdir(parents=True)
    (root / "half-made" / "deep" / "work.txt").write_text("precious\n")
    (root / "nothing").mkdir()
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    repairs = {Path(f["subject"]).name: f for f in data["findings"]}
    assert repairs["half-made"]["repair"] == "move it into the archive (nothing is deleted)"
    assert repairs["nothing"]["repair"] == "remove it (empty)"
    moved = Path(repairs["half-made"]["archive_path"])
    assert (moved / "files" / "deep" / "work.txt").read_text() == "precious\n"
    assert not (root / "half-made").exists() and not (root / "nothing").exists()
    assert_consistent(run_cli, repo, isolated_env)


def test_payloads_without_rows_go_and_rows_without_payloads_get_theirs_back(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    queued = dispatch(run_cli, repo, "queued")
    before = Path(queued["payload_path"]).read_text()
    Path(queued["payload_path"]).unlink()
    ended = dispatch(run_cli, repo, "ended")
    cancel(run_cli, repo, ended["id"])
    inbox = isolated_env / "inbox"
    (inbox / "feedf00d.json").write_text('{"schema_version": 1}\n')
    (inbox / ".feedf00d.json.x.tmp").write_text("")
    (inbox / "notes.txt").write_text("not orch's\n")
    code, data = doctor(run_cli, repo)
    assert code == 18
    assert kinds(data) == ["missing-payload", "orphan-payload", "partial-payload"]
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert sorted(p.name for p in payload_files(isolated_env)) == sorted(
        [f"{queued['id']}.json", f"{ended['id']}.json", "notes.txt"]
    )
    rewritten = Path(queued["payload_path"]).read_text()
    strip = ("written_at",)
    assert {k: v for k, v in json.loads(rewritten).items() if k not in strip} == {
        k: v for k, v in json.loads(before).items() if k not in strip
    }
    assert run_cli("show", queued["payload_path"], cwd=repo).exit_code == 0


def test_a_missing_worktree_of_a_queued_attempt_is_made_again_from_its_branch(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    queued = dispatch(run_cli, repo, "queued")
    path = Path(queued["worktree_path"])
    ports_file = (path / ".orch" / "ports.json").read_text()
    (path / "done.txt").write_text("committed before the loss\n")
    git("add", "done.txt", cwd=path)
    git("commit", "-qm", "work on the branch", cwd=path)
    tip = git("rev-parse", "HEAD", cwd=path).strip()
    shutil.rmtree(path)

    code, data = doctor(run_cli, repo)
    assert code == 18
    [finding] = [f for f in data["findings"] if f["kind"] == "worktree-missing"]
    assert finding["detail"] == f"queued is queued but {path} is gone"
    assert finding["repair"] == "make the worktree again from its branch (or its base commit)"
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert git("rev-parse", "HEAD", cwd=path).strip() == tip
    assert git("symbolic-ref", "--short", "HEAD", cwd=path).strip() == queued["branch_name"]
    assert (path / "done.txt").read_text() == "committed before the loss\n"
    assert (path / ".orch" / "ports.json").read_text() == ports_file
    assert git("status", "--porcelain", cwd=path) == ""
    shown = shown_attempt(run_cli, repo, queued["id"])
    assert (shown["state"], shown["workspace_status"]) == ("queued", "ready")
    events = json.loads(run_cli("show", queued["id"], "--json", cwd=repo).stdout)["events"]
    assert events[-1]["kind"] == "worktree_recreated"
    assert events[-1]["detail"]["source"] == f"branch {queued['branch_name']} at {tip[:12]}"
    assert_consistent(run_cli, repo, isolated_env)
    # the attempt still runs
    work(run_orch, repo, queued["id"], 'test -f done.txt && test "$(pwd -P)" = "$ORCH_WORKTREE"')
    assert shown_attempt(run_cli, repo, queued["id"])["state"] == "succeeded"


def test_a_queued_attempt_whose_worktree_and_branch_are_gone_starts_again_at_its_base(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    queued = dispatch(run_cli, repo, "bare")
    path = Path(queued["worktree_path"])
    shutil.rmtree(path)
    git("worktree", "prune", cwd=repo)
    git("branch", "-D", queued["branch_name"], cwd=repo)
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert git("rev-parse", "HEAD", cwd=path).strip() == queued["base_commit"]
    assert git("symbolic-ref", "--short", "HEAD", cwd=path).strip() == queued["branch_name"]
    assert shown_attempt(run_cli, repo, queued["id"])["workspace_status"] == "ready"
    assert_consistent(run_cli, repo, isolated_env)


def test_a_missing_worktree_of_a_running_attempt_is_reported_not_repaired(
    repo: Path, run_cli: RunCli, isolated_env: Path, start: Start
) -> None:
    live = dispatch(run_cli, repo, "live")
    holder = start(["sleep", "300"])
    claimed = run_cli("claim", live["id"], "--worker", "w", "--pid", str(holder.pid), cwd=repo)
    assert claimed.exit_code == 0, claimed.output
    shutil.rmtree(live["worktree_path"])
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 18
    [finding] = [f for f in data["findings"] if f["kind"] == "worktree-missing"]
    assert finding["detail"] == f"live is running but {live['worktree_path']} is gone"
    assert finding["repair"] == "none while it is live (cancel it)"
    assert not finding["fixed"]
    text = run_cli("doctor", cwd=repo).stdout
    assert text.splitlines()[-1] == "1 problem(s) left; run 'orch doctor --fix'"
    assert shown_attempt(run_cli, repo, live["id"])["workspace_status"] == "ready"
    cancel(run_cli, repo, live["id"])
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    assert shown_attempt(run_cli, repo, live["id"])["workspace_status"] == "removed"
    assert_consistent(run_cli, repo, isolated_env)


def test_nothing_with_unsaved_work_is_removed_when_the_archive_cannot_be_written(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    root = worktree_dir(run_cli, repo)
    stray = orphan_worktree(repo, root, "unsaveable")
    (root / "junk").mkdir()
    (root / "junk" / "f").write_text("x")
    (isolated_env / "archive").write_text("a file where the archive directory should be\n")
    result = run_cli("doctor", "--fix", cwd=repo)
    assert result.exit_code == 18, result.output
    lines = result.stdout.splitlines()
    assert (
        f"FAILED orphan-worktree     {stray['path']}: a worktree under orch's root that no "
        "attempt owns"
    ) in lines
    assert any(
        ln.startswith("       could not remove it (saving unsaved work to the archive first): ")
        and "cannot create the archive" in ln
        for ln in lines
    ), lines
    assert Path(stray["path"], "loose.txt").is_file()
    assert git("rev-parse", "orch/unsaveable", cwd=repo).strip() == stray["commit"]
    assert (root / "junk" / "f").is_file()
    assert lines[-1] == "2 problem(s) left"


def test_a_deleted_repository_does_not_keep_doctor_failing_forever(
    make_repo: Callable[..., Path], run_cli: RunCli, isolated_env: Path
) -> None:
    keep = make_repo("keep")
    doomed = make_repo("doomed")
    a = dispatch(run_cli, doomed, "doomed")
    b = dispatch(run_cli, doomed, "cleaned")
    cancel(run_cli, doomed, b["id"])
    assert run_cli("cleanup", b["id"], cwd=doomed).exit_code == 0
    cancel(run_cli, doomed, a["id"])
    shutil.rmtree(doomed)
    shutil.rmtree(a["worktree_path"])
    code, data = doctor(run_cli, keep)
    assert code == 18
    code, data = doctor(run_cli, keep, "--fix")
    assert code == 0, data
    code, data = doctor(run_cli, keep)
    assert (code, data["findings"]) == (0, [])
    assert shown_attempt(run_cli, keep, a["id"])["workspace_status"] == "removed"


def test_the_text_report_says_what_was_done_and_where_work_was_saved(
    repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    dispatch(run_cli, repo, "x")
    sha = orphan_branch(repo, "told")
    result = run_cli("doctor", "--fix", cwd=repo)
    assert result.exit_code == 0, result.output
    [saved] = archives(isolated_env)
    assert result.stdout.splitlines() == [
        f"fixed  orphan-branch       orch/told: at {sha[:12]}, no attempt owns it",
        "       did: delete it (bundling commits no other ref keeps into the archive first); "
        f"saved to {saved}",
    ]


def test_a_json_report(repo: Path, run_cli: RunCli, isolated_env: Path) -> None:
    dispatch(run_cli, repo, "x")
    sha = orphan_branch(repo, "json")
    code, data = doctor(run_cli, repo)
    assert code == 18
    assert data == {
        "version": 1,
        "fix": False,
        "findings": [
            {
                "kind": "orphan-branch",
                "subject": "orch/json",
                "detail": f"at {sha[:12]}, no attempt owns it",
                "repair": "delete it (bundling commits no other ref keeps into the archive first)",
                "fixed": False,
                "archive_path": None,
                "error": None,
            }
        ],
        "problems_left": 1,
    }


# -- attempts stuck in provisioning, at the store level, on SQLite and PostgreSQL ----------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def own_store_url(
    request: pytest.FixtureRequest, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A store of this test's own (PostgreSQL: a fresh database, since doctor reads it all)."""
    if request.param == "sqlite":
        # the default store of the isolated ORCH_HOME
        url = f"sqlite:///{isolated_env / 'orch.db'}"
        monkeypatch.setenv("ORCH_DATABASE_URL", url)
        yield url
        return
    with new_pg_database("orch_doctor") as url:
        upgrade_store(url, isolated_env / "locks")
        monkeypatch.setenv("ORCH_DATABASE_URL", url)
        yield url


def provisioning_row(
    repo: Path, task_key: str, dispatcher: WorkerIdentity, minutes_ago: float = 0
) -> str:
    settings = resolve(os.environ)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    attempt_id = secrets.token_hex(4)
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    new = NewAttempt(
        id=attempt_id,
        task_key=task_key,
        repository=str(repo.resolve()),
        base_ref="HEAD",
        base_commit=base,
        branch_name=f"orch/{task_key}-{attempt_id}",
        worktree_path=str(settings.worktree_root / "r" / f"{task_key}-{attempt_id}"),
        worker=None,
        prompt="",
        dispatcher=dispatcher,
    )
    with open_store(settings.database_url, settings.locks_dir, clock=lambda: when) as store:
        store.create_attempt(new, "test")
    return attempt_id


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_provisioning_is_stuck_only_once_its_dispatch_is_gone_or_too_old(
    repo: Path, run_cli: RunCli, own_store_url: str
) -> None:
    here = socket.gethostname()
    alive = provisioning_row(repo, "alive", WorkerIdentity("dispatch", here, os.getpid()))
    dead = provisioning_row(repo, "dead", WorkerIdentity("dispatch", here, dead_pid()))
    remote_new = provisioning_row(repo, "remote-new", WorkerIdentity("dispatch", "elsewhere", 1))
    remote_old = provisioning_row(
        repo, "remote-old", WorkerIdentity("dispatch", "elsewhere", 1), minutes_ago=11
    )
    code, data = doctor(run_cli, repo)
    assert code == 18
    found = {f["subject"]: f["detail"] for f in data["findings"]}
    assert found == {
        dead: "dead: its dispatch process is gone",
        remote_old: "remote-old: provisioning for over 10 minutes",
    }
    code, data = doctor(run_cli, repo, "--fix")
    assert code == 0, data
    states = {r["id"]: (r["state"], r["workspace_status"]) for r in attempts_of(run_cli, repo)}
    assert states == {
        alive: ("queued", "provisioning"),
        remote_new: ("queued", "provisioning"),
        dead: ("failed", "failed"),
        remote_old: ("failed", "failed"),
    }
    assert worktrees(repo)[1:] == []
    # a live dispatch's row is left alone, and so is a cleanup that names it
    line = run_cli("cleanup", "--force", alive, cwd=repo).stdout.splitlines()[0]
    assert line.endswith(
        "alive: still provisioning (if its dispatch died, run 'orch doctor --fix')"
    )
    assert payload_files(Path(os.environ["ORCH_HOME"])) == []
