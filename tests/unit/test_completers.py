"""Which parameters complete what (issue 21, point 2): every parameter that names an
attempt completes attempt ids, every one that names a task completes task keys, and no
argument is left out by accident. Checked on click's command tree, with the store's
reads replaced, so a command added later without a completer fails here."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from orch.cli.common import subcommands
from orch.cli.main import cli
from orch.store import glance
from orch.store.glance import Suggestion

AN_ID = Suggestion("a0a0a0a0", "some-task (queued)")
A_KEY = Suggestion("some-task", "1 attempt(s)")

# arguments that are free text or a path: nothing in the store to offer
FREE_ARGUMENTS = {
    ("send", "message"),
    ("restore", "target"),
    ("work", "command"),
    ("completion", "shell"),  # a choice of its own
}
# the parameters that take either an attempt or a task key
EITHER = {("retry", "ref"), ("compare", "first")}


def _commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[click.Command, str]]:
    for name, command in subcommands(group).items():
        if isinstance(command, click.Group):
            yield from _commands(command, click.Context(command, parent=ctx, info_name=name))
        else:
            yield command, name


def _parameters() -> Iterator[tuple[str, click.Parameter]]:
    for command, name in _commands(cli, click.Context(cli, info_name="orch")):
        for param in command.params:
            yield name, param


def _names_an_attempt(param: click.Parameter) -> bool:
    """An ATTEMPT argument, or ``--attempt`` (``dispatch --attempts N`` is a count)."""
    if isinstance(param, click.Argument):
        return param.name in ("attempt", "attempts") or "ATTEMPT" in (param.metavar or "")
    return "--attempt" in param.opts


def _names_a_task(param: click.Parameter) -> bool:
    return param.name == "task_key" or "--task" in getattr(param, "opts", ())


def _offers(param: click.Parameter) -> list[str]:
    ctx = click.Context(click.Command("x"))
    return [item.value for item in param.shell_complete(ctx, "")]


@pytest.fixture(autouse=True)
def _store_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glance, "attempt_ids", lambda *_a, **_k: [AN_ID])
    monkeypatch.setattr(glance, "task_keys", lambda *_a, **_k: [A_KEY])


def test_every_attempt_parameter_completes_attempt_ids() -> None:
    attempt_params = [(n, p) for n, p in _parameters() if _names_an_attempt(p)]
    assert len(attempt_params) >= 15  # the finder finds them
    for name, param in attempt_params:
        expected = [AN_ID.value, A_KEY.value] if (name, param.name) in EITHER else [AN_ID.value]
        assert _offers(param) == expected, (name, param.name)


def test_compare_completes_attempt_ids_on_both_sides() -> None:
    """The first word may also be a task key (``orch compare TASK``), the second is an
    attempt."""
    compare = cli.every_command()["compare"]
    assert [_offers(p) for p in compare.params if isinstance(p, click.Argument)] == [
        [AN_ID.value, A_KEY.value],
        [AN_ID.value],
    ]


def test_every_task_parameter_completes_task_keys() -> None:
    task_params = [(n, p) for n, p in _parameters() if _names_a_task(p)]
    assert {n for n, _p in task_params} >= {"dispatch", "submit", "release", "list", "cleanup"}
    for name, param in task_params:
        assert _offers(param) == [A_KEY.value], (name, param.name)


def test_every_argument_completes_something_or_is_free_text() -> None:
    for name, param in _parameters():
        if isinstance(param, click.Argument) and (name, param.name) not in FREE_ARGUMENTS:
            assert _offers(param), f"orch {name} {param.human_readable_name} completes nothing"


def test_a_path_completes_as_a_file() -> None:
    show = cli.every_command()["show"]
    (argument,) = [p for p in show.params if isinstance(p, click.Argument)]
    ctx = click.Context(show)
    for word in ("./inbox/a", "~/x", "/tmp/p.json", "inbox/a0.json"):
        (item,) = argument.shell_complete(ctx, word)
        assert (item.type, item.value) == ("file", word)


def test_postgresql_offers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:1/none")
    assert _offers(next(p for n, p in _parameters() if n == "show")) == []


def test_the_glance_imports_no_sqlalchemy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, orch.store.glance; print(sorted(m for m in sys.modules if 'sqlalchemy' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
