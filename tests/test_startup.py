"""The start-up tricks of ``orch.cli.startup`` agree with the command line they guess at,
and what a command starts last starts after everything else it does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_what_a_command_starts_last_starts_after_its_output_and_atexit_handlers() -> None:
    out = _python(
        """
        import atexit
        from orch.cli import startup
        startup.command_line_runs()
        atexit.register(lambda: print("atexit handler", flush=True))
        assert startup.start_last(lambda: print("started last", flush=True))
        print("output")
        startup.exit_now(0)
        print("never: the process has ended")
        """
    )
    assert out == "output\natexit handler\nstarted last\n"


def test_what_a_command_starts_last_starts_also_when_the_exit_keeps_its_teardown() -> None:
    out = _python(
        """
        import threading
        from orch.cli import startup
        startup.command_line_runs()
        go = threading.Event()
        other = threading.Thread(target=go.wait)
        other.start()  # a thread still running: exit_now must leave the exit to Python
        startup.start_last(lambda: print("started last", flush=True))
        startup.exit_now(0)
        print("normal exit")
        assert not startup.start_last(lambda: print("never"))  # once only
        go.set()
        """
    )
    assert out == "started last\nnormal exit\n"


def test_orch_in_process_starts_at_once() -> None:
    """No command line ends in this process (a test's runner): the caller starts now."""
    assert startup.start_last(lambda: None) is False
