"""The state predicates of ``orch.models``: one truth table per predicate, every member.

A new state or workspace status fails here until someone decides, in this table and on
the enum, what each predicate says about it.
"""

from __future__ import annotations

import json
from importlib.resources import files

import click
import pytest

from orch.cli.common import STATE_NAMES
from orch.cli.worker_commands import finish
from orch.models import State, WorkspaceStatus

S, W = State, WorkspaceStatus

#                        terminal live  worker_end
STATES = {
    S.QUEUED: (False, True, False),
    S.RUNNING: (False, True, False),
    S.SUCCEEDED: (True, False, True),
    S.FAILED: (True, False, True),
    S.CANCELLED: (True, False, True),
    S.TIMED_OUT: (True, False, True),
    S.WORKER_GONE: (True, False, False),
}

#                               ready_to_run holds  occupies cleaned_up
WORKSPACES = {
    W.PROVISIONING: (False, False, True, False),
    W.READY: (True, True, True, False),
    W.FAILED: (False, False, False, False),
    W.REMOVED: (False, False, False, True),
    W.ARCHIVED: (False, False, False, True),
    W.REUSED: (True, True, True, False),
    W.SKIPPED_IN_WORKTREE: (True, False, False, False),
    W.SKIPPED_NOT_GIT: (True, False, False, False),
    W.PENDING: (False, False, False, False),
}


def test_every_state_and_workspace_status_is_in_the_tables() -> None:
    assert set(STATES) == set(State)
    assert set(WORKSPACES) == set(WorkspaceStatus)


@pytest.mark.parametrize("state", list(State))
def test_state_predicates(state: State) -> None:
    assert (state.terminal, state.live, state.worker_end) == STATES[state]


@pytest.mark.parametrize("status", list(WorkspaceStatus))
def test_workspace_predicates(status: WorkspaceStatus) -> None:
    got = (status.ready_to_run, status.holds_worktree, status.occupies_worktree, status.cleaned_up)
    assert got == WORKSPACES[status]


def test_cli_state_choices_come_from_the_enum() -> None:
    assert tuple(s.value for s in State) == STATE_NAMES
    option = next(p for p in finish.params if p.name == "state")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == ("succeeded", "failed", "cancelled", "timed_out")
    assert {State(c) for c in option.type.choices} == {s for s in State if s.worker_end}


def test_the_payload_schema_names_every_state_and_workspace_status() -> None:
    schema = json.loads(files("orch.schemas").joinpath("payload-v1.schema.json").read_text())
    props = schema["properties"]
    assert props["state"]["enum"] == [s.value for s in State]
    assert props["workspace_status"]["enum"] == [w.value for w in WorkspaceStatus]
