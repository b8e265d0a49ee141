"""orch/config.py: settings resolved flag > environment > config file > default, bad values
refused with one ConfigError, and a repository's own orch.toml / [tool.orch]."""

from __future__ import annotations

from pathlib import Path

import pytest

from orch.config import Settings, check_slots_fit, config_file_path, default_home, resolve
from orch.errors import ConfigError, InvalidInput
from orch.repo_config import RepoConfig, load_repo_config, validate_sparse_paths


def env_with_config(tmp_path: Path, text: str | None = None, **env: str) -> dict[str, str]:
    """An environment whose user config file is ``tmp_path/config.toml`` (``text`` if given)."""
    config = tmp_path / "config.toml"
    if text is not None:
        config.write_text(text)
    return {"HOME": str(tmp_path), "ORCH_CONFIG": str(config), **env}


# -- where things live ------------------------------------------------------------------------


def test_home_is_orch_home_then_xdg_state_then_home() -> None:
    assert default_home({"ORCH_HOME": "/o", "XDG_STATE_HOME": "/x", "HOME": "/h"}) == Path("/o")
    assert default_home({"XDG_STATE_HOME": "/x", "HOME": "/h"}) == Path("/x/orch")
    assert default_home({"HOME": "/h"}) == Path("/h/.local/state/orch")


def test_config_file_is_orch_config_then_xdg_config_then_home() -> None:
    assert config_file_path({"ORCH_CONFIG": "/c.toml", "HOME": "/h"}) == Path("/c.toml")
    assert config_file_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path("/x/orch/config.toml")
    assert config_file_path({"HOME": "/h"}) == Path("/h/.config/orch/config.toml")


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = resolve({"HOME": str(tmp_path), "ORCH_HOME": str(tmp_path / "home")})
    home = tmp_path / "home"
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'orch.db'}"
    assert settings.worktree_root == (home / "worktrees").resolve()
    assert settings.config_file is None
    assert (settings.branch_prefix, settings.lease_ttl, settings.max_attempts) == ("orch", 30.0, 5)
    assert settings.port_slots == {"web": 0, "api": 1, "db": 2}
    assert (settings.inbox_dir, settings.logs_dir, settings.locks_dir) == (
        home / "inbox",
        home / "logs",
        home / "locks",
    )


# -- precedence ---------------------------------------------------------------------------------


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    text = 'branch_prefix = "file"\nlease_ttl = 11\nmax_attempts = 7\n'
    env = env_with_config(tmp_path, text, ORCH_LEASE_TTL="22", ORCH_MAX_ATTEMPTS="8")
    settings = resolve(env, {"max_attempts": 9, "lease_ttl": None})
    assert settings.config_file == tmp_path / "config.toml"
    assert settings.branch_prefix == "file"  # file over default
    assert settings.lease_ttl == 22.0  # environment over file (a None flag is not given)
    assert settings.max_attempts == 9  # flag over environment
    assert settings.retry_cooldown == Settings.retry_cooldown  # default


def test_agents_args_replace_a_template_s_options_and_keep_the_prompt_last(
    tmp_path: Path,
) -> None:
    from orch.attempts.agent_command import agent_command, resume_command

    text = '[agents.claude]\nargs = ["--permission-mode", "plan"]\n[agents.codex]\nargs = []\n'
    settings = resolve(env_with_config(tmp_path, text))
    assert settings.agent_args == {"claude": ("--permission-mode", "plan"), "codex": ()}
    given = settings.agent_args
    assert agent_command("claude", (), given) == (
        "claude",
        "-p",
        "--permission-mode",
        "plan",
        "--",
        "{prompt}",
    )
    assert resume_command("claude", given) == (
        "claude",
        "-p",
        "--permission-mode",
        "plan",
        "--continue",
        "--",
        "{prompt}",
    )
    assert agent_command("codex", (), given) == ("codex", "exec", "--", "{prompt}")
    # an agent the file does not name keeps its own options
    assert agent_command("gemini", (), given)[1] == "--skip-trust"
    assert resolve(env_with_config(tmp_path / "none")).agent_args == {}


@pytest.mark.parametrize(
    "text",
    [
        'agents = ["claude"]\n',
        '[agents.claude]\nargs = "--plan"\n',
        "[agents.claude]\nargs = [1]\n",
        '[agents.claude]\nflags = ["-x"]\n',
    ],
)
def test_bad_agents_args_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"\[agents"):
        resolve(env_with_config(tmp_path, text))


def test_an_empty_environment_variable_is_not_set(tmp_path: Path) -> None:
    env = env_with_config(tmp_path, "lease_ttl = 11\n", ORCH_LEASE_TTL="")
    assert resolve(env).lease_ttl == 11.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("off", False)],
)
def test_booleans_from_the_environment(tmp_path: Path, value: str, expected: bool) -> None:
    assert resolve(env_with_config(tmp_path, ORCH_POOL_REFILL=value)).pool_refill is expected


def test_port_slots_from_a_table_or_a_string(tmp_path: Path) -> None:
    from_file = resolve(env_with_config(tmp_path, "[port_slots]\nweb = 0\nadmin = 7\n"))
    assert from_file.port_slots == {"web": 0, "admin": 7}
    from_env = resolve(env_with_config(tmp_path, ORCH_PORT_SLOTS="web=0, api_2=3"))
    assert from_env.port_slots == {"web": 0, "api_2": 3}


def test_sqlite_synchronous_is_upper_cased(tmp_path: Path) -> None:
    env = env_with_config(tmp_path, ORCH_SQLITE_SYNCHRONOUS="full")
    assert resolve(env).sqlite_synchronous == "FULL"


# -- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("ORCH_LEASE_TTL", "soon", "lease_ttl from ORCH_LEASE_TTL must be a float: 'soon'"),
        ("ORCH_MAX_ATTEMPTS", "2.5", "max_attempts from ORCH_MAX_ATTEMPTS must be a int"),
        ("ORCH_MAX_ATTEMPTS", "0", "max_attempts from ORCH_MAX_ATTEMPTS must be positive"),
        ("ORCH_LEASE_TTL", "-1", "lease_ttl from ORCH_LEASE_TTL must be positive"),
        ("ORCH_POOL_REFILL", "maybe", "pool_refill from ORCH_POOL_REFILL must be true or false"),
        ("ORCH_PORT_SLOTS", "web=x", "offset of 'web' must be an integer"),
        ("ORCH_PORT_SLOTS", "web=-1", "offset of 'web' must not be negative"),
        ("ORCH_PORT_SLOTS", "we b=1", "invalid slot name 'we b'"),
        ("ORCH_PORT_SLOTS", "web=150", "port_slots offsets must be below port_block_size (100)"),
        ("ORCH_PORT_BASE", "80", "need 1024 <= port_base < port_limit <= 65535"),
        ("ORCH_PORT_LIMIT", "70000", "need 1024 <= port_base < port_limit <= 65535"),
        ("ORCH_SQLITE_SYNCHRONOUS", "off", "sqlite_synchronous must be FULL or NORMAL"),
        ("ORCH_BRANCH_PREFIX", "a/b", "invalid branch prefix 'a/b'"),
    ],
)
def test_a_bad_value_is_one_config_error(
    tmp_path: Path, var: str, value: str, message: str
) -> None:
    with pytest.raises((ConfigError, InvalidInput)) as caught:
        resolve(env_with_config(tmp_path, **{var: value}))
    assert message in str(caught.value)


def test_zero_means_none_only_where_it_may(tmp_path: Path) -> None:
    settings = resolve(env_with_config(tmp_path, ORCH_RETRY_COOLDOWN="0", ORCH_POOL_SIZE="0"))
    assert (settings.retry_cooldown, settings.pool_size) == (0.0, 0)
    with pytest.raises(ConfigError, match="must be positive"):
        resolve(env_with_config(tmp_path, ORCH_LEASE_TTL="0"))


def test_a_bad_flag_names_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="from the command line must be positive"):
        resolve(env_with_config(tmp_path), {"lease_ttl": -5})


def test_a_small_port_block_must_still_hold_the_default_slots(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"below port_block_size \(2\)"):
        resolve(env_with_config(tmp_path, ORCH_PORT_BLOCK_SIZE="2"))
    check_slots_fit({"web": 0, "db": 2}, 3, "port_slots")


def test_an_unknown_key_in_the_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in .*: lease_tll \(known: "):
        resolve(env_with_config(tmp_path, "lease_tll = 5\n"))


def test_a_config_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file "):
        resolve(env_with_config(tmp_path, "lease_ttl = = 5\n"))


def test_a_wrong_type_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(env_with_config(tmp_path, 'max_attempts = "many"\n'))
    assert str(caught.value) == (
        f"max_attempts from {tmp_path / 'config.toml'} must be a int: 'many'"
    )


def test_resolve_reads_only_the_mapping_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the process environment says otherwise; resolve must not look at it
    monkeypatch.setenv("ORCH_LEASE_TTL", "99")
    assert resolve(env_with_config(tmp_path)).lease_ttl == 30.0


# -- a repository's own config ------------------------------------------------------------------


def test_no_repository_config_is_the_default(tmp_path: Path) -> None:
    assert load_repo_config(tmp_path) == RepoConfig()
    (tmp_path / "pyproject.toml").write_text("[tool.other]\nx = 1\n")
    assert load_repo_config(tmp_path) == RepoConfig()


def test_orch_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "orch.toml").write_text(
        '[workspace]\nshared = [".venv/"]\nsetup = "make"\nsparse = ["src/", "src"]\n'
        "[ports]\nslots = {web = 0, api = 5}\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.orch.workspace]\nsetup = "other"\n')
    config = load_repo_config(tmp_path)
    assert config.source == tmp_path / "orch.toml"
    assert (config.shared, config.setup, config.sparse) == ((".venv",), "make", ("src",))
    assert config.port_slots == {"web": 0, "api": 5}


def test_tool_orch_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.orch.workspace]\nkeep_failed = true\nsetup_timeout = 5\n"
        'include = {".env" = "copy"}\n'
    )
    config = load_repo_config(tmp_path)
    assert config.source == tmp_path / "pyproject.toml"
    assert (config.keep_failed, config.setup_timeout) == (True, 5.0)
    assert config.include_modes == {".env": "copy"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[work]\nx = 1\n", "unknown section 'work'"),
        ("workspace = 1\n", "[workspace] in "),
        ("[workspace]\nsetpu = 'x'\n", "unknown key(s) in [workspace]"),
        ("[workspace]\ninclude = {'.env' = 'move'}\n", "each pattern maps to one of"),
        ("[workspace]\nshared = '.venv'\n", "must be a list of paths"),
        ("[workspace]\nshared = ['../x']\n", "must be a relative path inside the repository"),
        ("[workspace]\nshared = ['/']\n", "must be a relative path inside the repository"),
        ("[workspace]\nsetup = ['make']\n", "must be a command string"),
        ("[workspace]\nsetup_timeout = true\n", "setup_timeout in "),
        ("[workspace]\nsetup_timeout = 0\n", "must be positive"),
        ("[workspace]\nsetup_timeout = nan\n", "must be positive"),
        ("[workspace]\nkeep_failed = 'yes'\n", "keep_failed in "),
        ("[workspace]\nsparse = ['../up']\n", "invalid sparse path '../up'"),
        ("[ports]\nslots = {web = 'x'}\n", "offset of 'web' must be an integer"),
    ],
)
def test_a_bad_repository_config_is_one_config_error(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "orch.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_repo_config(tmp_path)
    assert message in str(caught.value)


@pytest.mark.parametrize("path", ["", "/abs", "-x", "a/../b", ".", "tab\there", "a\\b"])
def test_a_bad_sparse_path_is_refused(path: str) -> None:
    with pytest.raises(InvalidInput, match="invalid sparse path"):
        validate_sparse_paths([path])


def test_sparse_paths_are_stripped_and_deduplicated() -> None:
    assert validate_sparse_paths(["src/", " docs ", "src"]) == ("src", "docs")


def test_the_pooler_is_found_out_unless_said_and_listen_url_is_read_from_either_place(
    tmp_path: Path,
) -> None:
    assert resolve(env_with_config(tmp_path)).pooler is None
    assert resolve(env_with_config(tmp_path, ORCH_POOLER="true")).pooler is True
    assert resolve(env_with_config(tmp_path, ORCH_POOLER="off")).pooler is False
    direct = "postgresql://orch@db:5432/orch"
    from_file = resolve(env_with_config(tmp_path, f'pooler = true\nlisten_url = "{direct}"\n'))
    assert (from_file.pooler, from_file.listen_url) == (True, direct)
    assert resolve(env_with_config(tmp_path, ORCH_LISTEN_URL=direct)).listen_url == direct
