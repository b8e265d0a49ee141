"""``orch land`` (issue 19): the strategies against git itself, the target, the checked-out
target following, conflicts found without touching a worktree, --dry-run, --resolve, the
queue, the records, and cleanup after a land.

Real repositories, real workers (the installed ``orch``), a real store on SQLite and
PostgreSQL where the records matter. Every expected result is what git makes of the same
land in a scratch clone.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.support.attempts import dispatch, show, shown_attempt, work
from tests.support.cli import RunCli, RunOrch, error_line, json_out
from tests.support.landing import (
    AGENT_COMMITS,
    attempt_with_commits,
    commits_after,
    git_made,
    land,
    main_commits,
    outcomes,
    rebased_by_git,
    rev,
    worktree_clean,
)
from tests.support.repos import branch_tip, git

ELSEWHERE_COMMIT = "printf 'e\\n' > elsewhere.txt && git add elsewhere.txt && git commit -qm e"


def task() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def kinds(run_cli: RunCli, repo: Path, attempt_id: str) -> list[str]:
    return [e["kind"] for e in show(run_cli, attempt_id, cwd=repo)["events"]]


# -- strategies, each against git itself ------------------------------------------------------


def test_squash_is_one_commit_with_the_tree_git_merge_squash_makes(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str, tmp_path: Path
) -> None:
    key = task()
    attempt = attempt_with_commits(run_cli, run_orch, repo, key)
    old = main_commits(repo, {"main-only.txt": "on main\n"}, "main moves on")
    expected = git_made(repo, attempt["branch_name"], tmp_path / "clone", "merge", "--squash")
    tip = branch_tip(repo, attempt["branch_name"])

    [done] = outcomes(land(run_cli, repo, attempt["id"], "--json"))
    assert (done["result"], done["target"], done["strategy"]) == ("landed", "main", "squash")
    assert done["check"] == "none configured" and done["error"] is None
    new = rev(repo, "main")
    assert done["commit"] == new and done["old"] == old
    assert rev(repo, "main^@") == old  # one commit, on top of what main had
    assert rev(repo, "main^{tree}") == rev(expected, "HEAD^{tree}")
    assert git("log", "-1", "--format=%B", "main", cwd=repo) == (
        f"{key}: do {key}\n\nOrch-Task: {key}\nOrch-Attempt: {attempt['id']}\n\n"
    )
    # the main worktree, on main, followed like git merge --ff-only
    assert rev(repo, "HEAD") == new and worktree_clean(repo)
    assert (repo / "new.txt").read_text() == "a\nb\nc\n"
    # recorded, and the attempt's worktree and branch are gone (nothing unsaved)
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert (after["landed_commit"], after["landed_tip"]) == (new, tip)
    assert (after["landed_into"], after["landed_strategy"]) == ("main", "squash")
    assert after["landed_by"] and after["landed_at"] and after["landing_commit"] is None
    assert after["workspace_status"] == "removed"
    assert branch_tip(repo, attempt["branch_name"]) is None
    assert not Path(attempt["worktree_path"]).exists()
    assert {"landing", "landed"} <= set(kinds(run_cli, repo, attempt["id"]))
    listed = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    assert next(a for a in listed if a["id"] == attempt["id"])["landed_commit"] == new
    row = next(
        ln for ln in run_cli("list", cwd=repo).stdout.splitlines() if ln.startswith(attempt["id"])
    )
    assert "succeeded (landed)" in row
    assert "landed" in run_cli("show", attempt["id"], cwd=repo).stdout
    compared = json_out(run_cli("compare", key, "--json", cwd=repo))["attempts"]
    assert compared[0]["landed"]["commit"] == new


def test_rebase_replays_the_commits_as_git_rebase_does(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path
) -> None:
    author = (
        "GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_AUTHOR_DATE=2001-02-03T04:05:06"
    )
    script = (
        "printf 'one\\n' > src/d0/f0.txt && git commit -qam 'first' && "
        f"printf 'x\\n' > x.txt && git add x.txt && env {author} git commit -qm 'second\n\nbody'"
    )
    attempt = attempt_with_commits(run_cli, run_orch, repo, task(), script)
    old = main_commits(repo, {"main-only.txt": "on main\n"}, "main moves on")
    expected = rebased_by_git(repo, attempt["branch_name"], tmp_path / "clone")

    [done] = outcomes(land(run_cli, repo, attempt["id"], "--strategy", "rebase", "--json"))
    assert done["result"] == "landed"
    assert commits_after(repo, old, "main") == expected
    assert "Ada" in expected[1][0]


def test_rebase_drops_a_commit_the_target_already_has_as_git_rebase_does(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    first = git("rev-list", "--reverse", f"main..{attempt['branch_name']}", cwd=repo).split()[0]
    git("cherry-pick", first, cwd=repo)  # someone took the first commit by hand
    old = rev(repo, "main")
    expected = rebased_by_git(repo, attempt["branch_name"], tmp_path / "clone")
    assert len(expected) == 1

    [done] = outcomes(land(run_cli, repo, attempt["id"], "--strategy", "rebase", "--json"))
    assert done["result"] == "landed"
    assert commits_after(repo, old, "main") == expected


def test_merge_is_a_merge_commit_with_the_tree_git_merge_makes(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = main_commits(repo, {"main-only.txt": "on main\n"}, "main moves on")
    tip = branch_tip(repo, attempt["branch_name"])
    expected = git_made(
        repo, attempt["branch_name"], tmp_path / "clone", "merge", "--no-ff", "--no-edit", "-q"
    )

    [done] = outcomes(land(run_cli, repo, attempt["id"], "--strategy", "merge", "--json"))
    assert done["result"] == "landed"
    assert git("rev-parse", "main^1", "main^2", cwd=repo).split() == [old, tip]
    assert rev(repo, "main^{tree}") == rev(expected, "HEAD^{tree}")


def test_ff_only_moves_the_target_to_the_tip_or_refuses(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    first = attempt_with_commits(run_cli, run_orch, repo, task())
    tip = branch_tip(repo, first["branch_name"])
    [done] = outcomes(land(run_cli, repo, first["id"], "--strategy", "ff-only", "--json"))
    assert done["result"] == "landed" and rev(repo, "main") == tip
    assert rev(repo, "HEAD") == tip and worktree_clean(repo)

    second = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo b > b.txt && git add b.txt && git commit -qm b"
    )
    old = main_commits(repo, {"main-only.txt": "on main\n"}, "main moves on")
    result = land(run_cli, repo, second["id"], "--strategy", "ff-only")
    assert result.exit_code == 22
    assert "cannot fast-forward" in error_line(result.stderr)
    assert rev(repo, "main") == old
    # a refusal is a land result too: an event (a dry run records nothing)
    land(run_cli, repo, second["id"], "--strategy", "ff-only", "--dry-run")
    [failed] = [
        e for e in show(run_cli, second["id"], cwd=repo)["events"] if e["kind"] == "land_failed"
    ]
    assert failed["detail"]["code"] == 22 and failed["detail"]["strategy"] == "ff-only"
    assert "cannot fast-forward" in failed["detail"]["reason"]


# -- conflicts --------------------------------------------------------------------------------

CONFLICTS = {
    # kind: (what main has at the base, what the agent does, what main does meanwhile)
    "content": ({}, "echo agent > src/d0/f0.txt && git commit -qam a", {"src/d0/f0.txt": "main\n"}),
    "binary": (
        {"blob.bin": b"\0base"},
        "printf '\\0agent' > blob.bin && git commit -qam a",
        {"blob.bin": b"\0main"},
    ),
    "rename/delete": (
        {},
        "git mv src/d0/f0.txt moved.txt && git commit -qm a",
        {"src/d0/f0.txt": None},
    ),
    "add/add": (
        {},
        "echo agent > both.txt && git add both.txt && git commit -qm a",
        {"both.txt": "main\n"},
    ),
}


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
def test_a_conflict_is_one_line_an_event_and_nothing_changed(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, kind: str
) -> None:
    base, script, theirs = CONFLICTS[kind]
    if base:
        main_commits(repo, base, "the base")
    attempt = attempt_with_commits(run_cli, run_orch, repo, task(), script)
    old = main_commits(repo, theirs, "main conflicts")
    tip = branch_tip(repo, attempt["branch_name"])
    status = git("status", "--porcelain", cwd=repo)

    result = land(run_cli, repo, attempt["id"], "--keep")
    assert result.exit_code == 21, result.output
    line = error_line(result.stderr)
    assert f"attempt {attempt['id']} conflicts with main ({old[:12]})" in line
    assert f"({kind}" in line or f", {kind}" in line, line
    # nothing changed: the target, the main worktree, the attempt's branch and worktree
    assert rev(repo, "main") == old and git("status", "--porcelain", cwd=repo) == status
    assert branch_tip(repo, attempt["branch_name"]) == tip
    assert worktree_clean(Path(attempt["worktree_path"]))
    after = shown_attempt(run_cli, repo, attempt["id"])
    assert after["landed_commit"] is None and after["landing_commit"] is None
    assert "land_conflict" in kinds(run_cli, repo, attempt["id"])


def test_many_conflicting_paths_are_a_few_then_a_count(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    script = "for i in 1 2 3 4 5; do echo agent > c$i.txt; done && git add . && git commit -qm a"
    attempt = attempt_with_commits(run_cli, run_orch, repo, task(), script)
    main_commits(repo, {f"c{i}.txt": "main\n" for i in range(1, 6)}, "main conflicts")
    result = land(run_cli, repo, attempt["id"])
    assert result.exit_code == 21
    assert error_line(result.stderr).endswith(
        "in 5 paths: c1.txt (add/add), c2.txt (add/add), c3.txt (add/add) and 2 more"
    )


def test_dry_run_says_whether_it_would_conflict_and_changes_nothing(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    clean = attempt_with_commits(run_cli, run_orch, repo, task())
    clashing = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo agent > src/d1/f1.txt && git commit -qam a"
    )
    old = main_commits(repo, {"src/d1/f1.txt": "main\n"}, "main moves on")
    events = {a["id"]: kinds(run_cli, repo, a["id"]) for a in (clean, clashing)}

    result = land(run_cli, repo, clean["id"], "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"{clean['id']} would land into main cleanly (squash, onto {old[:12]}):"
    )
    assert "src/d0/f0.txt" in result.stdout and "new.txt" in result.stdout
    assert "2 files changed" in result.stdout
    result = land(run_cli, repo, clashing["id"], "--dry-run")
    assert result.exit_code == 21
    assert "conflicts with main" in error_line(result.stderr)
    # several at once (side by side): each onto main as it is, said in the order named;
    # uncommitted work is looked at only with --strict, where it decides
    Path(clean["worktree_path"], "left.txt").write_text("uncommitted\n")
    result = land(run_cli, repo, clashing["id"], clean["id"], clean["id"], "--dry-run")
    assert result.exit_code == 14
    lines = result.stdout.splitlines()
    said = [ln for ln in lines if "would land" in ln]
    assert said == [f"{clean['id']} would land into main cleanly (squash, onto {old[:12]}):"] * 2
    assert f"{clashing['id']}: would conflict: " in result.stderr
    assert "uncommitted" not in result.stderr
    result = land(run_cli, repo, clean["id"], "--dry-run", "--strict")
    assert result.exit_code == 22 and "1 uncommitted path" in error_line(result.stderr)
    # nothing changed, not even an event
    assert rev(repo, "main") == old
    for a in (clean, clashing):
        assert kinds(run_cli, repo, a["id"]) == events[a["id"]]
        assert Path(a["worktree_path"]).is_dir()


def test_resolve_hands_the_conflict_back_to_the_attempts_agent(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo agent > src/d0/f0.txt && git commit -qam a"
    )
    old = main_commits(repo, {"src/d0/f0.txt": "main\n"}, "main conflicts")
    [done] = outcomes(land(run_cli, repo, attempt["id"], "--resolve", "--json"))
    assert done["result"] == "failed" and done["error"]["code"] == 21
    assert done["followup"].startswith("continuation attempt ")
    continuation = done["followup"].split()[2]
    prompt = shown_attempt(run_cli, repo, continuation)["prompt"]
    assert old[:12] in prompt and "src/d0/f0.txt" in prompt and "git rebase main" in prompt
    # its agent rebases and commits in the same worktree; the next land takes the result
    work(
        run_orch,
        repo,
        continuation,
        "git rebase main >/dev/null 2>&1; echo resolved > src/d0/f0.txt && git add -A && "
        "GIT_EDITOR=true git rebase --continue >/dev/null 2>&1 || git commit -qam resolved",
    )
    [done] = outcomes(land(run_cli, repo, continuation, "--json"))
    assert done["result"] == "landed", done
    assert (repo / "src/d0/f0.txt").read_text() == "resolved\n"


# -- the queue --------------------------------------------------------------------------------


def test_land_a_b_c_lands_in_order_and_skips_the_one_that_conflicts(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    a = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo a > a.txt && git add a.txt && git commit -qm a"
    )
    b = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo b > a.txt && git add a.txt && git commit -qm b"
    )
    c = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo c > c.txt && git add c.txt && git commit -qm c"
    )
    old = rev(repo, "main")
    result = land(run_cli, repo, a["id"], b["id"], c["id"], "--json")
    assert result.exit_code == 14
    assert error_line(result.stderr) == f"Error: 1 of 3 attempts did not land: {b['id']}"
    done = outcomes(result)
    assert [o["result"] for o in done] == ["landed", "failed", "landed"]
    assert done[1]["error"]["code"] == 21
    # each onto the result of the one before
    assert done[0]["old"] == old and done[2]["old"] == done[0]["commit"]
    assert rev(repo, "main") == done[2]["commit"]
    assert (repo / "a.txt").read_text() == "a\n" and (repo / "c.txt").read_text() == "c\n"


# -- the checked-out target -------------------------------------------------------------------


def test_a_checkout_of_the_target_with_changes_to_landed_files_is_refused(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    (repo / "src/d0/f0.txt").write_text("mine, uncommitted\n")
    result = land(run_cli, repo, attempt["id"])
    assert result.exit_code == 22
    assert error_line(result.stderr) == (
        f"Error: main is checked out at {repo.resolve()} with uncommitted changes to files "
        "the land changes (src/d0/f0.txt): commit or stash them first"
    )
    assert rev(repo, "main") == old
    assert (repo / "src/d0/f0.txt").read_text() == "mine, uncommitted\n"
    # changes to other files stay where they are, and the land goes ahead
    git("checkout", "-q", "--", "src/d0/f0.txt", cwd=repo)
    (repo / "src/d1/f1.txt").write_text("mine, elsewhere\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert land(run_cli, repo, attempt["id"]).exit_code == 0
    assert (repo / "new.txt").is_file() and (
        repo / "src/d1/f1.txt"
    ).read_text() == "mine, elsewhere\n"
    assert git("status", "--porcelain", cwd=repo) == " M src/d1/f1.txt\n?? notes.txt\n"


# every kind of change a checkout follows: binary, deleted, renamed, executable, a symlink,
# a name with a space and unicode, CRLF; "large" makes the patch longer than the checkout
# follows by (4 MB: a random 5 MB file), so that it follows by git read-tree instead
FOLLOWED = (
    "printf '\\000\\001changed' > blob.dat && git rm -q gone.txt && chmod +x tool.sh && "
    "ln -s tool.sh link && git mv old-name.txt new-name.txt && printf 'ü\\r\\n' > 'sp ace ü.txt' "
    "&& {big}git add -A && git commit -qm 'every kind of change'"
)


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_checkout_of_the_target_follows_every_kind_of_change_exactly(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    size: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files: dict[str, str | bytes | None] = {
        "blob.dat": bytes(range(256)) * 8,
        "gone.txt": "x\n",
        "tool.sh": "echo hi\n",
        "old-name.txt": "a\nb\nc\n",
    }
    main_commits(repo, files, "files the attempt will change")
    big = "head -c 5000000 /dev/urandom > big.bin && " if size == "large" else ""
    attempt = attempt_with_commits(run_cli, run_orch, repo, task(), FOLLOWED.format(big=big))
    (repo / "mine.txt").write_text("untracked, kept\n")
    trace = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    [done] = outcomes(land(run_cli, repo, attempt["id"], "--json"))
    assert done["result"] == "landed" and done["warnings"] == [], done
    # the checkout is at the new commit, index and files, with nothing else changed
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == "?? mine.txt\n"
    assert git("diff", "--name-only", "HEAD", cwd=repo) == ""
    assert (repo / "blob.dat").read_bytes() == b"\x00\x01changed"
    assert not (repo / "gone.txt").exists() and not (repo / "old-name.txt").exists()
    assert (repo / "new-name.txt").read_text() == "a\nb\nc\n"
    assert os.access(repo / "tool.sh", os.X_OK) and os.readlink(repo / "link") == "tool.sh"
    assert (repo / "sp ace ü.txt").read_bytes() == "ü\r\n".encode()
    if size == "large":
        assert (repo / "big.bin").stat().st_size == 5_000_000
    # a small change follows by its patch, over the landed paths only; a large one by
    # git's two-tree read-tree, which reads the whole tree
    commands = trace.read_text()
    assert ("git apply --index" in commands) == (size == "small")
    assert ("git read-tree -m -u" in commands) == (size == "large")


def test_a_checkout_with_a_file_where_the_land_adds_one_is_refused(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    (repo / "new.txt").write_text("mine, untracked\n")  # the attempt adds new.txt
    result = land(run_cli, repo, attempt["id"])
    assert result.exit_code == 22
    assert error_line(result.stderr) == (
        f"Error: main is checked out at {repo.resolve()} with uncommitted changes to files "
        "the land changes (new.txt): commit or stash them first"
    )
    assert rev(repo, "main") == old and (repo / "new.txt").read_text() == "mine, untracked\n"
    # staged, not in the files: refused too
    (repo / "new.txt").unlink()
    (repo / "src/d0/f0.txt").write_text("staged\n")
    git("add", "src/d0/f0.txt", cwd=repo)
    result = land(run_cli, repo, attempt["id"])
    assert result.exit_code == 22 and "(src/d0/f0.txt)" in error_line(result.stderr)
    assert rev(repo, "main") == old
    assert git("diff", "--cached", "--name-only", cwd=repo) == "src/d0/f0.txt\n"


def test_a_target_checked_out_nowhere_moves_and_no_worktree_is_touched(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    git("branch", "release", cwd=repo)
    attempt = attempt_with_commits(
        run_cli,
        run_orch,
        repo,
        task(),
        "echo r > r.txt && git add r.txt && git commit -qm r",
        "--base-ref",
        "release",
    )
    main = rev(repo, "main")
    [done] = outcomes(land(run_cli, repo, attempt["id"], "--json"))
    assert done["target"] == "release"  # the branch its base_ref named
    assert git("show", "release:r.txt", cwd=repo) == "r\n"
    assert rev(repo, "main") == main and not (repo / "r.txt").exists()


# -- records and cleanup ----------------------------------------------------------------------


def test_an_attempt_landed_already_is_a_quiet_success(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    assert land(run_cli, repo, attempt["id"], "--keep").exit_code == 0
    new = rev(repo, "main")
    result = land(run_cli, repo, attempt["id"], "--keep")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{attempt['id']} already landed into main as {new[:12]}",
        f"{attempt['id']}: kept (--keep)",
    ]
    assert rev(repo, "main") == new


def test_cleanup_counts_squashed_work_saved_and_later_commits_unsaved(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    landed = attempt_with_commits(run_cli, run_orch, repo, task())
    assert land(run_cli, repo, landed["id"], "--keep").exit_code == 0
    later = attempt_with_commits(
        run_cli, run_orch, repo, task(), "echo l > l.txt && git add l.txt && git commit -qm l"
    )
    assert land(run_cli, repo, later["id"], "--keep").exit_code == 0
    worktree = Path(later["worktree_path"])
    (worktree / "after.txt").write_text("after the land\n")
    git("add", "after.txt", cwd=worktree)
    git("commit", "-q", "-m", "after the land", cwd=worktree)

    result = run_cli("cleanup", landed["id"], later["id"], cwd=repo)
    assert result.exit_code == 20, result.output
    assert shown_attempt(run_cli, repo, landed["id"])["workspace_status"] == "removed"
    assert "would lose 1 commit on no other branch or remote" in result.stdout
    assert worktree.is_dir() and branch_tip(repo, later["branch_name"]) is not None


# -- the check on the merged result -----------------------------------------------------------


def test_the_check_runs_on_the_merged_result_and_decides(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, isolated_env: Path
) -> None:
    # passes only on the merged result: main's file and the attempt's together
    main_commits(
        repo,
        {
            "orch.toml": "[review]\n"
            'check = "test -f new.txt && test -f main-only.txt && echo $ORCH_PORT_WEB"\n'
        },
        "the check",
    )
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    main_commits(repo, {"main-only.txt": "on main\n"}, "main moves on")
    [done] = outcomes(land(run_cli, repo, attempt["id"], "--keep", "--json"))
    assert (done["result"], done["check"]) == ("landed", "passed")
    detail = show(run_cli, attempt["id"], cwd=repo)
    assert detail["check"]["result"] == "passed"
    log = Path(detail["check"]["log_path"]).read_text()
    assert "exited with 0" in log
    assert not (isolated_env / "landing" / attempt["id"]).exists()

    failing = attempt_with_commits(
        run_cli, run_orch, repo, task(), "rm new.txt main-only.txt && git commit -qam gone"
    )
    old = rev(repo, "main")
    result = land(run_cli, repo, failing["id"])
    assert result.exit_code == 14
    assert "was not moved" in error_line(result.stderr)
    assert rev(repo, "main") == old
    after = shown_attempt(run_cli, repo, failing["id"])
    assert after["landing_commit"] is None and after["landed_commit"] is None
    [failed] = [
        e for e in show(run_cli, failing["id"], cwd=repo)["events"] if e["kind"] == "land_failed"
    ]
    assert failed["detail"]["code"] == 14 and "was not moved" in failed["detail"]["reason"]
    assert [w for w in git("worktree", "list", cwd=repo).splitlines() if "landing" in w] == []
    # --no-check lands it and the event says so
    [done] = outcomes(land(run_cli, repo, failing["id"], "--no-check", "--json"))
    assert (done["result"], done["check"]) == ("landed", "skipped (--no-check)")
    landed_event = next(
        e for e in show(run_cli, failing["id"], cwd=repo)["events"] if e["kind"] == "landed"
    )
    assert landed_event["detail"]["check"] == "skipped (--no-check)"


# -- bad input: one line, a documented exit code, nothing changed -----------------------------


def test_bad_input_is_one_line_and_changes_nothing(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, make_repo: object, tmp_path: Path
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    git("tag", "v1", cwd=repo)
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", "-b", "main", cwd=other)
    empty = dispatch(run_cli, repo, task())
    cases = [
        (("deadbeef",), 8, "no attempt 'deadbeef'"),
        ((attempt["id"], "--into", "v1"), 22, "'v1' is not a local branch"),
        ((attempt["id"], "--into", "nowhere"), 22, "no branch 'nowhere'"),
        (
            (attempt["id"], "--repo", str(other)),
            22,
            "its target must be a branch of its own repository",
        ),
        ((empty["id"],), 22, "is queued: its agent may still commit"),
        ((empty["id"], "--force"), 22, "has no commits since its base_commit"),
        # a dry run changes nothing: it looks at a live attempt without --force
        ((empty["id"], "--dry-run"), 22, "has no commits since its base_commit"),
        ((attempt["id"], "--message", " \n"), 2, "--message must not be empty"),
    ]
    for args, code, words in cases:
        result = land(run_cli, repo, *args)
        assert result.exit_code == code, (args, result.output)
        assert words in error_line(result.stderr), (args, result.stderr)
        assert result.stdout == ""
    assert rev(repo, "main") == old
    # uncommitted work: named in a warning, refused with --strict
    (Path(attempt["worktree_path"]) / "loose.txt").write_text("not committed\n")
    result = land(run_cli, repo, attempt["id"], "--strict")
    assert result.exit_code == 22 and "1 uncommitted path" in error_line(result.stderr)
    assert rev(repo, "main") == old
    # a deleted branch
    gone = attempt_with_commits(run_cli, run_orch, repo, task())
    git("worktree", "remove", "--force", gone["worktree_path"], cwd=repo)
    git("branch", "-D", gone["branch_name"], cwd=repo)
    result = land(run_cli, repo, gone["id"])
    assert result.exit_code == 8 and "is gone: nothing to land" in error_line(result.stderr)
    assert rev(repo, "main") == old
    # the branch its base_ref named, deleted: refused, not landed into main instead
    git("branch", "side", cwd=repo)
    sided = attempt_with_commits(
        run_cli, run_orch, repo, task(), AGENT_COMMITS, "--base-ref", "side"
    )
    git("branch", "-D", "side", cwd=repo)
    for args in ((), ("--dry-run",)):
        result = land(run_cli, repo, sided["id"], *args)
        assert result.exit_code == 22, result.output
        assert error_line(result.stderr) == (
            f"Error: the base_ref 'side' of attempt {sided['id']} names no branch of "
            f"{repo.resolve()} any more (deleted?): name the target with --into"
        )
    assert rev(repo, "main") == old
    # a base_ref that is a tag lands into the branch checked out in the main worktree
    tagged = attempt_with_commits(
        run_cli, run_orch, repo, task(), ELSEWHERE_COMMIT, "--base-ref", "v1"
    )
    [done] = outcomes(land(run_cli, repo, tagged["id"], "--json", "--no-check"))
    assert (done["result"], done["target"]) == ("landed", "main"), done


def test_a_running_attempt_lands_its_committed_work_only_with_force(
    repo: Path, run_cli: RunCli
) -> None:
    made = dispatch(run_cli, repo, task())
    worktree = Path(made["worktree_path"])
    (worktree / "done.txt").write_text("committed so far\n")
    git("add", "done.txt", cwd=worktree)
    git("commit", "-q", "-m", "so far", cwd=worktree)
    (worktree / "wip.txt").write_text("not yet\n")
    assert land(run_cli, repo, made["id"]).exit_code == 22
    result = land(run_cli, repo, made["id"], "--force")
    assert result.exit_code == 0, result.output
    assert "1 uncommitted path" in result.stderr and "wip.txt" in result.stderr
    assert (repo / "done.txt").is_file() and not (repo / "wip.txt").exists()
    assert f"kept: attempt {made['id']} is still queued" in result.stdout
    assert worktree.is_dir()


def test_a_git_older_than_2_38_is_refused_in_one_line(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ubuntu 22.04's git 2.34 has no merge-tree --write-tree: refused, nothing changed."""
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    real = shutil.which("git")
    fake = tmp_path / "old-git"
    fake.mkdir()
    (fake / "git").write_text(
        f'#!/bin/sh\nif [ "$1" = version ]; then echo "git version 2.34.1"; exit 0; fi\n'
        f'exec {real} "$@"\n'
    )
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    result = land(run_cli, repo, attempt["id"])
    assert result.exit_code == 7
    assert error_line(result.stderr) == (
        "Error: orch land needs git 2.38 or newer (git merge-tree --write-tree); this is git 2.34"
    )
    assert rev(repo, "main") == old and Path(attempt["worktree_path"]).is_dir()
