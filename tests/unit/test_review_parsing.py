"""The pure parts of ``orch diff``: ``git diff --raw --numstat -z`` read into FileChanges,
the JSON of one file, and which pager git would choose.

The raw output is what git 2.39 printed for a modification, a rename, a binary file, an
addition and a name with a newline and a byte that is not UTF-8 (decoded, as the runner
does, with ``surrogateescape``).
"""

from __future__ import annotations

import base64

import pytest

from orch.attempts.review import file_dict
from orch.errors import GitError
from orch.git import FileChange
from orch.git.diff import parse_raw_numstat
from orch.system.pager import pager_command

ODD = b"caf\xe9\nname.txt".decode("utf-8", "surrogateescape")
OUT = (
    ":100644 100644 7898192 0000000 M\0a.txt\0"
    ":100644 100644 b77b4eb b77b4eb R087\0old name.txt\0new name.txt\0"
    ":000000 100644 0000000 0d1e2f3 A\0image.bin\0"
    f":000000 100644 0000000 3e75765 A\0{ODD}\0"
    "3\t1\ta.txt\0"
    "2\t0\t\0old name.txt\0new name.txt\0"
    "-\t-\timage.bin\0"
    f"1\t0\t{ODD}\0"
)


def test_raw_and_numstat_entries_pair_up() -> None:
    assert parse_raw_numstat(OUT) == [
        FileChange("a.txt", "modified", 3, 1),
        FileChange("new name.txt", "renamed", 2, 0, old_path="old name.txt"),
        FileChange("image.bin", "added", None, None),
        FileChange(ODD, "added", 1, 0),
    ]
    assert parse_raw_numstat("") == []


def test_entries_that_do_not_pair_up_are_an_error() -> None:
    with pytest.raises(GitError):
        parse_raw_numstat(":100644 100644 7898192 0000000 M\0a.txt\0")


def test_a_name_that_is_not_utf8_is_given_exactly_in_base64() -> None:
    body = file_dict(FileChange(ODD, "added", 1, 0))
    assert body["path"] == "caf\ufffd\nname.txt"
    assert base64.b64decode(body["path_base64"]) == b"caf\xe9\nname.txt"
    plain = file_dict(FileChange("b.txt", "renamed", None, None, old_path="a.txt"))
    assert plain == {
        "path": "b.txt",
        "old_path": "a.txt",
        "status": "renamed",
        "additions": None,
        "deletions": None,
        "binary": True,
    }


@pytest.mark.parametrize(
    ("environ", "configured", "expected"),
    [
        ({}, None, "less"),
        ({"PAGER": "more"}, None, "more"),
        ({"PAGER": "more"}, "most", "most"),
        ({"GIT_PAGER": "delta", "PAGER": "more"}, "most", "delta"),
        ({"GIT_PAGER": ""}, "most", None),
        ({"PAGER": "cat"}, None, None),
    ],
)
def test_the_pager_is_chosen_as_git_chooses_it(
    environ: dict[str, str], configured: str | None, expected: str | None
) -> None:
    assert pager_command(environ, configured) == expected
