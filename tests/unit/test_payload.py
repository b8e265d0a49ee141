"""orch/system/inbox.py: the payload a worker reads, built from an attempt, checked
against its JSON schema, upgraded from older versions and refused from newer ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orch.errors import PayloadError
from orch.models import Attempt
from orch.system import inbox
from tests.support.records import NOW, an_attempt


def attempt(**changes: Any) -> Attempt:
    fields: dict[str, Any] = {
        "attempt_number": 2,
        "base_ref": "main",
        "worker": "claude",
        "prompt": "Fix the login",
        "created_at": NOW,
    }
    return an_attempt(**{**fields, **changes})


def built(**changes: Any) -> dict[str, Any]:
    return inbox.build_payload(
        attempt(**changes), orch_home=Path("/home"), lease_ttl=30.0, ports={"base": 20000}
    )


def test_a_built_payload_carries_the_attempt_and_is_valid() -> None:
    payload = built()
    inbox.validate(payload, "built")
    assert payload["schema_version"] == inbox.SCHEMA_VERSION == 1
    assert {k: payload[k] for k in ("attempt_id", "attempt_number", "task_key", "prompt")} == {
        "attempt_id": "deadbeef",
        "attempt_number": 2,
        "task_key": "fix-login",
        "prompt": "Fix the login",
    }
    assert (payload["base_ref"], payload["base_commit"]) == ("main", "c" * 40)
    assert (payload["state"], payload["workspace_status"]) == ("queued", "ready")
    assert payload["ports"] == {"base": 20000}
    assert payload["lease"] == {"ttl_seconds": 30.0}
    assert payload["orch_home"] == "/home"
    assert payload["created_at"] == NOW.isoformat()
    assert payload["checkout"] == {
        "sparse_paths": None,
        "submodules": None,
        "lfs_skip_smudge": False,
    }
    # the whole payload survives a round trip through JSON
    assert json.loads(json.dumps(payload)) == payload


def test_the_commands_name_this_attempt_and_leave_the_lease_to_fill_in() -> None:
    commands = built()["commands"]
    assert commands["claim"] == ["orch", "claim", "deadbeef", "--json"]
    assert commands["heartbeat"] == ["orch", "heartbeat", "deadbeef", "--lease", "{lease}"]
    assert commands["finish_succeeded"][-4:] == ["--state", "succeeded", "--exit-code", "0"]
    assert commands["finish_failed"][-4:] == ["--state", "failed", "--exit-code", "1"]
    assert commands["show"] == ["orch", "show", "deadbeef", "--json"]


def test_a_checkout_with_sparse_paths_and_skipped_lfs_is_described() -> None:
    payload = built(sparse_paths=("src", "docs"), submodules=True, lfs_skip_smudge=True)
    inbox.validate(payload, "built")
    assert payload["checkout"] == {
        "sparse_paths": ["src", "docs"],
        "submodules": True,
        "lfs_skip_smudge": True,
    }


def test_no_ports_is_an_empty_table() -> None:
    payload = inbox.build_payload(attempt(), orch_home=Path("/home"), lease_ttl=1.0)
    assert payload["ports"] == {}
    inbox.validate(payload, "built")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"attempt_id": "NOT-HEX!"}, "attempt_id"),
        ({"attempt_number": 0}, "attempt_number"),
        ({"task_key": ""}, "task_key"),
        ({"state": "sleeping"}, "state"),
        ({"base_commit": "abc"}, "base_commit"),
        ({"unexpected": 1}, "(top level)"),
    ],
)
def test_an_invalid_payload_is_one_payload_error_saying_where(
    change: dict[str, Any], where: str
) -> None:
    payload = {**built(), **change}
    with pytest.raises(PayloadError) as caught:
        inbox.validate(payload, "p.json")
    assert str(caught.value).startswith(f"invalid payload p.json: {where}: ")
    assert caught.value.exit_code == 9


def test_a_missing_field_is_refused() -> None:
    payload = built()
    del payload["commands"]
    with pytest.raises(PayloadError, match=r"invalid payload p.json: \(top level\): 'commands'"):
        inbox.validate(payload, "p.json")


def test_the_payload_path_is_the_attempt_id_in_the_inbox() -> None:
    assert inbox.payload_path(Path("/home/inbox"), "deadbeef") == Path("/home/inbox/deadbeef.json")


# -- reading: versions, upgrades and damage -----------------------------------------------------


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "deadbeef.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_current_payload_reads_back_as_written(tmp_path: Path) -> None:
    payload = built()
    assert inbox.read_payload(write(tmp_path, payload)) == payload


def test_a_newer_payload_is_refused_asking_to_upgrade_orch(tmp_path: Path) -> None:
    path = write(tmp_path, {**built(), "schema_version": 2})
    with pytest.raises(PayloadError) as caught:
        inbox.read_payload(path)
    assert str(caught.value) == (
        f"payload {path} has schema version 2; this orch reads up to 1: upgrade orch"
    )


def test_an_older_payload_without_an_upgrade_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {**built(), "schema_version": 0})
    with pytest.raises(PayloadError, match="has unsupported schema version 0"):
        inbox.read_payload(path)


def test_an_older_payload_is_upgraded_step_by_step_then_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = built()
    old = {k: v for k, v in current.items() if k != "checkout"} | {"schema_version": -1}
    steps: list[int] = []

    def step(version: int, changes: dict[str, Any]) -> Any:
        def upgrade(data: dict[str, Any]) -> dict[str, Any]:
            steps.append(version)
            return {**data, **changes, "schema_version": version + 1}

        return upgrade

    monkeypatch.setitem(inbox._UPGRADES, -1, step(-1, {}))
    monkeypatch.setitem(inbox._UPGRADES, 0, step(0, {"checkout": current["checkout"]}))
    assert inbox.read_payload(write(tmp_path, old)) == current
    assert steps == [-1, 0]


def test_an_upgrade_that_leaves_an_invalid_payload_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {**built(), "schema_version": 0}
    monkeypatch.setitem(inbox._UPGRADES, 0, lambda data: {**data, "schema_version": 1, "x": 1})
    with pytest.raises(PayloadError, match=r"invalid payload .*: \(top level\)"):
        inbox.read_payload(write(tmp_path, old))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
        ("[1, 2]", "no integer schema_version"),
        ('{"schema_version": "1"}', "no integer schema_version"),
    ],
)
def test_a_damaged_payload_is_one_payload_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PayloadError) as caught:
        inbox.read_payload(path)
    assert str(caught.value) == f"corrupt payload {path}: {message}"


def test_a_missing_payload_says_so(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="no payload at "):
        inbox.read_payload(tmp_path / "gone.json")


def test_a_payload_that_is_not_utf8_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "deadbeef.json"
    path.write_bytes(b'{"schema_version": 1, "prompt": "\xff"}')
    with pytest.raises(PayloadError, match="cannot read the payload "):
        inbox.read_payload(path)
