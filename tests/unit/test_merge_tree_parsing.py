"""Parsing ``git merge-tree --write-tree -z --name-only`` (orch.git.landing), from output
git 2.39 printed for a merge with a binary, a content, a modify/delete and an add/add
conflict."""

from __future__ import annotations

from orch.git.landing import Conflicted, parse_merge_tree

TREE = "7f615c3d59c8b7e537f4550cde2014220f33c36e"
OUT = "\0".join(
    [
        TREE,
        "b.bin",
        "f",
        "g",
        "n",
        "",
        "1",
        "b.bin",
        "CONFLICT (binary)",
        "warning: Cannot merge binary files: b.bin (main vs. side)\n",
        "1",
        "b.bin",
        "Auto-merging",
        "Auto-merging b.bin\n",
        "1",
        "b.bin",
        "CONFLICT (contents)",
        "CONFLICT (content): Merge conflict in b.bin\n",
        "1",
        "f",
        "Auto-merging",
        "Auto-merging f\n",
        "1",
        "f",
        "CONFLICT (contents)",
        "CONFLICT (content): Merge conflict in f\n",
        "1",
        "g",
        "CONFLICT (modify/delete)",
        "CONFLICT (modify/delete): g deleted in side and modified in main.\n",
        "1",
        "n",
        "Auto-merging",
        "Auto-merging n\n",
        "1",
        "n",
        "CONFLICT (contents)",
        "CONFLICT (add/add): Merge conflict in n\n",
        "",
    ]
)


def test_a_clean_merge_is_its_tree() -> None:
    merged = parse_merge_tree(f"{TREE}\0", clean=True)
    assert (merged.tree, merged.clean) == (TREE, True)


def test_each_conflicted_path_with_what_kind_of_conflict_it_is() -> None:
    merged = parse_merge_tree(OUT, clean=False)
    assert merged.tree == TREE and not merged.clean
    assert merged.conflicts == (
        Conflicted("b.bin", ("binary", "content")),
        Conflicted("f", ("content",)),
        Conflicted("g", ("modify/delete",)),
        Conflicted("n", ("add/add",)),
    )


def test_a_rename_names_two_paths_in_one_message() -> None:
    out = "\0".join(
        [
            TREE,
            "moved.txt",
            "",
            "2",
            "old.txt",
            "moved.txt",
            "CONFLICT (rename/delete)",
            "CONFLICT (rename/delete): old.txt renamed to moved.txt in side, "
            "but deleted in main.\n",
            "",
        ]
    )
    assert parse_merge_tree(out, clean=False).conflicts == (
        Conflicted("moved.txt", ("rename/delete",)),
    )
