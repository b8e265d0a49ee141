"""The start-up tricks of ``orch.cli.startup`` agree with the command line they guess at."""

from __future__ import annotations

import click

from orch.cli import startup
from orch.cli.main import cli


def _dispatch_options() -> tuple[set[str], set[str]]:
    """The names of dispatch's options that take a value, and of those that do not (its
    flags and the help options), as click itself parses them."""
    group_ctx = click.Context(cli, info_name="orch", **cli.context_settings)
    command = cli.commands["dispatch"]
    ctx = click.Context(command, info_name="dispatch", parent=group_ctx)
    with_value: set[str] = set()
    flags: set[str] = set()
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue
        names = {*param.opts, *param.secondary_opts}
        (flags if param.is_flag or param.count else with_value).update(names)
    return with_value, flags


def test_the_glance_knows_every_dispatch_option_that_takes_a_value() -> None:
    with_value, _ = _dispatch_options()
    assert with_value == startup.DISPATCH_VALUE_OPTIONS


def test_the_options_that_skip_the_early_check_are_dispatch_options() -> None:
    with_value, flags = _dispatch_options()
    assert with_value | flags >= startup.WITHOUT_CHECK
    assert {"-h", "--help"} <= flags
