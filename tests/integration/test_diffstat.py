"""orch's own ``--stat`` (orch.git.diffstat) against git's, and the stat of a live
worktree read without a private index (orch.git.worktree_stat) against the one read
through it: the same bytes, for every case git formats differently (widths, scaling,
binary files, long and quoted names, configured graph width and quoting, colour), and
``None`` (the private index) for every case it cannot answer exactly.

Real repositories; every expectation is git's own output.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orch.git import DiffRange, FileChange, Git
from orch.git.diffstat import StatEntry, StatStyle, render_stat
from tests.support.repos import commit_all, git

LONG_DIR = "a_rather_long_directory_name/with/several/levels/below_it"
Scene = Callable[[Path], None]


def _write(root: Path, name: str | bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), os.fsencode(name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _lines(n: int, word: str = "line") -> bytes:
    return b"".join(f"{word} {i}\n".encode() for i in range(n))


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "r"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / ".gitignore").write_text("*.log\n")
    for i in range(6):
        _write(repo, f"src/f{i}.txt", _lines(10 + i))
    _write(repo, "old.bin", b"\0\1\2" * 50)
    _write(repo, f"{LONG_DIR}/kept.txt", _lines(3))
    commit_all(repo, "base")
    return repo


def _small(repo: Path) -> None:
    _write(repo, "src/f0.txt", _lines(12))
    _write(repo, "new.txt", b"one\ntwo")


def _scaled(repo: Path) -> None:
    _write(repo, "src/f1.txt", _lines(900, "x"))  # 900 in, 11 out
    _write(repo, "src/f2.txt", _lines(12)[:-8] + b"changed\n")  # 1 in, 1 out: at least 2
    _write(repo, "src/f3.txt", b"")  # all out
    _write(repo, "big.txt", _lines(3000))


def _binary(repo: Path) -> None:
    _write(repo, "old.bin", b"\0\3" * 4000)
    _write(repo, "image.png", b"\x89PNG\0" * 999)
    _write(repo, "src/f4.txt", _lines(40, "y"))


def _names(repo: Path) -> None:
    _write(repo, f"{LONG_DIR}/and_a_file_with_a_long_name_too.txt", _lines(5))
    _write(repo, "x" * 120 + ".txt", _lines(2))  # long, no slash to cut at
    _write(repo, "two\nlines.txt", b"a\n")
    _write(repo, 'quote"and\\back\ttab.txt', b"a\n")
    _write(repo, b"caf\xe9.txt", b"a\n")  # not UTF-8
    _write(repo, "naïve.txt", b"a\n")
    _write(repo, "empty.txt", b"")


def _random(repo: Path) -> None:
    """40 files of random names, depths and sizes, some binary, some edited in place."""
    rng = random.Random(18)
    for i in range(40):
        depth = rng.randint(0, 4)
        parts = ["".join(rng.choices("abcdefgh_", k=rng.randint(1, 30))) for _ in range(depth)]
        name = "/".join([*parts, f"r{i}_" + "n" * rng.randint(0, 60) + ".txt"])
        if rng.random() < 0.15:
            _write(repo, name, b"\0" * rng.randint(1, 100_000))
        else:
            _write(repo, name, _lines(rng.choice([0, 1, 2, 7, 40, 300, 5000])))
    for i in range(6):
        _write(repo, f"src/f{i}.txt", _lines(rng.randint(0, 400), "z"))


SCENES: dict[str, Scene] = {
    "small": _small,
    "scaled": _scaled,
    "binary": _binary,
    "names": _names,
    "random": _random,
}
# (--stat width or None for git's own, COLUMNS, config)
STYLES: list[tuple[int | None, str | None, dict[str, str]]] = [
    (None, None, {}),
    (None, "100", {}),
    (None, "7", {}),
    (30, None, {}),
    (50, None, {}),
    (120, None, {}),
    (250, None, {}),
    (80, None, {"diff.statGraphWidth": "10"}),
    (None, None, {"core.quotePath": "false"}),
]


def _git_env(columns: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["LC_ALL"] = "C"
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def _staged_entries(repo: Path) -> list[StatEntry]:
    """The staged changes as entries, from git's numstat and the blobs' sizes (never from
    a stat's text)."""
    out = subprocess.run(
        ["git", "diff", "--cached", "--no-renames", "--raw", "-z", "--abbrev=40", "HEAD"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    counts = subprocess.run(
        ["git", "diff", "--cached", "--no-renames", "--numstat", "-z", "HEAD"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    entries = []
    for i in range(0, len(out) - 1, 2):
        old, new = out[i][1:].split()[2:4]
        adds, dels, name = counts[i // 2].split(b"\t", 2)
        if adds == b"-":
            entries.append(StatEntry(name, _size(repo, new), _size(repo, old), binary=True))
        else:
            entries.append(StatEntry(name, int(adds), int(dels)))
    return entries


def _size(repo: Path, blob: bytes) -> int:
    if set(blob) == {ord("0")}:
        return 0
    return int(git("cat-file", "-s", blob.decode(), cwd=repo))


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_orch_prints_the_stat_git_prints(tmp_path: Path, scene: str) -> None:
    repo = _repo(tmp_path)
    SCENES[scene](repo)
    git("add", "-A", cwd=repo)
    entries = _staged_entries(repo)
    assert entries
    wide = any(max(e.name) >= 0x80 for e in entries)
    for width, columns, config in STYLES:
        if wide and config.get("core.quotePath") == "false":
            continue  # git pads such names by their width on screen: its own stat only
        for color in (False, True):
            args = [a for k, v in config.items() for a in ("-c", f"{k}={v}")]
            option = f"--stat={width}" if width else "--stat"
            colour = "--color=always" if color else "--color=never"
            expected = subprocess.run(
                ["git", *args, "diff", "--cached", "--no-renames", option, colour, "HEAD"],
                cwd=repo,
                capture_output=True,
                check=True,
                env=_git_env(columns),
            ).stdout
            style = StatStyle(
                width=width or (int(columns) if columns else 80),
                graph_width=int(config.get("diff.statGraphWidth", "0")),
                quote_path=config.get("core.quotePath") != "false",
                color=color,
            )
            got = render_stat(entries, style)
            assert got == expected, (width, columns, config, color, got, expected)


def test_nothing_changed_prints_nothing() -> None:
    assert render_stat([], StatStyle()) == b""


# -- the live worktree's stat, against the diff through a private index --------------


def _worktree(tmp_path: Path) -> tuple[Path, str]:
    repo = _repo(tmp_path)
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    worktree = tmp_path / "wt"
    git("worktree", "add", "-q", "-b", "attempt", str(worktree), cwd=repo)
    return worktree, base


def _through_private_index(worktree: Path, base: str, color: bool, width: int | None) -> bytes:
    adapter = Git()
    with adapter.private_index(worktree, untracked=True) as index:
        where = DiffRange(base, None, cwd=worktree, env=index.env)
        return adapter.diff_output(where, "stat", color=color, stat_width=width)


class _QuickOnly(Git):
    """Fails when the changed files are read through the private index."""

    def changed_files(self, where: DiffRange) -> list[FileChange]:
        raise AssertionError("read through the private index")


def _files_through_private_index(worktree: Path, base: str) -> list[FileChange]:
    adapter = Git()
    with adapter.private_index(worktree, untracked=True) as index:
        return adapter.changed_files(DiffRange(base, None, cwd=worktree, env=index.env))


def _assert_same(worktree: Path, base: str) -> None:
    for color, width in ((False, None), (True, 100), (False, 40)):
        quick = Git().worktree_stat(worktree, base, color=color, stat_width=width)
        assert quick is not None
        assert quick.output == _through_private_index(worktree, base, color, width)
    files = _QuickOnly().worktree_changes(worktree, base).files
    assert files == _files_through_private_index(worktree, base)


def test_untracked_files_join_the_tracked_ones(tmp_path: Path) -> None:
    worktree, base = _worktree(tmp_path)
    _write(worktree, "src/f0.txt", _lines(30))  # committed
    commit_all(worktree, "agent")
    _write(worktree, "src/f1.txt", _lines(2))  # uncommitted
    _write(worktree, "old.bin", b"\0" * 10)
    _write(worktree, "src/new.py", _lines(7))  # untracked, among the tracked ones
    _write(worktree, "zz/no_newline.txt", b"a\nb")
    _write(worktree, "empty.txt", b"")
    _write(worktree, "blob.dat", b"\0\1" * 3000)  # binary
    _write(worktree, "late_nul.txt", b"a\n" * 5000 + b"\0")  # a NUL after 8,000 bytes
    _write(worktree, "two\nlines.txt", b"q\n")
    _write(worktree, b"caf\xe9.txt", b"q\n")
    _write(worktree, f"{LONG_DIR}/untracked_with_a_long_name.txt", _lines(4))
    _write(worktree, "ignored.log", b"not shown\n")
    os.symlink("src/f2.txt", worktree / "link")
    _assert_same(worktree, base)


def test_without_untracked_files_git_speaks_alone(tmp_path: Path) -> None:
    worktree, base = _worktree(tmp_path)
    git("mv", "src/f0.txt", "src/renamed.txt", cwd=worktree)  # a rename is git's to show
    git("rm", "-q", "src/f1.txt", cwd=worktree)
    _write(worktree, "src/f2.txt", _lines(50))
    _assert_same(worktree, base)


def test_a_nested_repository_is_left_out_and_named(tmp_path: Path) -> None:
    worktree, base = _worktree(tmp_path)
    git("init", "-q", str(worktree / "cloned"), cwd=worktree)
    _write(worktree, "notes.md", b"# notes\n")
    quick = Git().worktree_stat(worktree, base, color=False, stat_width=None)
    assert quick is not None and quick.nested_repositories == ("cloned/",)
    assert quick.output == _through_private_index(worktree, base, False, None)


def _moved_by_hand(worktree: Path) -> None:
    os.rename(worktree / "src/f0.txt", worktree / "src/moved.txt")  # git pairs a rename


def _diff_attribute(worktree: Path) -> None:
    _write(worktree, ".gitattributes", b"*.dat -diff\n")
    commit_all(worktree, "attributes")
    _write(worktree, "new.dat", b"text, shown as binary\n")


def _filtered(worktree: Path) -> None:
    _write(worktree, ".gitattributes", b"*.txt filter=upper\n")
    git("config", "filter.upper.clean", "tr a-z A-Z", cwd=worktree)
    commit_all(worktree, "filter")
    _write(worktree, "new.txt", b"a\n")


def _ordered(worktree: Path) -> None:
    git("config", "diff.orderFile", "/dev/null", cwd=worktree)
    _write(worktree, "new.txt", b"a\n")


def _unquoted_wide_name(worktree: Path) -> None:
    git("config", "core.quotePath", "false", cwd=worktree)
    _write(worktree, "naïve.txt", b"a\n")


def _binary_with_line_ends(worktree: Path) -> None:
    git("config", "core.autocrlf", "true", cwd=worktree)
    _write(worktree, "new.bin", b"\0\r\n")


def _attributes_left_out_of_a_sparse_checkout(worktree: Path) -> None:
    _write(worktree, "docs/.gitattributes", b"*.txt -diff\n")
    commit_all(worktree, "attributes")
    git("sparse-checkout", "set", "--no-cone", "/src/", "/old.bin", cwd=worktree)
    assert not (worktree / "docs").exists()
    _write(worktree, "docs/new.txt", b"text, shown as binary\n")


@pytest.mark.parametrize(
    "scene",
    [
        _moved_by_hand,
        _diff_attribute,
        _filtered,
        _ordered,
        _unquoted_wide_name,
        _binary_with_line_ends,
        _attributes_left_out_of_a_sparse_checkout,
    ],
)
def test_what_could_differ_goes_through_the_private_index(tmp_path: Path, scene: Scene) -> None:
    worktree, base = _worktree(tmp_path)
    scene(worktree)
    assert Git().worktree_stat(worktree, base, color=False, stat_width=None) is None
    # and the private index still gives git's answer
    assert _through_private_index(worktree, base, False, None).endswith(b")\n")
    if scene is not _ordered and scene is not _unquoted_wide_name:  # the stat's own limits
        with pytest.raises(AssertionError, match="private index"):
            _QuickOnly().worktree_changes(worktree, base)
    expected = _files_through_private_index(worktree, base)
    assert Git().worktree_changes(worktree, base).files == expected


def test_an_untracked_file_with_harmless_attributes_is_counted(tmp_path: Path) -> None:
    worktree, base = _worktree(tmp_path)
    _write(worktree, ".gitattributes", b"*.txt text eol=lf whitespace=-trailing\n")
    commit_all(worktree, "attributes")
    _write(worktree, "crlf.txt", b"one\r\ntwo\r\n")
    _assert_same(worktree, base)


def test_the_worktree_index_is_never_written(tmp_path: Path) -> None:
    """A file touched but not changed makes ``git diff`` rewrite the index it reads when
    it may; the stat reads the worktree's own index and must never write it."""
    worktree, base = _worktree(tmp_path)
    _write(worktree, "src/f0.txt", _lines(30))
    _write(worktree, "untracked.txt", b"new\n")
    index = Path(git("rev-parse", "--git-path", "index", cwd=worktree).strip())
    index = index if index.is_absolute() else worktree / index
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    os.utime(worktree / "src/f1.txt", ns=(1, 1))  # stat-dirty, the same content
    quick = Git().worktree_stat(worktree, base, color=False, stat_width=None)
    assert quick is not None and b"untracked.txt" in quick.output
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
