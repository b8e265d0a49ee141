"""Docs that must not drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from orch import errors

ROOT = Path(__file__).resolve().parent.parent


def test_payload_schema_in_docs_is_the_packaged_one() -> None:
    packaged = ROOT / "orch" / "schemas" / "payload-v1.schema.json"
    assert (ROOT / "docs" / "payload-v1.schema.json").read_text() == packaged.read_text()


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| `?(\w+)`?", readme, flags=re.M))
    from orch.cli import maintenance_commands

    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.OrchError)
    }
    # the codes a command gives without an error (doctor: problems left, cleanup: skipped)
    codes |= {
        code
        for name, code in vars(maintenance_commands).items()
        if name.startswith("EXIT_") and isinstance(code, int)
    }
    missing = sorted(str(c) for c in codes if str(c) not in table)
    assert not missing, f"exit codes without a row in the README table: {missing}"


def test_pool_help_says_a_member_is_handed_over_in_place() -> None:
    from click.testing import CliRunner

    from orch.cli.main import cli

    text = " ".join(CliRunner().invoke(cli, ["pool", "--help"]).output.split())
    assert "hands it over in place: the member is not moved" in text
    assert "moves it to" not in text


def test_workers_doc_says_what_send_to_an_ended_attempt_does() -> None:
    workers = " ".join((ROOT / "docs" / "workers.md").read_text().split())
    assert "12 the attempt has ended" not in workers
    assert "An ended attempt: continues in a new attempt of the same task" in workers


def test_readme_points_at_the_team_guide_and_the_postgres_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "[docs/team.md](docs/team.md)" in readme
    assert "pip install 'orch-worktrees[postgres]'" in readme
    assert "orch restore ATTEMPT [PATH]" in readme


def test_docs_never_put_the_prompt_into_shell_code() -> None:
    """``{prompt}`` inside ``sh -c '…'`` makes a prompt shell code: docs use $ORCH_PROMPT."""
    for doc in (ROOT / "README.md", ROOT / "docs" / "workers.md"):
        for line in doc.read_text().splitlines():
            if "sh -c" in line and "never" not in line:
                assert "{prompt}" not in line.split("sh -c", 1)[1], (doc.name, line)


def test_error_schema_in_docs_is_the_packaged_one() -> None:
    packaged = ROOT / "orch" / "schemas" / "error-v1.schema.json"
    assert (ROOT / "docs" / "error-v1.schema.json").read_text() == packaged.read_text()


def test_list_and_show_schemas_in_docs_are_the_packaged_ones() -> None:
    for name in ("list-v1", "show-v1"):
        packaged = ROOT / "orch" / "schemas" / f"{name}.schema.json"
        assert (ROOT / "docs" / f"{name}.schema.json").read_text() == packaged.read_text()
