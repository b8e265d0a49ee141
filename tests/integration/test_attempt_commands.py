"""Finding an attempt and its worktree as people do (issue 17.11, 17.13 and the asked-for
``orch path`` / ``orch open``): id prefixes, ``orch show``'s port bundle and worker,
``orch path``, ``orch open``.

Real repositories, real dispatches and the real store through the command line. ``orch
open``'s editor is a stand-in script that records its argv and working directory: it
replaces the editor binary only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path

import pytest

from orch.config import resolve
from orch.models import NewAttempt
from orch.store import open_store
from tests.support.attempts import dispatch, show
from tests.support.cli import RunCli, assert_failed_cleanly, json_out


def _attempt_with_id(attempt_id: str, task_key: str) -> None:
    """An attempt row with a chosen id (ids are random otherwise)."""
    settings = resolve(os.environ)
    with open_store(settings.database_url, settings.locks_dir) as store:
        store.create_attempt(
            NewAttempt(
                id=attempt_id,
                task_key=task_key,
                repository="/nowhere",
                base_ref="HEAD",
                base_commit="c0ffee" + "0" * 34,
                branch_name=f"orch/{task_key}-{attempt_id}",
                worktree_path=f"/nowhere/{task_key}-{attempt_id}",
                worker=None,
                prompt="p",
            ),
            "test",
        )


# -- id prefixes ---------------------------------------------------------------------------


def test_a_unique_prefix_of_four_characters_finds_the_attempt(
    run_cli: RunCli, tmp_path: Path, store_url: str
) -> None:
    stem = secrets.token_hex(3)  # the PostgreSQL store is shared: ids no other test uses
    _attempt_with_id(stem + "c7", "only")
    refs = [stem, stem + "c", stem + "c7"]
    if store_url.startswith("sqlite"):  # this test's own store: nothing else starts so
        refs.append(stem[:4])
    for ref in refs:
        assert show(run_cli, ref, tmp_path)["attempt"]["id"] == stem + "c7", ref


def test_a_prefix_shorter_than_four_characters_is_too_short_not_missing(
    run_cli: RunCli, tmp_path: Path, store_url: str
) -> None:
    stem = secrets.token_hex(3)
    _attempt_with_id(stem + "c7", "only")
    for ref in (stem[:3], stem[:1]):
        line = assert_failed_cleanly(run_cli("show", ref, cwd=tmp_path), 2)
        assert line == (
            f"Error: attempt id prefix {ref!r} is too short: give at least 4 characters of the id"
        )


def test_an_ambiguous_prefix_lists_the_candidates(
    run_cli: RunCli, tmp_path: Path, store_url: str
) -> None:
    stem = secrets.token_hex(3)
    _attempt_with_id(stem + "a1", "first")
    _attempt_with_id(stem + "b2", "second")
    line = assert_failed_cleanly(run_cli("show", stem, cwd=tmp_path), 8)
    assert line == (
        f"Error: attempt id prefix {stem!r} matches several attempts: "
        f"{stem}a1 (first), {stem}b2 (second)"
    )
    assert show(run_cli, stem + "b", tmp_path)["attempt"]["task_key"] == "second"


# -- orch show: port bundle and worker -----------------------------------------------------


def test_show_lists_the_port_bundle(repo: Path, run_cli: RunCli, store_url: str) -> None:
    attempt = dispatch(run_cli, repo, "ports")
    data = show(run_cli, attempt["id"], repo)
    ports = data["ports"]
    payload = json.loads(Path(attempt["payload_path"]).read_text())
    assert ports["ports"] == payload["ports"]
    start, size = ports["start"], ports["size"]
    text = run_cli("show", attempt["id"], cwd=repo).stdout
    slots = " ".join(f"{k}={v}" for k, v in ports["ports"].items())
    assert slots.startswith(f"base={start} web={start} ")
    assert re.search(rf"^ports +{start}-{start + size - 1} {slots}$", text, re.M), text


def test_show_and_the_dashboard_name_the_worker_alike(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, "who")
    assert attempt["worker_label"] == "(any)"
    claimed = json_out(run_cli("claim", attempt["id"], "--worker", "local", "--json", cwd=repo))
    assert claimed["attempt"]["worker_label"] == "local"
    text = run_cli("show", attempt["id"], cwd=repo).stdout
    # the dashboard shows `worker_label` of the same JSON (orch list --json, /api/attempts)
    assert re.search(r"^worker +local$", text, re.M), text
    listed = json_out(run_cli("list", "--json", cwd=repo))["attempts"]
    assert [a["worker_label"] for a in listed if a["id"] == attempt["id"]] == ["local"]
    dashboard = Path(__file__).parents[2] / "orch" / "serve" / "static" / "dashboard.html"
    page = dashboard.read_text()
    assert "a.lease_holder || a.worker" not in page
    assert page.count("a.worker_label") == 2


# -- orch path and orch open ---------------------------------------------------------------


def test_path_prints_the_worktree_for_cd(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "where")
    for ref in (attempt["id"], attempt["id"][:4], attempt["payload_path"]):
        result = run_cli("path", ref, cwd=repo)
        assert result.exit_code == 0, result.output
        assert result.stdout == attempt["worktree_path"] + "\n"
        assert result.stderr == ""


def test_path_of_an_unknown_attempt_is_exit_8(repo: Path, run_cli: RunCli) -> None:
    line = assert_failed_cleanly(run_cli("path", "ffffffff", cwd=repo), 8)
    assert line == "Error: no attempt 'ffffffff' in the store"
    assert_failed_cleanly(run_cli("path", "fff", cwd=repo), 2)


def test_path_of_a_worktree_that_is_gone_says_so(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "gone")
    shutil.rmtree(attempt["worktree_path"])
    line = assert_failed_cleanly(run_cli("path", attempt["id"], cwd=repo), 8)
    assert line == (
        f"Error: the worktree of attempt {attempt['id']} is gone: {attempt['worktree_path']} "
        "(workspace_status ready)"
    )


EDITOR = """#!{python}
import json, os, sys
with open({record!r}, "w") as fh:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd()}}, fh)
sys.exit(int(os.environ.get("EDITOR_EXIT", "0")))
"""


@pytest.mark.parametrize("variable", ["VISUAL", "EDITOR"])
def test_open_runs_the_editor_on_the_worktree(
    repo: Path,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    attempt = dispatch(run_cli, repo, "edit")
    record = tmp_path / "editor.json"
    editor = tmp_path / "my editor"
    editor.write_text(EDITOR.format(python=sys.executable, record=str(record)))
    editor.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setenv(variable, f"'{editor}' --wait")
    if variable == "VISUAL":
        monkeypatch.setenv("EDITOR", "/no/such/editor")  # $VISUAL comes first
    result = run_cli("open", attempt["id"][:5], cwd=repo)
    assert result.exit_code == 0, result.output
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["--wait", attempt["worktree_path"]]
    assert Path(seen["cwd"]).resolve() == Path(attempt["worktree_path"]).resolve()
    # the editor's own failure is its exit status
    monkeypatch.setenv("EDITOR_EXIT", "3")
    assert run_cli("open", attempt["id"], cwd=repo).exit_code == 3


def test_open_without_an_editor_says_so(
    repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt = dispatch(run_cli, repo, "edit")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    line = assert_failed_cleanly(run_cli("open", attempt["id"], cwd=repo), 11)
    assert line == (
        "Error: neither $VISUAL nor $EDITOR is set: set one (export EDITOR=vim), "
        'or go there with cd "$(orch path ATTEMPT)"'
    )
    monkeypatch.setenv("EDITOR", "no-such-editor-anywhere")
    line = assert_failed_cleanly(run_cli("open", attempt["id"], cwd=repo), 11)
    assert line == "Error: cannot start the editor 'no-such-editor-anywhere' ($EDITOR): not found"
