"""The claim rule (``orch.claim_rule``): what a worker may claim, and why not, without a store."""

from __future__ import annotations

import dataclasses

import pytest

from orch import claim_rule
from orch.claim_rule import Claimant, why_not
from orch.models import State, WorkspaceStatus


@dataclasses.dataclass(frozen=True)
class Row:
    """The columns the rule reads, as a row of the attempts table holds them (strings)."""

    id: str = "abcd1234"
    state: str = "queued"
    worker: str | None = None
    workspace_status: str = "ready"
    workspace_host: str | None = None
    target_host: str | None = None
    repository_url: str | None = None


ME = Claimant(worker="w1", host="alpha", repository_urls=("git@example:r.git",))


def test_the_row_above_has_every_column_the_rule_reads() -> None:
    assert set(claim_rule.COLUMNS) == {f.name for f in dataclasses.fields(Row)}


@pytest.mark.parametrize(
    "status", [s for s in WorkspaceStatus if s.ready_to_run], ids=lambda s: str(s)
)
def test_a_queued_attempt_whose_workspace_is_ready_here_is_claimable(
    status: WorkspaceStatus,
) -> None:
    assert why_not(Row(workspace_status=str(status)), ME) is None
    assert why_not(Row(workspace_status=str(status), workspace_host="alpha"), ME) is None
    assert why_not(Row(workspace_status=str(status), worker="w1"), ME) is None


def test_a_pending_attempt_for_this_host_and_a_clone_it_has_is_claimable() -> None:
    for target in ("any", "alpha"):
        row = Row(
            workspace_status="pending", target_host=target, repository_url=ME.repository_urls[0]
        )
        assert why_not(row, ME) is None


@pytest.mark.parametrize("state", [s for s in State if s != State.QUEUED], ids=lambda s: str(s))
def test_only_a_queued_attempt_is_claimable(state: State) -> None:
    assert why_not(Row(state=str(state)), ME) == f"attempt abcd1234 is {state}, not queued"


def test_an_attempt_assigned_to_another_worker_says_how_to_reassign_it() -> None:
    assert why_not(Row(worker="w2"), ME) == (
        "attempt abcd1234 is assigned to worker 'w2', not 'w1': "
        "use 'orch reassign abcd1234 --worker w1'"
    )


@pytest.mark.parametrize(
    "status",
    [s for s in WorkspaceStatus if not s.ready_to_run and s != WorkspaceStatus.PENDING],
    ids=lambda s: str(s),
)
def test_an_attempt_whose_workspace_is_not_ready_is_not_claimable(status: WorkspaceStatus) -> None:
    assert why_not(Row(workspace_status=str(status)), ME) == (
        f"attempt abcd1234 has workspace_status {status}: not ready to claim"
    )


def test_a_worktree_on_another_host_is_not_claimable_here() -> None:
    assert why_not(Row(workspace_host="beta"), ME) == (
        "attempt abcd1234's worktree is on host beta, not alpha"
    )


def test_a_pending_attempt_for_another_host_or_repository_is_not_claimable() -> None:
    url = ME.repository_urls[0]
    assert why_not(Row(workspace_status="pending", target_host="beta", repository_url=url), ME) == (
        "attempt abcd1234 is for host beta"
    )
    other = Row(workspace_status="pending", target_host="any", repository_url="git@example:x.git")
    assert why_not(other, ME) == (
        "attempt abcd1234 needs a clone of git@example:x.git (orch work --repo PATH)"
    )
    assert why_not(dataclasses.replace(other, repository_url=url), Claimant("w1", "alpha")) == (
        f"attempt abcd1234 needs a clone of {url} (orch work --repo PATH)"
    )


def test_the_reasons_come_in_the_order_a_user_acts_on_them() -> None:
    # not queued beats everything; then the worker; then the workspace
    row = Row(state="running", worker="w2", workspace_status="removed", workspace_host="beta")
    assert why_not(row, ME) == "attempt abcd1234 is running, not queued"
    reason = why_not(dataclasses.replace(row, state="queued"), ME) or ""
    assert reason.startswith("attempt abcd1234 is assigned to worker 'w2'")


def test_every_way_of_the_rule_tells_itself_apart_by_the_workspace_status() -> None:
    firsts = [way.terms[0] for way in claim_rule.WAYS]
    assert all(t.column == "workspace_status" for t in firsts)
    allowed = [set(t.allowed) for t in firsts]
    assert not set.intersection(*allowed), "two ways accept the same workspace status"
