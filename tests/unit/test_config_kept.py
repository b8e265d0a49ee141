"""orch/config.py keeps config files parsed in the orch home (``read_toml(kept_in=...)``):
read back while the file's stat is unchanged, parsed again once it changes, never kept
while it may still change unseen, and a copy anyone else could have written is ignored."""

from __future__ import annotations

import datetime as dt
import marshal
import os
from pathlib import Path

import pytest

from orch import config
from orch.config import read_toml, resolve
from orch.repo_config import load_repo_config


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as left alone at once (else a test would wait two seconds)."""
    monkeypatch.setattr(config, "_SETTLED_NS", -1)


def env_for(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / "config.toml").write_text(text)
    (tmp_path / "home").mkdir(exist_ok=True)
    return {
        "HOME": str(tmp_path),
        "ORCH_HOME": str(tmp_path / "home"),
        "ORCH_CONFIG": str(tmp_path / "config.toml"),
    }


def the_copy(tmp_path: Path) -> Path:
    [copy] = (tmp_path / "home" / "cache").iterdir()
    return copy


def rewrite_copy(copy: Path, **tables: object) -> None:
    """The copy, its stamp kept, its tables replaced: what a read of the copy would give."""
    format_, stamp, _ = marshal.loads(copy.read_bytes())
    copy.write_bytes(marshal.dumps((format_, stamp, tables)))


def test_the_user_config_is_kept_and_read_back_while_unchanged(
    tmp_path: Path, settled: None
) -> None:
    env = env_for(tmp_path, 'branch_prefix = "kept"\n')
    assert resolve(env).branch_prefix == "kept"
    copy = the_copy(tmp_path)
    assert copy.stat().st_mode & 0o777 == 0o600
    rewrite_copy(copy, branch_prefix="from-the-copy")
    assert resolve(env).branch_prefix == "from-the-copy"  # not parsed again


def test_a_changed_config_file_is_parsed_again(tmp_path: Path, settled: None) -> None:
    env = env_for(tmp_path, 'branch_prefix = "one"\n')
    # written a while ago: a file is kept only once left alone (else within one tick of
    # the file system's clock a rewrite of the same size could keep its stamp)
    ago = os.stat(tmp_path / "config.toml").st_mtime_ns - 10**10
    os.utime(tmp_path / "config.toml", ns=(ago, ago))
    assert resolve(env).branch_prefix == "one"
    rewrite_copy(the_copy(tmp_path), branch_prefix="stale")
    (tmp_path / "config.toml").write_text('branch_prefix = "two"\n')  # same size
    assert resolve(env).branch_prefix == "two"
    assert resolve(env).branch_prefix == "two"  # and kept anew


def test_a_file_changed_just_now_is_not_kept(tmp_path: Path) -> None:
    env = env_for(tmp_path, 'branch_prefix = "fresh"\n')
    assert resolve(env).branch_prefix == "fresh"
    assert not (tmp_path / "home" / "cache").exists()


def test_a_copy_others_could_write_is_not_read(tmp_path: Path, settled: None) -> None:
    env = env_for(tmp_path, 'branch_prefix = "real"\n')
    resolve(env)
    copy = the_copy(tmp_path)
    rewrite_copy(copy, branch_prefix="planted")
    os.chmod(copy, 0o666)
    assert resolve(env).branch_prefix == "real"


def test_a_broken_copy_is_parsed_again(tmp_path: Path, settled: None) -> None:
    env = env_for(tmp_path, 'branch_prefix = "real"\n')
    resolve(env)
    the_copy(tmp_path).write_bytes(b"\x00not marshal")
    assert resolve(env).branch_prefix == "real"
    assert resolve(env).branch_prefix == "real"


def test_tables_marshal_cannot_hold_are_parsed_every_time(tmp_path: Path, settled: None) -> None:
    path = tmp_path / "dated.toml"
    path.write_text("when = 1979-05-27\n")
    kept = tmp_path / "home" / "cache"
    (tmp_path / "home").mkdir()
    assert read_toml(path, kept_in=kept) == {"when": dt.date(1979, 5, 27)}
    assert not kept.exists() or not any(kept.iterdir())


def test_no_home_yet_no_copy(tmp_path: Path, settled: None) -> None:
    path = tmp_path / "c.toml"
    path.write_text("a = 1\n")
    assert read_toml(path, kept_in=tmp_path / "no-home" / "cache") == {"a": 1}
    assert not (tmp_path / "no-home").exists()


def test_a_repository_config_is_kept_too(tmp_path: Path, settled: None) -> None:
    repo, kept = tmp_path / "repo", tmp_path / "home" / "cache"
    repo.mkdir()
    (tmp_path / "home").mkdir()
    (repo / "orch.toml").write_text('[[hooks]]\ncommand = "true"\non = ["failed"]\n')
    assert [s.on for s in load_repo_config(repo, kept).sinks] == [frozenset({"failed"})]
    rewrite_copy(the_copy(tmp_path), hooks=[{"command": "true", "on": ["succeeded"]}])
    assert [s.on for s in load_repo_config(repo, kept).sinks] == [frozenset({"succeeded"})]
    with pytest.raises(FileNotFoundError):
        read_toml(repo / "missing.toml", kept_in=kept)
