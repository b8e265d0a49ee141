"""The pure parts of review (issue 18, points 2 and 4): the ``[review]`` config, git's
numstat parsed, a check run's result, the words and numbers ``orch show`` and ``orch
compare`` print."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from orch.attempts.compare import CompareRow, TaskComparison
from orch.attempts.queries import AttemptDetail
from orch.cli.compare_render import check_words, comparison_text
from orch.cli.render import attempt_detail, seconds
from orch.errors import ConfigError
from orch.git.summary import numstat
from orch.models import ChangeSummary, Run, RunKind
from orch.repo_config import load_repo_config
from tests.support.records import NOW, an_attempt


def a_run(**changes: object) -> Run:
    base = Run(
        attempt_id="deadbeef",
        number=2,
        prompt="",
        command=("sh", "-c", "pytest -q"),
        log_path="/logs/deadbeef.log",
        pid=None,
        started_at=NOW,
        ended_at=NOW + dt.timedelta(seconds=14),
        exit_code=0,
        kind=RunKind.CHECK,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_review_section_is_read_with_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "orch.toml").write_text('[review]\ncheck = "pytest -q"\n')
    config = load_repo_config(tmp_path)
    assert (config.check, config.check_timeout, config.check_after_agent) == (
        "pytest -q",
        600.0,
        False,
    )
    (tmp_path / "orch.toml").write_text(
        '[review]\ncheck = "make test"\ncheck_timeout = 90\ncheck_after_agent = true\n'
    )
    config = load_repo_config(tmp_path)
    assert (config.check, config.check_timeout, config.check_after_agent) == (
        "make test",
        90.0,
        True,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[review]\ncheck = ['pytest']\n", "[review] check in "),
        ("[review]\ncheck = '  '\n", "must be a command string"),
        ("[review]\ncheck_timeout = 0\n", "[review] check_timeout in "),
        ("[review]\ncheck_timeout = 'long'\n", "must be a number"),
        ("[review]\ncheck_after_agent = 1\n", "[review] check_after_agent in "),
        ("[review]\nchek = 'x'\n", "unknown key(s) in [review]"),
        ("[reveiw]\ncheck = 'x'\n", "(known: workspace, ports, review, hooks, webhooks, notify)"),
    ],
)
def test_a_bad_review_section_is_one_config_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "orch.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_repo_config(tmp_path)
    assert message in str(caught.value)


def test_numstat_counts_lines_and_leaves_binary_files_uncounted() -> None:
    out = "3\t1\tsrc/a.py\0-\t-\timg.png\0" + "0\t4\tname with\ttab and\nnewline\0"
    assert numstat(out) == [(3, 1), (None, None), (0, 4)]
    assert numstat("") == []


@pytest.mark.parametrize(
    ("changes", "result"),
    [
        ({}, "passed"),
        ({"exit_code": 2}, "failed"),
        ({"exit_code": None, "timed_out": True}, "timed out"),
        ({"exit_code": None}, "interrupted"),
        ({"ended_at": None, "exit_code": None}, "unfinished"),
    ],
)
def test_a_check_runs_result(changes: dict[str, object], result: str) -> None:
    assert a_run(**changes).result == result


def test_check_words_and_durations() -> None:
    assert check_words(None) == "-"
    assert check_words(a_run()) == "passed 14s"
    assert check_words(a_run(exit_code=1)) == "failed (exit 1) 14s"
    timed_out = a_run(exit_code=None, timed_out=True, ended_at=NOW + dt.timedelta(minutes=10))
    assert check_words(timed_out) == "timed out 10m00s"
    assert [seconds(v) for v in (None, 0.25, 3.25, 42, 130, 3725)] == [
        "-",
        "250ms",
        "3.2s",
        "42s",
        "2m10s",
        "1h02m",
    ]


def test_show_says_which_count_is_recorded_and_which_is_live() -> None:
    attempt = an_attempt(
        changes_tip="e" * 40,
        commits_ahead=1,
        files_changed=2,
        lines_added=10,
        lines_removed=3,
        changes_at=NOW,
    )
    live = ChangeSummary("e" * 40, 1, 3, 12, 3)
    text = attempt_detail(AttemptDetail(attempt, (), runs=(a_run(),), live_changes=live))
    lines = text.splitlines()
    assert (
        "changes           1 commit ahead, 2 files, +10/-3 (committed, recorded at "
        "eeeeeeeeeeee 2026-01-01T12:00:00+00:00)"
    ) in lines
    assert (
        "changes_live      1 commit ahead, 3 files, +12/-3 (the worktree now: uncommitted "
        "and untracked files included)"
    ) in lines
    assert "check             passed (exit 0, 14s; run 2)" in lines
    assert "  2  2026-01-01T12:00:00+00:00  exit 0  check passed in 14s" in lines


def test_compare_lists_many_collisions_in_full_only_in_json() -> None:
    first, second = an_attempt(), an_attempt(id="0123abcd", attempt_number=2)
    paths = tuple(f"f{i:03d}" for i in range(60))
    rows = tuple(
        CompareRow(a, None, (), None, paths, "its branch is gone") for a in (first, second)
    )
    found = TaskComparison("fix-login", rows, tuple((p, ("deadbeef", "0123abcd")) for p in paths))
    text = comparison_text(found).splitlines()
    assert "files changed by more than one attempt (60):" in text
    assert text[-1] == "  … and 10 more (--json lists all)"
    assert "  deadbeef: its branch is gone" in text
    assert len(found.to_dict()["collisions"]) == 60


# -- a check run's output read back from the attempt's log (the dashboard's check view) ----


def banners(label: str, body: str, end: str | None = "exited with 0") -> str:
    """What ``processes.run_hook`` writes around a hook's output."""
    tail = f"=== orch {label} {end}\n" if end is not None else ""
    return f"=== orch {label}: pytest -q\n{body}{tail}"


def test_a_check_runs_output_is_the_part_of_the_log_between_its_banners(
    tmp_path: Path,
) -> None:
    from orch.system.processes import hook_output_tail

    log = tmp_path / "a.log"
    assert hook_output_tail(log, "check (run 1)") is None  # no log yet
    log.write_bytes(b"")
    assert hook_output_tail(log, "check (run 1)") is None  # an empty log cannot be mapped
    log.write_text(
        banners("check (run 1)", "one\ntwo\n", "exited with 1")
        + "the agent says === orch check (run 1): not a banner\n"
        + banners("check (run 12)", "twelve\n")
        + banners("check (run 2)", "")
        + banners("check (run 3)", "still running\n", end=None)
    )
    assert hook_output_tail(log, "check (run 1)") == ["one", "two"]
    assert hook_output_tail(log, "check (run 12)") == ["twelve"]
    assert hook_output_tail(log, "check (run 2)") == []
    assert hook_output_tail(log, "check (run 3)") == ["still running"]
    assert hook_output_tail(log, "check (run 4)") is None
    assert hook_output_tail(log, "check (run 1)", lines=1) == ["two"]
    # at most max_bytes of it are read, from its end
    log.write_text(banners("check (run 1)", "x" * 100 + "\nlast\n"))
    assert hook_output_tail(log, "check (run 1)", max_bytes=10) == ["xxxx", "last"]
    # the newest of two runs with one label (a log that outlived a store) is the one shown
    log.write_text(banners("check (run 1)", "old\n") + banners("check (run 1)", "new\n"))
    assert hook_output_tail(log, "check (run 1)") == ["new"]
