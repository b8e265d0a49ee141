"""orch/cli/render.py: the text and JSON orch prints for attempts (no click, no I/O)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orch.attempts.queries import AttemptDetail
from orch.cli.render import JSON_VERSION, age, attempt_detail, attempts_table, to_json
from orch.models import AttemptEvent, Message, Run, State
from tests.support.records import NOW, an_attempt


def event(kind: str, **detail: object) -> AttemptEvent:
    return AttemptEvent(1, "deadbeef", kind, "alice", dict(detail), NOW)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"),
     (86400, "1d"), (10 * 86400, "10d"), (-30, "0s")],
)  # fmt: skip
def test_age_is_one_unit_rounded_down(seconds: int, shown: str) -> None:
    assert age(NOW - dt.timedelta(seconds=seconds), NOW) == shown


def test_json_is_a_versioned_envelope_that_keeps_unicode() -> None:
    text = to_json(attempt={"task_key": "修复"})
    assert json.loads(text) == {"version": JSON_VERSION, "attempt": {"task_key": "修复"}}
    assert "修复" in text and JSON_VERSION == 1


def test_an_empty_table_says_so() -> None:
    assert attempts_table([], NOW) == "no attempts"


def test_the_table_has_aligned_columns_and_no_trailing_spaces() -> None:
    rows = [
        an_attempt(),
        an_attempt(
            id="0123abcd",
            task_key="t" * 40,
            attempt_number=12,
            state=State.WORKER_GONE,
            branch_name=None,
            created_at=NOW - dt.timedelta(days=3),
            # what it changed, as recorded when its branch last moved
            changes_tip="d" * 40,
            commits_ahead=3,
            files_changed=12,
            lines_added=140,
            lines_removed=7,
        ),
    ]
    lines = attempts_table(rows, NOW).splitlines()
    assert lines == [
        "ID        TASK                              #   STATE        WORKSPACE  "
        "BRANCH                   AHEAD  FILES  +/-      AGE",
        "deadbeef  fix-login                         1   queued       ready      "
        "orch/fix-login-deadbeef  -      -      -        2h",
        "0123abcd  " + "t" * 31 + "…  12  worker_gone  ready      -                        "
        "3      12     +140/-7  3d",
    ]


def test_the_detail_lists_every_recorded_field_and_the_prompts_first_line() -> None:
    text = attempt_detail(AttemptDetail(an_attempt(), ()))
    assert text.splitlines() == [
        "attempt           deadbeef",
        "task_key          fix-login",
        "attempt_number    1",
        "state             queued",
        "workspace_status  ready",
        "repository        /src/repo",
        "base_ref          HEAD",
        "base_commit       " + "c" * 40,
        "branch_name       orch/fix-login-deadbeef",
        "worktree_path     /wt/repo/fix-login-deadbeef",
        "worker            (any)",
        "phase             -",
        "payload           /home/inbox/deadbeef.json",
        "created_at        2026-01-01T10:00:00+00:00",
        "updated_at        2026-01-01T12:00:00+00:00",
        "changes           - (none recorded yet)",
        "prompt            Fix the login",
        "",
        "events:",
    ]


def test_a_running_attempt_shows_its_lease_and_holder() -> None:
    running = an_attempt(
        state=State.RUNNING,
        lease_token=3,
        lease_expires_at=NOW,
        heartbeat_at=NOW - dt.timedelta(seconds=5),
        lease_holder="w1",
        worker_host="box",
        worker_pid=42,
    )
    lines = attempt_detail(AttemptDetail(running, ())).splitlines()
    assert "lease_holder      w1 on box pid 42" in lines
    assert "lease             3 until 2026-01-01T12:00:00+00:00" in lines
    assert "heartbeat_at      2026-01-01T11:59:55+00:00" in lines


def test_an_ended_attempt_shows_exit_code_summary_archive_and_reason() -> None:
    ended = an_attempt(
        state=State.FAILED,
        exit_code=3,
        summary="s" * 150,
        archive_path="/home/archive/deadbeef",
        reason="the agent failed",
        sparse_paths=("src", "docs"),
        submodules=False,
        lfs_skip_smudge=True,
    )
    lines = attempt_detail(AttemptDetail(ended, ())).splitlines()
    assert "exit_code         3" in lines
    assert "summary           " + "s" * 99 + "…" in lines
    assert "archive           /home/archive/deadbeef (see manifest.json to restore)" in lines
    assert "reason            the agent failed" in lines
    assert "sparse_paths      src docs" in lines
    assert "submodules        not initialised" in lines
    assert "lfs               smudge skipped (files are pointers)" in lines
    assert not [line for line in lines if line.startswith("lease ")]


def test_runs_warnings_follow_ups_and_events_are_listed() -> None:
    run = Run("deadbeef", 1, "first\nsecond", ("agent",), None, 7, NOW, None, None)
    escape = event("escape_warning", worktree="/wt", count=2, changed=["a.txt", "b.txt"])
    waiting = Message(1, "deadbeef", "more", "alice", NOW, None, None)
    delivered = Message(2, "deadbeef", "done", "alice", NOW, NOW, 1)
    detail = AttemptDetail(
        an_attempt(prompt="  "), (event("created"), escape), (run,), (waiting, delivered)
    )
    text = attempt_detail(detail)
    assert "\nprompt            (none)\n" in text
    assert "\nruns:\n  1  2026-01-01T12:00:00+00:00  exit -  first\n" in text
    assert (
        "\nwarnings:\n  files changed outside the attempt's worktree while its agent ran: "
        "/wt (2: a.txt, b.txt)\n"
    ) in text
    assert "\nfollow-ups waiting: 1\n" in text
    assert text.endswith(
        "events:\n"
        "  2026-01-01T12:00:00+00:00  created              alice\n"
        "  2026-01-01T12:00:00+00:00  escape_warning       alice"
    )
