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
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.OrchError)
    }
    missing = sorted(str(c) for c in codes if str(c) not in table)
    assert not missing, f"exit codes without a row in the README table: {missing}"
