"""The one funnel of ``orch mcp`` (orch.cli.mcp_server.answer): a tool's document is the
command's ``--json`` text, an ``OrchError`` a tool error carrying the error envelope, and
any other exception is left to the SDK (a bug, logged with its traceback)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from orch.cli.render import error_json, to_json
from orch.errors import AmbiguousAttempt, OrchError, StoreTooNew

if not os.environ.get("CI"):
    pytest.importorskip("mcp", reason="the mcp extra is not installed")

from orch.cli.mcp_server import answer


def test_a_document_is_the_commands_json_as_text_and_structured_content() -> None:
    body: dict[str, Any] = {"attempts": [{"id": "3f9c2d1a", "task_key": "ré"}]}
    result = answer(lambda: body)
    assert not result.is_error
    assert result.content[0].text == to_json(**body)
    assert result.structured_content == {"version": 1, **body}


@pytest.mark.parametrize(
    ("error", "code", "name"),
    [
        (AmbiguousAttempt("'3f9c' matches 2 attempts"), 8, "NotFound"),
        (StoreTooNew(), 6, "StoreError"),
    ],
)
def test_an_orch_error_is_a_tool_error_with_the_envelope(
    error: OrchError, code: int, name: str
) -> None:
    def fail() -> dict[str, Any]:
        raise error

    result = answer(fail)
    assert result.is_error
    assert result.content[0].text == error_json(code, name, error.message)
    assert result.structured_content == json.loads(error_json(code, name, error.message))


def test_a_bug_is_not_turned_into_an_orch_error() -> None:
    def bug() -> dict[str, Any]:
        raise KeyError("oops")

    with pytest.raises(KeyError):
        answer(bug)
