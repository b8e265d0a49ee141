"""What the loop reads off an ``orch dispatch`` / ``orch retry`` child's ``--json`` output:
one record, best-of-N's list (also when it exited 14 with only some made), or nothing."""

from __future__ import annotations

import json

import pytest

from orch.serve.loop import Launched, made_ids


@pytest.mark.parametrize(
    ("stdout", "ids"),
    [
        (json.dumps({"attempt": {"id": "a1"}, "warnings": []}), ("a1",)),
        (json.dumps({"attempts": [{"id": "a1"}, {"id": "a2"}], "failed": []}), ("a1", "a2")),
        (
            json.dumps({"attempts": [{"id": "a1"}], "failed": [{"attempt": None}]}),
            ("a1",),
        ),
        (json.dumps({"attempts": [], "failed": [{"attempt": "a2"}]}), ()),
        (json.dumps({"error": {"message": "no", "exit_code": 4}}), ()),
        ("", ()),
        ("not json", ()),
        ("[1, 2]", ()),
        (json.dumps({"attempt": None}), ()),
    ],
)
def test_made_ids(stdout: str, ids: tuple[str, ...]) -> None:
    assert made_ids(stdout) == ids


def test_launched_names_its_first_attempt() -> None:
    assert Launched(("a1", "a2")).attempt_id == "a1"
    assert Launched((), "failed").attempt_id is None
