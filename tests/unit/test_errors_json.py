"""Failures as ``--json`` reports them: which command lines ask for it, and each exit
code's name (issue 21, point 3)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from orch import errors
from orch.cli.common import wants_json
from orch.cli.render import error_json

SCHEMA = json.loads((Path(errors.__file__).parent / "schemas" / "error-v1.schema.json").read_text())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["show", "abcd", "--json"], True),
        (["--json", "list"], True),
        (["show", "abcd"], False),
        (["work", "--", "agent", "--json"], False),  # the agent's words, not orch's
        (["work", "--json", "--", "x"], True),
    ],
)
def test_which_command_lines_ask_for_json(args: list[str], expected: bool) -> None:
    assert wants_json(args) is expected


def test_every_error_is_named_by_the_class_that_defines_its_exit_code() -> None:
    assert errors.StoreUnavailable("down").code_name == "StoreError"
    assert errors.AttemptNotFound("x").code_name == "NotFound"
    assert errors.InvalidInput("x").code_name == "InvalidInput"
    assert errors.OrchError("x").code_name == "OrchError"


def test_every_error_class_renders_to_the_schema() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.OrchError)
    ]
    assert len(classes) > 20
    for cls in classes:
        exc = cls("something went wrong") if cls is not errors.DirtyRepository else cls("dirty")
        document = json.loads(error_json(exc.exit_code, exc.code_name, exc.message))
        jsonschema.validate(document, SCHEMA)
        assert document["error"]["code"] == cls.exit_code


def test_the_list_schema_names_every_state_and_workspace_status() -> None:
    from orch.models import State, WorkspaceStatus

    schema = json.loads(
        (Path(errors.__file__).parent / "schemas" / "list-v1.schema.json").read_text()
    )
    fields = schema["$defs"]["attempt"]["properties"]
    assert fields["state"]["enum"] == [str(s) for s in State]
    assert fields["workspace_status"]["enum"] == [str(s) for s in WorkspaceStatus]
