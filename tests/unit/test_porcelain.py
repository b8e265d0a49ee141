"""``orch.git.parse_porcelain``: ``git status --porcelain=v1 -z`` read into DirtyPaths; and
``parse_worktree_list``: ``git worktree list --porcelain`` read into one dict a worktree.

With ``-z`` git neither quotes nor escapes names, so spaces, newlines and any bytes reach
the parser as they are; git's output is decoded with ``surrogateescape``, so a name that
is not UTF-8 must come back as the same bytes (``os.fsencode``).
"""

from __future__ import annotations

import os

import pytest

from orch.git import DirtyPath, parse_porcelain
from orch.git.worktrees import parse_worktree_list


def z(*entries: str) -> str:
    """Entries as ``git status -z`` prints them: each ends with NUL."""
    return "".join(f"{e}\0" for e in entries)


def test_nothing_is_nothing() -> None:
    assert parse_porcelain("") == []


def test_every_kind_of_change_keeps_its_code() -> None:
    out = z(" M modified.txt", "M  staged.txt", "MM both.txt", " D deleted.txt", "A  new.txt",
            "?? untracked.txt", "UU conflict.txt", " T type.txt")  # fmt: skip
    assert parse_porcelain(out) == [
        DirtyPath(" M", "modified.txt"),
        DirtyPath("M ", "staged.txt"),
        DirtyPath("MM", "both.txt"),
        DirtyPath(" D", "deleted.txt"),
        DirtyPath("A ", "new.txt"),
        DirtyPath("??", "untracked.txt"),
        DirtyPath("UU", "conflict.txt"),
        DirtyPath(" T", "type.txt"),
    ]


@pytest.mark.parametrize("code", ["R ", "RM", "C ", "CM"])
def test_a_rename_or_copy_yields_its_new_name_and_skips_the_source(code: str) -> None:
    out = z(f"{code} new name.txt", "old name.txt", "?? after.txt")
    assert parse_porcelain(out) == [DirtyPath(code, "new name.txt"), DirtyPath("??", "after.txt")]


def test_a_rename_source_that_looks_like_an_entry_is_still_skipped() -> None:
    # the source field of a rename is a bare path: one that reads like "?? x" is a name
    out = z("R  renamed.txt", "?? tricky", " M real.txt")
    assert parse_porcelain(out) == [DirtyPath("R ", "renamed.txt"), DirtyPath(" M", "real.txt")]


@pytest.mark.parametrize(
    "name",
    [
        "with space.txt",
        " leading space",
        "trailing space ",
        "new\nline.txt",
        'quote"d.txt',
        "tab\there",
        "back\\slash",
        "ünïcode 修复.txt",
        "dir/sub dir/file.txt",
        "-starts-with-dash",
    ],
)
def test_names_come_back_exactly_as_git_printed_them(name: str) -> None:
    assert parse_porcelain(z(f"?? {name}", f" M {name}")) == [
        DirtyPath("??", name),
        DirtyPath(" M", name),
    ]


def test_a_name_that_is_not_utf8_round_trips_to_its_bytes() -> None:
    raw = b"?? caf\xe9 \xff.txt\x00 M ok.txt\x00"
    parsed = parse_porcelain(raw.decode("utf-8", "surrogateescape"))
    assert [p.code for p in parsed] == ["??", " M"]
    assert os.fsencode(parsed[0].path) == b"caf\xe9 \xff.txt"
    assert parsed[1].path == "ok.txt"


def test_a_one_letter_name_is_an_entry() -> None:
    assert parse_porcelain(z("?? a")) == [DirtyPath("??", "a")]


def test_fields_too_short_to_be_entries_are_ignored() -> None:
    # git ends the output with NUL; a stray empty field or a truncated one is not a path
    assert parse_porcelain("\0\0?? a\0") == [DirtyPath("??", "a")]
    assert parse_porcelain("?? ") == []


def test_a_rename_in_the_worktree_also_skips_its_source() -> None:
    # what `git mv a.txt b.txt; git reset; git add -N b.txt; git status -z` prints
    assert parse_porcelain(z(" R b.txt", "a.txt")) == [DirtyPath(" R", "b.txt")]


def test_worktree_list_is_one_entry_per_worktree_the_main_one_first() -> None:
    out = (
        "worktree /src/repo\nHEAD " + "a" * 40 + "\nbranch refs/heads/main\n\n"
        "worktree /wt/one\nHEAD " + "b" * 40 + "\ndetached\nlocked orch pool member\n\n"
        "worktree /wt/two with spaces\nHEAD " + "c" * 40 + "\nbranch refs/heads/orch/t\n"
        "locked\nprunable gitdir file points to non-existent location\n\n"
    )
    assert parse_worktree_list(out) == [
        {"worktree": "/src/repo", "HEAD": "a" * 40, "branch": "refs/heads/main"},
        {"worktree": "/wt/one", "HEAD": "b" * 40, "detached": "", "locked": "orch pool member"},
        {
            "worktree": "/wt/two with spaces",
            "HEAD": "c" * 40,
            "branch": "refs/heads/orch/t",
            "locked": "",
            "prunable": "gitdir file points to non-existent location",
        },
    ]
