"""With ``--json``, a failure is also a JSON object on standard output (issue 21, point
3): the same exit code, the one line still on standard error, and the document valid
against the shipped schema. Run through the installed entry point, whose fast exit must
not lose the document."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from orch import errors
from tests.support.cli import RunOrch, error_line

SCHEMA = json.loads((Path(errors.__file__).parent / "schemas" / "error-v1.schema.json").read_text())


@pytest.mark.parametrize(
    ("args", "code", "name", "line"),
    [
        (["show", "feedbeef", "--json"], 8, "NotFound", "no attempt 'feedbeef'"),
        (["show", "abc", "--json"], 2, "InvalidInput", "too short"),
        (["dispatch", "../escape", "--json"], 2, "InvalidInput", "task key"),
        (["list", "--json", "--bogus"], 2, "InvalidInput", "No such option"),
        (["diff", "feedbeef", "--json"], 8, "NotFound", "no attempt 'feedbeef'"),
    ],
)
def test_a_failure_with_json_is_a_json_error_on_stdout(
    repo: Path, run_orch: RunOrch, args: list[str], code: int, name: str, line: str
) -> None:
    proc = run_orch(*args, cwd=repo)
    assert proc.returncode == code, proc.stderr
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["error"]["code"] == code and document["error"]["name"] == name
    assert line in document["error"]["message"]
    if "--bogus" in args:  # click's usage message, with its hint, stays as it is
        assert "No such option" in proc.stderr
    else:
        assert error_line(proc.stderr) == f"Error: {document['error']['message']}"


def test_without_json_a_failure_prints_nothing_on_stdout(repo: Path, run_orch: RunOrch) -> None:
    proc = run_orch("show", "feedbeef", cwd=repo)
    assert proc.returncode == 8 and proc.stdout == ""
    assert error_line(proc.stderr) == "Error: no attempt 'feedbeef' in the store"


def test_an_agent_argument_named_json_is_not_orchs(repo: Path, run_orch: RunOrch) -> None:
    proc = run_orch("show", "feedbeef", "--", "--json", cwd=repo)
    assert proc.returncode != 0 and not proc.stdout.startswith("{")


def _schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (Path(errors.__file__).parent / "schemas" / f"{name}.schema.json").read_text()
    )
    return loaded


def test_list_and_show_json_match_their_shipped_schemas(repo: Path, run_orch: RunOrch) -> None:
    made = run_orch("dispatch", "schema-check", "--prompt", "do it", "--json", cwd=repo)
    assert made.returncode == 0, made.stderr
    attempt_id = json.loads(made.stdout)["attempt"]["id"]
    listed = run_orch("list", "--json", cwd=repo)
    jsonschema.validate(json.loads(listed.stdout), _schema("list-v1"))
    shown = run_orch("show", attempt_id, "--json", cwd=repo)
    jsonschema.validate(json.loads(shown.stdout), _schema("show-v1"))
    assert run_orch("cancel", attempt_id, cwd=repo).returncode == 0
    ended = json.loads(run_orch("show", attempt_id, "--json", cwd=repo).stdout)
    jsonschema.validate(ended, _schema("show-v1"))
    assert ended["attempt"]["state"] == "cancelled"
