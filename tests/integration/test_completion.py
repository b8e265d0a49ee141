"""Shell completion through a real bash (issue 21, point 2): the script ``orch completion
bash`` prints is sourced, COMP_WORDS and COMP_CWORD are set as bash sets them, the
completion function runs the installed entry point, and COMPREPLY is what bash would
offer. Commands, options and states come from click; attempt ids and task keys from a
real store, read without SQLAlchemy; a missing or corrupt store offers nothing, quietly.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orch.models import WORKER_END_STATES, State
from orch.store import open_store
from tests.support.cli import ORCH_BIN
from tests.support.store import StepClock, new_attempt, sqlite_url

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def complete(*words: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash offers for the command line ``words`` (the last one is being typed), via
    the script of the installed ``orch completion bash``. Asserts the completion itself
    was quiet: exit 0 and nothing on standard error."""
    script = (
        "source <(orch completion bash) || exit 90\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_orch_completion orch || exit 91\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        [str(BASH), "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        # the installed entry point first on PATH: the one the shell runs is the checkout's
        env={
            **os.environ,
            **(env or {}),
            "PATH": f"{Path(ORCH_BIN).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        timeout=60,
    )
    assert proc.returncode == 0, proc
    assert proc.stderr == "", proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def store_with(home: Path, *attempts: tuple[str, str]) -> Path:
    """The embedded store in ``home`` holding (id, task key) attempts, made through orch's
    store in this order, one second apart (the first is the oldest)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    clock = StepClock()
    with open_store(sqlite_url(home / "orch.db"), home / "locks", clock=clock) as store:
        for attempt_id, task_key in attempts:
            store.create_attempt(new_attempt("/repo", task_key, attempt_id=attempt_id), "test")
            clock.tick()
    return home / "orch.db"


# -- commands, options, states: click's own -------------------------------------------------


def test_completes_the_commands() -> None:
    from orch.cli.main import cli

    assert set(complete("orch", "")) == set(cli.every_command())
    assert complete("orch", "sh") == ["show"]
    assert complete("orch", "db", "up") == ["upgrade"]


def test_completes_an_option() -> None:
    assert complete("orch", "list", "--st") == ["--state"]
    assert "--max-attempts" in complete("orch", "retry", "--")


def test_completes_the_states_of_the_models() -> None:
    assert complete("orch", "list", "--state", "") == [str(s) for s in State]
    assert complete("orch", "cleanup", "--state", "t") == ["timed_out"]
    assert complete("orch", "finish", "0123abcd", "--state", "") == [
        str(s) for s in WORKER_END_STATES
    ]


def test_completes_the_shell_of_the_completion_command() -> None:
    assert complete("orch", "completion", "") == ["bash", "zsh", "fish"]


# -- attempt ids and task keys: the store, read without SQLAlchemy -------------------------


def test_completes_attempt_ids_by_prefix_newest_first(isolated_env: Path) -> None:
    store_with(
        isolated_env,
        ("abcd0001", "fix-http"),
        ("ffff0002", "add-docs"),
        ("abcd0003", "fix-http"),
        ("abce0004", "add-docs"),
    )
    assert complete("orch", "show", "abcd") == ["abcd0003", "abcd0001"]
    assert complete("orch", "show", "") == ["abce0004", "abcd0003", "ffff0002", "abcd0001"]
    assert complete("orch", "wait", "abcd0003", "abc") == ["abce0004", "abcd0003", "abcd0001"]
    assert complete("orch", "compare", "abcd0001", "ff") == ["ffff0002"]
    assert complete("orch", "work", "--attempt", "abce") == ["abce0004"]
    assert complete("orch", "show", "0000") == []


def test_completes_task_keys(isolated_env: Path) -> None:
    store_with(
        isolated_env,
        ("abcd0001", "fix-http"),
        ("abcd0002", "add-docs"),
        ("abcd0003", "fix-http"),
        ("abcd0004", "fix-cache"),
    )
    assert complete("orch", "list", "--task", "fix") == ["fix-cache", "fix-http"]
    assert complete("orch", "cleanup", "--task", "") == ["fix-cache", "fix-http", "add-docs"]
    assert complete("orch", "dispatch", "ad") == ["add-docs"]
    # retry takes either: the ids first, then the task keys
    ids = ["abcd0004", "abcd0003", "abcd0002", "abcd0001"]
    assert complete("orch", "retry", "a") == [*ids, "add-docs"]


def test_a_store_in_a_path_with_uri_characters(tmp_path: Path) -> None:
    home = tmp_path / "odd ?#%20 home"
    store_with(home, ("abcd0001", "fix-http"))
    assert complete("orch", "show", "ab", env={"ORCH_HOME": str(home)}) == ["abcd0001"]


def test_a_missing_store_offers_nothing_and_creates_nothing(isolated_env: Path) -> None:
    assert not isolated_env.exists()
    assert complete("orch", "show", "") == []
    assert complete("orch", "list", "--task", "") == []
    assert not isolated_env.exists()


def test_a_corrupt_store_offers_nothing_and_is_left_alone(isolated_env: Path) -> None:
    isolated_env.mkdir(mode=0o700)
    garbage = b"not a database\x00\xff\xfe" * 500
    (isolated_env / "orch.db").write_bytes(garbage)
    assert complete("orch", "show", "") == []
    assert complete("orch", "dispatch", "") == []
    assert (isolated_env / "orch.db").read_bytes() == garbage


def test_a_store_without_tables_offers_nothing(isolated_env: Path) -> None:
    isolated_env.mkdir(mode=0o700)
    (isolated_env / "orch.db").write_bytes(b"")
    assert complete("orch", "show", "") == []
    assert (isolated_env / "orch.db").read_bytes() == b""


def test_postgresql_offers_nothing_without_connecting() -> None:
    # port 1: nothing listens there; a connection attempt would fail or hang, not be quiet
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert complete("orch", "show", "", env={"ORCH_DATABASE_URL": url}) == []


def test_a_bad_config_file_offers_nothing(isolated_env: Path, tmp_path: Path) -> None:
    store_with(isolated_env, ("abcd0001", "fix-http"))
    config = tmp_path / "config.toml"
    config.write_text("this is = = not toml\n")
    assert complete("orch", "show", "", env={"ORCH_CONFIG": str(config)}) == []


def test_a_completion_request_never_imports_sqlalchemy(isolated_env: Path) -> None:
    store_with(isolated_env, ("abcd0001", "fix-http"))
    # the real entry point, whose fast exit runs atexit handlers: this one reports
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('heavy:', sorted({m.split('.')[0] for m in "
        "sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'jsonschema')})))\n"
        "from orch.cli import main\n"
        "main()\n"
    )
    env = {
        **os.environ,
        "_ORCH_COMPLETE": "bash_complete",
        "COMP_WORDS": "orch show ",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert proc.stdout.splitlines() == ["plain,abcd0001", "heavy: []"]


def test_a_completion_request_starts_no_dirt_check(repo: Path, tmp_path: Path) -> None:
    """argv says dispatch, but a completion request runs nothing: no ``git status``."""
    shims = tmp_path / "shims"
    shims.mkdir()
    marker = tmp_path / "git-ran"
    real_git = shutil.which("git")
    (shims / "git").write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexec {real_git} "$@"\n')
    (shims / "git").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "_ORCH_COMPLETE": "bash_complete",
        "COMP_WORDS": "orch dispatch ",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run(
        [ORCH_BIN, "dispatch", "some-task"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert not marker.exists(), marker.read_text()
    # the shim does see git when orch runs it (the check above could not pass vacuously)
    subprocess.run(["git", "status"], cwd=repo, env=env, capture_output=True, check=True)
    assert marker.exists()


# -- zsh and fish: the scripts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        (
            "bash",
            ["_orch_completion()", "_ORCH_COMPLETE=bash_complete", "-F _orch_completion orch"],
        ),
        ("zsh", ["#compdef orch", "_ORCH_COMPLETE=zsh_complete", "compdef _orch_completion orch"]),
        ("fish", ["_ORCH_COMPLETE=fish_complete", "complete --no-files --command orch"]),
    ],
)
def test_prints_the_script_of_each_shell(shell: str, expected: list[str]) -> None:
    proc = subprocess.run([ORCH_BIN, "completion", shell], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc
    for part in expected:
        assert part in proc.stdout, (part, proc.stdout)


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["-n"]), ("fish", ["--no-execute"])])
def test_the_script_parses_in_its_shell(shell: str, check: list[str], tmp_path: Path) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / f"orch.{shell}"
    script.write_text(
        subprocess.run(
            [ORCH_BIN, "completion", shell], capture_output=True, text=True, check=True
        ).stdout
    )
    proc = subprocess.run([exe, *check, str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc


def test_an_unknown_shell_is_refused() -> None:
    proc = subprocess.run([ORCH_BIN, "completion", "tcsh"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in proc.stderr


def test_task_keys_of_a_few_long_tasks_come_from_the_index(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # more attempts than the newest-first scan reads, of two tasks only: the index answers
    from orch.store import glance

    monkeypatch.setattr(glance, "_SCAN_ROWS", 64)
    monkeypatch.setattr(glance, "_BATCH", 16)
    attempts = [(f"{i:08x}", "old-task" if i == 0 else "busy-task") for i in range(100)]
    store_file = store_with(isolated_env, *attempts)
    assert [s.value for s in glance.task_keys(store_file, "")] == ["busy-task", "old-task"]
    assert [s.value for s in glance.task_keys(store_file, "", limit=1)] == ["busy-task"]
    assert [s.about for s in glance.task_keys(store_file, "old")] == ["latest 00000000 (queued)"]


def test_the_newest_ids_and_task_keys_are_read_without_sorting_the_table(
    isolated_env: Path,
) -> None:
    """The answers without a prefix read from the end of the table and stop; with one,
    they read the prefix's range of an index: never a sort of every attempt."""
    import sqlite3

    from orch.store import glance

    store_file = store_with(isolated_env, ("abcd0001", "fix-http"))
    conn = sqlite3.connect(store_file)
    try:

        def plan(sql: str, *params: object) -> str:
            return " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

        assert plan(glance._NEWEST_IDS, 200) == "SCAN attempts"
        assert plan(glance._NEWEST_TASKS) == "SCAN attempts"
        assert "USING INDEX sqlite_autoindex_attempts_1 (id>? AND id<?)" in plan(
            glance._NEWEST_IDS_FROM, "a", "b", 200
        )
        assert "USING COVERING INDEX ix_attempts_task_key (task_key>? AND task_key<?)" in plan(
            glance._NEWEST_TASKS_FROM, "a", "b", 200
        )
    finally:
        conn.close()
