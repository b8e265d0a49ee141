"""The pure parts of ``orch pr`` and the CI loop: reading gh's documented JSON (check runs,
commit statuses, reviews, comments), choosing the remote, the default title."""

from __future__ import annotations

import pytest

from orch.attempts.pr_watch import checks_of, comments_of
from orch.attempts.pull_request import choose_remote
from orch.errors import PullRequestUnavailable
from orch.system.gh import run_id
from tests.support.github import check_run, comment, pr_view, review


def test_checks_of_reads_check_runs_and_commit_statuses() -> None:
    view = pr_view(
        "a" * 40,
        checks=[
            check_run("unit", "FAILURE", 1),
            check_run("lint", "SUCCESS", 2),
            check_run("slow", None, 3),
            {
                "__typename": "StatusContext",
                "context": "ci/jenkins",
                "state": "ERROR",
                "targetUrl": "https://ci.example/1",
                "startedAt": "2026-12-07T04:00:00Z",
            },
        ],
    )
    checks = {c.name: c for c in checks_of(view)}
    assert set(checks) == {"CI / unit", "CI / lint", "CI / slow", "ci/jenkins"}
    assert checks["CI / unit"].failed and not checks["CI / unit"].passed
    assert checks["CI / lint"].passed
    assert not checks["CI / slow"].failed and not checks["CI / slow"].passed  # running
    assert checks["ci/jenkins"].failed
    assert run_id(checks["CI / unit"].url) == "1" and run_id(checks["ci/jenkins"].url) is None


def test_comments_of_keeps_those_with_words_oldest_first() -> None:
    view = pr_view(
        "a" * 40,
        comments=[comment("IC_2", "bob", "later", "2026-12-07T05:00:00Z")],
        reviews=[
            review("PRR_1", "alice", "first", "COMMENTED", "2026-12-07T04:00:00Z"),
            review("PRR_2", "carol", "  ", "APPROVED", "2026-12-07T04:30:00Z"),
        ],
    )
    found = comments_of(view)
    assert [(c["id"], c["author"], c["kind"]) for c in found] == [
        ("PRR_1", "alice", "review (commented)"),
        ("IC_2", "bob", "comment"),
    ]


@pytest.mark.parametrize(
    ("remotes", "chosen"), [(["upstream", "origin"], "origin"), (["fork"], "fork")]
)
def test_choose_remote(remotes: list[str], chosen: str) -> None:
    assert choose_remote(remotes) == chosen


@pytest.mark.parametrize("remotes", [[], ["a", "b"]])
def test_choose_remote_refuses(remotes: list[str]) -> None:
    with pytest.raises(PullRequestUnavailable):
        choose_remote(remotes)
