"""orch/naming.py: attempt ids, task keys, slugs, branch names and worktree paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orch.errors import InvalidInput, InvalidTaskKey
from orch.naming import (
    SLUG_MAX,
    TASK_KEY_MAX,
    branch_name,
    new_attempt_id,
    repository_dir_name,
    slugify,
    validate_branch_prefix,
    validate_task_key,
    worktree_path,
)


def test_attempt_ids_are_eight_hex_digits_and_differ() -> None:
    ids = {new_attempt_id() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)
    assert len(ids) == 200


@pytest.mark.parametrize(
    "key",
    [
        "fix the login bug",
        "Fix lógin \u2013 ünïcode 修复",
        "feature/login",
        "FIX-LOGIN",
        "a..b",
        "x" * TASK_KEY_MAX,
        "emoji \U0001f680",
    ],
)
def test_a_valid_task_key_is_kept_verbatim(key: str) -> None:
    assert validate_task_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("x" * (TASK_KEY_MAX + 1), f"at most {TASK_KEY_MAX} are allowed"),
        (" padded", "leading or trailing whitespace"),
        ("padded ", "leading or trailing whitespace"),
        ("-rf", "must not start with '-'"),
        ("--help", "must not start with '-'"),
        ("tab\there", "control or invisible characters"),
        ("new\nline", "control or invisible characters"),
        ("zero\u200bwidth", "control or invisible characters"),
        ("..", "must not be or contain a path"),
        (".", "must not be or contain a path"),
        ("../etc", "must not be or contain a path"),
        ("a/../../etc", "must not be or contain a path"),
        ("a\\..\\b", "must not be or contain a path"),
        ("/etc/passwd", "must not be or contain a path"),
        ("\\server", "must not be or contain a path"),
    ],
)
def test_a_bad_task_key_is_refused_saying_why(key: str, why: str) -> None:
    with pytest.raises(InvalidTaskKey) as caught:
        validate_task_key(key)
    assert why in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Fix lógin \u2013 ünïcode 修复", "fix-login-unicode"),
        ("feature/login", "feature-login"),
        ("FIX-LOGIN", "fix-login"),
        ("ÅNGSTRÖM", "angstrom"),
        ("修复", "task"),  # nothing ASCII is left: never empty
        ("---", "task"),
        ("  spaced   out  ", "spaced-out"),
        ("../../etc/passwd", "etc-passwd"),
        ("-leading", "leading"),
    ],
)
def test_slugs_are_lowercase_ascii_words(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_a_long_slug_is_cut_at_a_word_boundary() -> None:
    long = "hello world again and again and again and again"
    assert slugify(long) == "hello-world-again-and-again-and-again"
    assert len(slugify("a" * 100)) == SLUG_MAX
    assert slugify("abcdefghij-klmnopqrst-uvwxyz", 15) == "abcdefghij"
    assert slugify("abcdefghijklmnopqrstuvwxyz", 10) == "abcdefghij"


@pytest.mark.parametrize("text", ["a" * 100, "x-" * 60, "Ünïcödé " * 20, "-" * 50 + "z"])
def test_a_slug_never_starts_or_ends_with_a_dash_and_fits(text: str) -> None:
    slug = slugify(text)
    assert slug and not slug.startswith("-") and not slug.endswith("-")
    assert len(slug) <= SLUG_MAX
    assert re.fullmatch(r"[a-z0-9-]+", slug)


def test_branch_names_end_with_the_attempt_id() -> None:
    assert branch_name("orch", "Fix lógin", "deadbeef") == "orch/fix-login-deadbeef"
    assert branch_name("team_a", "修复", "0123abcd") == "team_a/task-0123abcd"


@pytest.mark.parametrize("prefix", ["orch", "a", "team_a-1", "x" * 32])
def test_a_valid_branch_prefix_is_kept(prefix: str) -> None:
    assert validate_branch_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "-orch", "_orch", "a/b", "a b", "x" * 33, "préfixe", ".."])
def test_a_bad_branch_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(InvalidInput, match="invalid branch prefix"):
        validate_branch_prefix(prefix)


def test_the_repository_directory_is_stable_and_tells_clones_apart() -> None:
    one = repository_dir_name(Path("/src/My Repo"))
    assert one == repository_dir_name(Path("/src/My Repo"))
    assert re.fullmatch(r"my-repo-[0-9a-f]{8}", one)
    assert repository_dir_name(Path("/other/My Repo")) != one


@pytest.mark.parametrize("key", ["../../etc", "/abs/path", "a/../../b", "..", "修复"])
def test_a_worktree_path_stays_strictly_inside_the_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "worktrees"
    path = worktree_path(root, Path("/src/repo"), key, "deadbeef")
    assert path.resolve().is_relative_to(root.resolve())
    assert path.parent.parent == root
    assert path.name.endswith("-deadbeef")


def test_a_worktree_path_is_named_by_slug_and_attempt_id(tmp_path: Path) -> None:
    path = worktree_path(tmp_path, Path("/src/My Repo"), "Fix lógin", "deadbeef")
    assert path == tmp_path / repository_dir_name(Path("/src/My Repo")) / "fix-login-deadbeef"
