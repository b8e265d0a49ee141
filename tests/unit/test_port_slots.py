"""Port slots and bundles: the slot table from config, the checks that every slot fits in
its attempt's block, the names and quoting of the exported variables, and the ports that
are never handed out (orch/config.py, orch/models/attempt.py, orch/system/ports.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orch.config import ConfigError, check_slots_fit, parse_slots, resolve
from orch.models import PortBundle
from orch.system.ports import (
    BROWSER_UNSAFE,
    block_usable,
    env_name,
    environment,
    export_lines,
    sh_quote,
)


def test_browser_unsafe_ports_are_never_handed_out() -> None:
    assert 10080 in BROWSER_UNSAFE
    assert not block_usable(10075, 10)


def test_port_slots_config(tmp_path: Path) -> None:
    assert parse_slots("web=0, api=1", "env") == {"web": 0, "api": 1}
    with pytest.raises(ConfigError):
        parse_slots("web=x", "env")
    with pytest.raises(ConfigError):
        resolve({"HOME": str(tmp_path), "ORCH_PORT_SLOTS": "web=150"})


def test_slots_from_a_table_or_a_string_with_blanks() -> None:
    assert parse_slots({"web": 0, "api": "3"}, "f") == {"web": 0, "api": 3}
    assert parse_slots("web=0,,api=1,", "e") == {"web": 0, "api": 1}
    assert parse_slots("", "e") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["web"], "port_slots from src must be a table of name = offset"),
        (3, "port_slots from src must be a table of name = offset"),
        ({"we b": 0}, "port_slots from src: invalid slot name 'we b'"),
        ({"web-ui": 0}, "port_slots from src: invalid slot name 'web-ui'"),
        ({"web": None}, "port_slots from src: offset of 'web' must be an integer"),
        ({"web": "1.5"}, "port_slots from src: offset of 'web' must be an integer"),
        ({"web": -1}, "port_slots from src: offset of 'web' must not be negative"),
    ],
)
def test_a_bad_slot_table_is_one_config_error(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_slots(value, "src")
    assert str(caught.value) == message


def test_every_slot_must_lie_inside_the_block() -> None:
    check_slots_fit({"web": 0, "db": 99}, 100, "port_slots")
    with pytest.raises(ConfigError, match=r"^\[ports\] slots offsets must be below "):
        check_slots_fit({"web": 0, "db": 100}, 100, "[ports] slots")


def test_a_bundle_names_its_ports_from_its_first_port() -> None:
    bundle = PortBundle(start=23000, size=100, slots={"web": 0, "db-main": 5})
    assert bundle.ports == {"base": 23000, "web": 23000, "db-main": 23005}
    assert bundle.end == 23099


def test_exported_names_are_upper_case_identifiers() -> None:
    assert env_name("web") == "ORCH_PORT_WEB"
    assert env_name("db-main") == "ORCH_PORT_DB_MAIN"
    assert env_name("db_main") == "ORCH_PORT_DB_MAIN"


def test_the_environment_and_the_export_lines_agree() -> None:
    bundle = PortBundle(start=23000, size=100, slots={"web": 0, "db_main": 5})
    env = environment(bundle)
    assert env == {
        "ORCH_PORT_BASE": "23000",
        "ORCH_PORT_WEB": "23000",
        "ORCH_PORT_DB_MAIN": "23005",
        "ORCH_PORT_COUNT": "100",
    }
    assert export_lines(bundle) == [f"export {k}='{v}'" for k, v in env.items()]


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("23000", "'23000'"), ("it's", "'it'\"'\"'s'"), ("$(rm -rf /)", "'$(rm -rf /)'"), ("", "''")],
)
def test_values_are_always_single_quoted(value: str, quoted: str) -> None:
    assert sh_quote(value) == quoted
