"""``orch pr`` and the CI / review loop (issue 20 points 4 and 5).

Real repositories, real workers (the installed ``orch``), the real store and a real remote:
``orch pr`` pushes to a bare repository made with ``git init --bare``. GitHub itself cannot
be reached from tests, so ``gh`` is replaced by a stand-in on PATH
(``tests/support/github.py``) that answers with gh's documented JSON and output; the
stand-in is the gh boundary only, everything on orch's side of it runs as in use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.attempts.pr_watch import LOG_TAIL_LINES, Watcher
from orch.git import Git
from orch.models import Attempt
from orch.serve.snapshot import build_snapshot
from orch.store import Store, open_store
from tests.support.attempts import show, shown_attempt, work
from tests.support.cli import RunCli, RunOrch, error_line, json_out
from tests.support.github import PR_URL, FakeGitHub, check_run, comment, pr_view, review
from tests.support.landing import attempt_with_commits
from tests.support.repos import branch_tip, git
from tests.support.store import StepClock, settings

PUSHED = "printf 'fix\\n' >> new.txt && git commit -qam 'push {n}'"


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub(tmp_path)
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    return fake


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=repo)
    return bare


def kinds(run_cli: RunCli, repo: Path, attempt_id: str) -> list[str]:
    return [e["kind"] for e in show(run_cli, attempt_id, cwd=repo)["events"]]


def opened(run_cli: RunCli, run_orch: RunOrch, repo: Path) -> dict[str, Any]:
    """A succeeded attempt with commits, and its pull request opened with ``orch pr``."""
    attempt = attempt_with_commits(run_cli, run_orch, repo, f"t-{uuid.uuid4().hex[:8]}")
    result = run_cli("pr", attempt["id"], cwd=repo)
    assert result.exit_code == 0, result.output
    return shown_attempt(run_cli, repo, attempt["id"])


# -- orch pr ----------------------------------------------------------------------------------


def test_pr_pushes_the_branch_opens_the_pull_request_and_records_it(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    looking: Looking,
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, "t-pr")
    result = run_cli("pr", attempt["id"], "--draft", "--base", "main", "--json", cwd=repo)
    assert result.exit_code == 0, result.output
    recorded = json_out(result)["attempt"]
    assert (recorded["pr_url"], recorded["pr_number"], recorded["pr_state"]) == (PR_URL, 42, "open")
    # the branch is on the remote, at the attempt's tip
    branch = attempt["branch_name"]
    assert git("rev-parse", f"refs/heads/{branch}", cwd=remote).strip() == branch_tip(repo, branch)
    [create] = [c for c in github.calls() if c[:2] == ["pr", "create"]]
    assert create[create.index("--head") + 1] == branch
    assert create[create.index("--base") + 1] == "main" and "--draft" in create
    assert create[create.index("--title") + 1] == "t-pr: do t-pr"
    assert create[create.index("--body-file") + 1] == "-"
    body = github.created_body()
    for words in ("t-pr", attempt["id"], attempt["base_commit"], "> do t-pr", "> in detail"):
        assert words in body, words
    assert "Check: no check has run" in body
    # orch show, orch list --json and the events say so
    shown = shown_attempt(run_cli, repo, attempt["id"])
    assert (shown["pr_url"], shown["pr_number"], shown["pr_state"]) == (PR_URL, 42, "open")
    listed = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    assert next(a for a in listed if a["id"] == attempt["id"])["pr_number"] == 42
    assert f"#42 {PR_URL} (open)" in run_cli("show", attempt["id"], cwd=repo).stdout
    assert "pr_opened" in kinds(run_cli, repo, attempt["id"])
    # a second one is refused, and gh is not asked again
    again = run_cli("pr", attempt["id"], cwd=repo)
    assert again.exit_code == 12 and "already has pull request" in error_line(again.stderr)
    assert len([c for c in github.calls() if c[:2] == ["pr", "create"]]) == 1


def test_pr_body_file_and_title(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    tmp_path: Path,
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, "t-body")
    (tmp_path / "body.md").write_text("my own words\n")
    args = ("--title", "A title", "--body-file", str(tmp_path / "body.md"))
    assert run_cli("pr", attempt["id"], *args, cwd=repo).exit_code == 0
    [create] = [c for c in github.calls() if c[:2] == ["pr", "create"]]
    assert create[create.index("--title") + 1] == "A title"
    assert github.created_body() == "my own words\n"
    assert "--base" not in create and "--draft" not in create


def _without_gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with git on it and no gh at all."""
    bin_dir = tmp_path / "no-gh-bin"
    bin_dir.mkdir()
    for program in ("git", "sh"):
        found = shutil.which(program)
        assert found is not None
        (bin_dir / program).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("missing", ["gh", "login", "remote"])
def test_pr_refused_in_one_line_with_nothing_recorded(
    missing: str,
    repo: Path,
    tmp_path: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, f"t-no-{missing}")
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
    if missing != "remote":
        git("remote", "add", "origin", str(bare), cwd=repo)
    if missing == "login":
        github.log_out()
    if missing == "gh":
        _without_gh(tmp_path, monkeypatch)
    result = run_cli("pr", attempt["id"], cwd=repo)
    assert result.exit_code == 23, result.output
    line = error_line(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1
    expected = {
        "gh": "gh (the GitHub CLI) is not installed",
        "login": "gh is not logged in: run 'gh auth login'",
        "remote": "the repository has no remote",
    }[missing]
    assert expected in line
    monkeypatch.setenv("PATH", github.env["PATH"])
    shown = shown_attempt(run_cli, repo, attempt["id"])
    assert shown["pr_url"] is None and shown["pr_number"] is None
    assert "pr_opened" not in kinds(run_cli, repo, attempt["id"])
    assert not [c for c in github.calls() if c[:2] == ["pr", "create"]]
    assert git("for-each-ref", cwd=bare).strip() == ""  # nothing pushed


# -- the loop ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Looking:
    """The loop's pull request watcher over the test's store, on a clock the test moves."""

    store: Store
    clock: StepClock
    repo: Path
    max_ci_followups: int = 2
    backoff: float = 100.0

    def watcher(self) -> Watcher:
        """A fresh watcher: what a restarted loop would make."""
        s = settings(
            max_ci_followups=self.max_ci_followups,
            ci_followup_backoff=self.backoff,
            pr_poll_interval=0.0,
        )
        return Watcher(self.store, s, Git(), "loop")

    def followups(self, attempt: dict[str, Any]) -> list[str]:
        """What the attempt's worktree was sent: the continuations' prompts and messages."""
        same = [
            a
            for a in self.store.attempts_using_worktree(attempt["worktree_path"])
            if a.task_key == attempt["task_key"]
        ]
        same.sort(key=lambda a: a.attempt_number)
        sent = [a.prompt for a in same[1:]]
        return sent + [m.body for a in same for m in self.store.messages(a.id)]

    def newest(self, attempt: dict[str, Any]) -> Attempt:
        same = self.store.attempts_using_worktree(attempt["worktree_path"])
        return max(same, key=lambda a: a.attempt_number)

    def kinds(self, attempt_id: str) -> list[str]:
        return [e.kind for e in self.store.events(attempt_id)]


@pytest.fixture
def looking(repo: Path, isolated_env: Path, store_url: str) -> Iterator[Looking]:
    """On each backend. The PostgreSQL database is shared by the tests of one xdist
    worker: the pull requests this test opened are closed afterwards, so that no other
    test's loop looks at them."""
    clock = StepClock(dt.datetime.now(dt.UTC))
    with open_store(store_url, isolated_env / "locks", clock=clock) as store:
        yield Looking(store, clock, repo)
        root = str(repo.resolve())
        for attempt, _ in store.open_pull_requests():
            if attempt.repository == root:
                store.end_pull_request(attempt.id, "closed", "teardown")


def test_failing_check_sends_its_log_tail_then_again_after_a_push_with_back_off_up_to_max(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    looking: Looking,
) -> None:
    attempt = opened(run_cli, run_orch, repo)
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    log = "".join(f"test\tstep\tline {i}\n" for i in range(100)) + "FAILED test_x\n"
    github.answer_run_log(7001, log)
    github.answer_view(
        pr_view(
            head, checks=[check_run("unit", "FAILURE", 7001), check_run("lint", "SUCCESS", 7002)]
        )
    )
    said = looking.watcher().cycle()
    assert said == [f"{attempt['id']}: ci_failed"]
    [first] = looking.followups(attempt)
    assert "CI / unit" in first and "lint" not in first and head[:12] in first
    assert "FAILED test_x" in first and f"line {100 - LOG_TAIL_LINES + 1}" in first
    assert f"line {100 - LOG_TAIL_LINES - 1}\n" not in first  # the tail only
    assert ["run", "view", "7001", "--log-failed"] in github.calls()
    # the same failure of the same commit is not sent again, by this loop or a restarted one
    assert looking.watcher().cycle() == []
    assert len(looking.followups(attempt)) == 1

    # the agent pushes; the check still fails: again, but only after the back-off
    work(run_orch, repo, looking.newest(attempt).id, PUSHED.format(n=1))
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    github.answer_view(pr_view(head, checks=[check_run("unit", "FAILURE", 7003)]))
    github.answer_run_log(7003, "still broken\n")
    assert looking.watcher().cycle() == []
    looking.clock.tick(100)
    assert looking.watcher().cycle() == [f"{attempt['id']}: ci_failed"]
    second = looking.followups(attempt)[-1]
    assert "still broken" in second and head[:12] in second

    # a third failure after the next push: max_ci_followups (2) were sent: attention, once
    work(run_orch, repo, looking.newest(attempt).id, PUSHED.format(n=2))
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    github.answer_view(pr_view(head, checks=[check_run("unit", "FAILURE", 7004)]))
    looking.clock.tick(10_000)
    assert looking.watcher().cycle() == [f"{attempt['id']}: ci_needs_attention"]
    assert looking.watcher().cycle() == []
    assert len(looking.followups(attempt)) == 2
    assert looking.kinds(attempt["id"]).count("ci_failed") == 2
    now = looking.clock()
    attention = build_snapshot(looking.store, settings(), now)["attention"]
    [stuck] = [a for a in attention if a["attempt"] == attempt["id"]]
    assert "checks still fail" in " ".join(stuck["why"])


def test_review_comments_are_forwarded_once_as_one_follow_up(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    looking: Looking,
) -> None:
    attempt = opened(run_cli, run_orch, repo)
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    said = [
        review("PRR_1", "alice", "Please add a test.", "CHANGES_REQUESTED", "2026-12-07T04:10:00Z"),
        review("PRR_2", "bob", "", "APPROVED", "2026-12-07T04:11:00Z"),  # no words: nothing
        comment("IC_1", "carol", "Rename f0 to something telling.", "2026-12-07T04:12:00Z"),
    ]
    github.answer_view(pr_view(head, comments=said[2:], reviews=said[:2]))
    assert looking.watcher().cycle() == [f"{attempt['id']}: review_comments"]
    [sent] = looking.followups(attempt)
    assert sent.index("Please add a test.") < sent.index("Rename f0")
    assert "alice" in sent and "carol" in sent and "bob" not in sent
    assert looking.watcher().cycle() == []  # a restarted loop does not repeat them
    later = comment("IC_2", "alice", "And update the README.", "2026-12-07T05:00:00Z")
    github.answer_view(pr_view(head, comments=[said[2], later], reviews=said[:2]))
    assert looking.watcher().cycle() == [f"{attempt['id']}: review_comments"]
    newest = looking.followups(attempt)[-1]
    assert "update the README" in newest and "Please add a test." not in newest
    assert len(looking.followups(attempt)) == 2


def test_merged_pull_request_records_the_attempt_landed_through_orch_loop(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    looking: Looking,
) -> None:
    attempt = opened(run_cli, run_orch, repo)
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    merged = "f" * 40
    github.answer_view(pr_view(head, state="MERGED", merge_commit=merged))
    proc = run_orch("loop", "--once", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    shown = shown_attempt(run_cli, repo, attempt["id"])
    assert (shown["landed_commit"], shown["landed_tip"]) == (merged, head)
    assert (shown["landed_into"], shown["landed_strategy"]) == ("main", "pull-request")
    assert shown["pr_state"] == "merged"
    assert kinds(run_cli, repo, attempt["id"])[-2:] == ["pr_merged", "landed"]
    # no longer watched: gh is not asked again
    views = len([c for c in github.calls() if c[:2] == ["pr", "view"]])
    assert run_orch("loop", "--once", cwd=repo).returncode == 0
    assert len([c for c in github.calls() if c[:2] == ["pr", "view"]]) == views


def test_closed_pull_request_is_an_event_and_nothing_lands(
    repo: Path,
    remote: Path,
    github: FakeGitHub,
    run_cli: RunCli,
    run_orch: RunOrch,
    looking: Looking,
) -> None:
    attempt = opened(run_cli, run_orch, repo)
    head = branch_tip(repo, attempt["branch_name"])
    assert head is not None
    github.answer_view(pr_view(head, state="CLOSED"))
    assert looking.watcher().cycle() == [f"{attempt['id']}: pull request #42 closed"]
    shown = shown_attempt(run_cli, repo, attempt["id"])
    assert shown["pr_state"] == "closed" and shown["landed_commit"] is None
    assert kinds(run_cli, repo, attempt["id"])[-1] == "pr_closed"
    root = str(repo.resolve())
    assert [a for a, _ in looking.store.open_pull_requests() if a.repository == root] == []
