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
    command = cli.every_command()["dispatch"]
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


def test_the_table_of_command_modules_names_what_each_module_defines() -> None:
    """``COMMAND_MODULES`` (what ``orch`` imports for which subcommand) against the
    modules themselves: every module of orch.cli that defines commands is in it, with
    exactly the names of its COMMANDS."""
    import importlib
    from pathlib import Path

    from orch.cli import main

    tables = {"cli": main.COMMAND_MODULES, "db": main.DB_COMMAND_MODULES}
    listed = {module for table in tables.values() for module in table}
    defining = {
        path.stem
        for path in Path(main.__file__).parent.glob("*.py")
        if "\nCOMMANDS = " in path.read_text(encoding="utf-8")
    }
    assert listed == defining
    for table in tables.values():
        for module, names in table.items():
            commands = importlib.import_module(f"orch.cli.{module}").COMMANDS
            assert tuple(c.name for c in commands) == names, module


def test_a_command_line_imports_its_own_command_module_only() -> None:
    from orch.cli import main

    out = _python(
        """
        import contextlib, io, sys
        from orch.cli.main import cli
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            cli.main(["land", "--help"], prog_name="orch")
        print(" ".join(sorted(m for m in sys.modules if m.startswith("orch.cli."))))
        """
    )
    loaded = set(out.split())
    assert "orch.cli.land_commands" in loaded
    assert not loaded & {f"orch.cli.{module}" for module in main.COMMAND_MODULES} - {
        "orch.cli.land_commands",
        "orch.cli.completion",  # the completers every command's arguments name
    }
