"""A repository's own config (``orch.toml`` or ``[tool.orch]``) and the port settings.

Each bad config is refused by a real dispatch with exit 11 and one ``Error:`` line, before
anything is created; each good one is checked by what the dispatch produced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.attempts import assert_nothing_left_behind, dispatch
from tests.support.cli import RunCli, assert_failed_cleanly
from tests.support.repos import commit_all, git, orch_branches, worktrees


@pytest.fixture
def cfg_repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo("cfg", files=1)


def _configure(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    commit_all(repo, f"configure {name}")


def _ports(attempt: dict[str, Any]) -> dict[str, int]:
    ports: dict[str, int] = json.loads(Path(attempt["payload_path"]).read_text())["ports"]
    return ports


def _refused(run_cli: RunCli, repo: Path, orch_home: Path) -> str:
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "refused", cwd=repo), 11)
    assert_nothing_left_behind(run_cli, repo, orch_home)
    return line


def test_orch_toml_at_the_root(cfg_repo: Path, run_cli: RunCli) -> None:
    _configure(cfg_repo, "orch.toml", "[ports]\nslots = {web = 0, admin = 9}\n")
    attempt = dispatch(run_cli, cfg_repo, "toml")
    ports = _ports(attempt)
    assert ports == {"base": ports["base"], "web": ports["base"], "admin": ports["base"] + 9}
    worktree = Path(attempt["worktree_path"])
    assert json.loads((worktree / ".orch" / "ports.json").read_text())["ports"] == ports
    got = run_cli("ports", attempt["id"], "--get", "admin")
    assert got.exit_code == 0 and got.stdout.strip() == str(ports["base"] + 9)
    # a slot the bundle does not have is bad input (issue 17, item 10)
    assert run_cli("ports", attempt["id"], "--get", "api").exit_code == 2


def test_tool_orch_in_pyproject(cfg_repo: Path, run_cli: RunCli, isolated_env: Path) -> None:
    _configure(
        cfg_repo,
        "pyproject.toml",
        '[project]\nname = "demo"\n\n'
        "[tool.orch.ports]\nslots = {web = 0, metrics = 5}\n\n"
        '[tool.orch.workspace]\nsetup = "echo from-pyproject"\n',
    )
    attempt = dispatch(run_cli, cfg_repo, "pyproject")
    assert set(_ports(attempt)) == {"base", "web", "metrics"}
    log = (isolated_env / "logs" / f"{attempt['id']}.log").read_text()
    assert "from-pyproject" in log.splitlines()


def test_orch_toml_wins_over_pyproject(cfg_repo: Path, run_cli: RunCli) -> None:
    (cfg_repo / "pyproject.toml").write_text("[tool.orch.ports]\nslots = {from_pyproject = 1}\n")
    _configure(cfg_repo, "orch.toml", "[ports]\nslots = {from_toml = 1}\n")
    assert set(_ports(dispatch(run_cli, cfg_repo, "both"))) == {"base", "from_toml"}


def test_pyproject_without_tool_orch_means_defaults(cfg_repo: Path, run_cli: RunCli) -> None:
    _configure(cfg_repo, "pyproject.toml", '[project]\nname = "demo"\n\n[tool.ruff]\nx = 1\n')
    assert set(_ports(dispatch(run_cli, cfg_repo, "plain"))) == {"base", "web", "api", "db"}


def test_an_unknown_section_is_refused_by_name(
    cfg_repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    _configure(cfg_repo, "orch.toml", '[workspce]\nsetup = "make"\n')
    line = _refused(run_cli, cfg_repo, isolated_env)
    assert "'workspce'" in line and str(cfg_repo / "orch.toml") in line


def test_an_unknown_key_is_refused_by_name(
    cfg_repo: Path, run_cli: RunCli, isolated_env: Path
) -> None:
    _configure(cfg_repo, "orch.toml", '[workspace]\nsetpu = "make"\nshared = [".cache"]\n')
    line = _refused(run_cli, cfg_repo, isolated_env)
    assert "setpu" in line and "[workspace]" in line


def test_an_unknown_key_in_tool_orch_is_refused_through_the_entry_point(
    cfg_repo: Path, run_cli: RunCli, run_orch: Any, isolated_env: Path
) -> None:
    _configure(cfg_repo, "pyproject.toml", "[tool.orch.ports]\nslot = {web = 0}\n")
    line = assert_failed_cleanly(run_orch("dispatch", "--prompt", "p", "refused", cwd=cfg_repo), 11)
    assert "slot" in line and "[tool.orch]" in line
    assert_nothing_left_behind(run_cli, cfg_repo, isolated_env)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param(
            '[workspace.include]\n"node_modules/" = "hardlinks"\n', "include", id="include-mode"
        ),
        pytest.param('[workspace]\ninclude = "copy"\n', "include", id="include-not-a-table"),
        pytest.param('[workspace]\nshared = ["/tmp/state"]\n', "/tmp/state", id="shared-absolute"),
        pytest.param('[workspace]\nshared = ["../outside"]\n', "../outside", id="shared-dotdot"),
        pytest.param(
            '[workspace]\nshared = ["state/../../outside"]\n',
            "state/../../outside",
            id="shared-dotdot-inside",
        ),
        pytest.param('[workspace]\nshared = [""]\n', "shared", id="shared-empty"),
        pytest.param('[workspace]\nshared = ".scratch"\n', "shared", id="shared-not-a-list"),
        pytest.param("[workspace]\nsetup = ['make', 'setup']\n", "setup", id="setup-not-a-string"),
        pytest.param("[workspace]\nsetup_timeout = 0\n", "setup_timeout", id="timeout-zero"),
        pytest.param("[workspace]\nsetup_timeout = -5\n", "setup_timeout", id="timeout-negative"),
        pytest.param('[workspace]\nsetup_timeout = "soon"\n', "setup_timeout", id="timeout-word"),
        pytest.param('[workspace]\nsetup_timeout = "30"\n', "setup_timeout", id="timeout-string"),
        pytest.param("[workspace]\nsetup_timeout = true\n", "setup_timeout", id="timeout-bool"),
        pytest.param("[workspace]\nsetup_timeout = nan\n", "setup_timeout", id="timeout-nan"),
        pytest.param("[workspace]\nsetup_timeout = inf\n", "setup_timeout", id="timeout-inf"),
        pytest.param('[ports]\nslots = {web = "x"}\n', "web", id="slot-not-int"),
        pytest.param("[ports]\nslots = {web = -1}\n", "web", id="slot-negative"),
        pytest.param('[ports]\nslots = {"web ui" = 0}\n', "web ui", id="slot-name"),
        pytest.param(
            "[ports]\nslots = {web = 0, admin = 100}\n", "port_block_size", id="slot-outside-block"
        ),
        pytest.param("workspace = 1\n", "[workspace] in", id="section-not-a-table"),
        pytest.param("[workspace\n", "cannot read", id="bad-toml"),
    ],
)
def test_a_bad_value_is_refused(
    cfg_repo: Path, run_cli: RunCli, isolated_env: Path, text: str, named: str
) -> None:
    _configure(cfg_repo, "orch.toml", text)
    line = _refused(run_cli, cfg_repo, isolated_env)
    assert named in line, line


def test_a_good_setup_timeout_is_taken(cfg_repo: Path, run_cli: RunCli) -> None:
    _configure(cfg_repo, "orch.toml", '[workspace]\nsetup = "true"\nsetup_timeout = 2.5\n')
    assert dispatch(run_cli, cfg_repo, "timeout")["workspace_status"] == "ready"


def test_repo_slots_must_fit_the_configured_block(
    cfg_repo: Path, run_cli: RunCli, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(cfg_repo, "orch.toml", "[ports]\nslots = {web = 0, admin = 9}\n")
    monkeypatch.setenv("ORCH_PORT_BLOCK_SIZE", "10")
    assert _ports(dispatch(run_cli, cfg_repo, "fits"))["admin"] % 10 == 9
    monkeypatch.setenv("ORCH_PORT_BLOCK_SIZE", "5")
    line = assert_failed_cleanly(
        run_cli("dispatch", "--prompt", "p", "too-small", cwd=cfg_repo), 11
    )
    assert "port_block_size (5)" in line
    assert len(orch_branches(cfg_repo)) == 1


# -- user-level config and the environment ------------------------------------------------


def _user_config(text: str) -> Path:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "orch" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _nothing_in_git(repo: Path) -> None:
    assert orch_branches(repo) == []
    assert [Path(w["worktree"]) for w in worktrees(repo)] == [repo.resolve()]


def test_user_config_with_an_unknown_key_is_refused(cfg_repo: Path, run_cli: RunCli) -> None:
    path = _user_config("port_bsae = 30000\n")
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "refused", cwd=cfg_repo), 11)
    assert "port_bsae" in line and str(path) in line
    _nothing_in_git(cfg_repo)


def test_user_config_slots_and_the_environment_over_them(
    cfg_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user_config("port_slots = {web = 0, docs = 4}\n")
    assert set(_ports(dispatch(run_cli, cfg_repo, "file"))) == {"base", "web", "docs"}
    monkeypatch.setenv("ORCH_PORT_SLOTS", " web=0 , admin=9,")
    ports = _ports(dispatch(run_cli, cfg_repo, "env"))
    assert ports == {"base": ports["base"], "web": ports["base"], "admin": ports["base"] + 9}


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("web", "'web'"),
        ("web=x", "'web'"),
        ("web=-1", "'web'"),
        ("web-ui=1", "'web-ui'"),
        ("web=0,admin=100", "port_block_size"),
    ],
)
def test_bad_port_slots_in_the_environment(
    cfg_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("ORCH_PORT_SLOTS", value)
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "refused", cwd=cfg_repo), 11)
    assert named in line, line
    _nothing_in_git(cfg_repo)


def test_a_block_too_small_for_the_default_slots_is_refused(
    cfg_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_PORT_BLOCK_SIZE", "2")  # db is slot 2: outside a block of 2
    line = assert_failed_cleanly(run_cli("dispatch", "--prompt", "p", "refused", cwd=cfg_repo), 11)
    assert "port_block_size (2)" in line
    _nothing_in_git(cfg_repo)
    monkeypatch.setenv("ORCH_PORT_BLOCK_SIZE", "3")
    ports = _ports(dispatch(run_cli, cfg_repo, "three"))
    assert ports["db"] == ports["base"] + 2
    assert git("status", "--porcelain", cwd=cfg_repo) == ""
