"""What ships in the wheel, and what an installed orch can do with it (issue 2, point 7).

The wheel is built from a copy of the project (so that parallel test workers and the
developer's own builds never share a ``build/`` directory), installed with
``pip install --target`` into a directory of its own and run from there, never from the
editable checkout: that is what proves the migrations and the payload schema travel with
the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from orch.cli.common import subcommands
from orch.cli.main import cli
from orch.store.revision import HEAD

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "alembic", "dulwich", "jsonschema")
IN_WHEEL = (
    "orch/migrations/env.py",
    "orch/migrations/versions/0001_initial.py",
    "orch/migrations/versions/0002_notify_attempt_changes.py",
    "orch/migrations/script.py.mako",
    "orch/schemas/payload-v1.schema.json",
)

# orch's main() as a plain (non-editable) install runs it, recording at exit where every orch
# module and the migrations came from (click's main always ends in sys.exit).
RUN_INSTALLED = """
import atexit, json, os, sys

def _record():
    origins = {name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())
               if name == "orch" or name.startswith("orch.")}
    revision = sys.modules.get("orch.store.revision")
    if revision is not None:
        origins["<migrations_dir>"] = str(revision.migrations_dir())
    with open(os.environ["ORIGINS_FILE"], "w") as fh:
        json.dump(origins, fh)

atexit.register(_record)
from orch.cli.main import main
main()
"""

# Ask every command and group for --help (and the group for --version) in one process, then
# report which heavy modules got imported.
HELP_EVERYTHING = """
import contextlib, io, json, sys
import click
from orch.cli.common import subcommands
from orch.cli.main import cli

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in subcommands(command).items():
            yield from walk(sub, [*path, name])

for args in [*([*p, "--help"] for p in walk(cli, [])), ["--version"]]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main(args, prog_name="orch")
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps(heavy))
"""


def run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "orch"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
        ),
    )
    out = tmp_path_factory.mktemp("wheel")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(source),
        ]
    )
    (built,) = out.glob("orch_worktrees-*.whl")
    return built


@pytest.fixture(scope="session")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ]
    )
    return target


def test_the_wheel_ships_migrations_and_schema(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in IN_WHEEL if name not in names]
    assert missing == [], f"not in {wheel.name}: {missing}"
    # nothing but the orch package and its metadata: no top-level migrations/ or tests/
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"orch"}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "orch = orch.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_an_installed_wheel_creates_migrates_and_dispatches(
    site: Path, tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo("installed-repo")
    home = tmp_path / "fresh-orch-home"
    workdir = tmp_path / "elsewhere"  # not the checkout: '' on sys.path must not find orch
    workdir.mkdir()
    origins_file = tmp_path / "origins.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ORCH_HOME": str(home),
        "ORIGINS_FILE": str(origins_file),
    }
    env.pop("ORCH_DATABASE_URL", None)

    def installed_orch(*args: str) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-c", RUN_INSTALLED, *args], cwd=workdir, env=env)

    def origins() -> dict[str, str]:
        found: dict[str, str] = json.loads(origins_file.read_text())
        outside = {k: v for k, v in found.items() if not (v and Path(v).is_relative_to(site))}
        assert outside == {}, f"imported from outside {site}: {outside}"
        return found

    # other tools are called orch too: the version names this one's distribution
    assert installed_orch("--version").stdout.startswith("orch (orch-worktrees) ")
    upgraded = installed_orch("db", "upgrade")
    assert upgraded.stdout == f"store at revision {HEAD} (head)\n"
    assert (home / "orch.db").is_file()
    used = origins()
    assert used["orch"] == str(site / "orch" / "__init__.py")
    assert used["<migrations_dir>"] == str(site / "orch" / "migrations")

    current = installed_orch("db", "current")
    assert current.stdout == f"store revision {HEAD}, orch head {HEAD}: up to date\n"

    dispatched = installed_orch(
        "dispatch", "--prompt", "p", "add-retries", "--repo", str(repo), "--json"
    )
    attempt = json.loads(dispatched.stdout)["attempt"]
    assert attempt["workspace_status"] == "ready"
    assert Path(attempt["worktree_path"]).is_dir()
    assert Path(attempt["worktree_path"]).resolve().is_relative_to(home.resolve())
    origins()

    # reading the payload back validates it against the schema shipped in the wheel
    shown = installed_orch("show", attempt["payload_path"], "--json")
    assert json.loads(shown.stdout)["attempt"]["id"] == attempt["id"]
    assert "orch.system.inbox" in origins()


def test_help_imports_no_heavy_modules() -> None:
    script = f"HEAVY = {HEAVY!r}\n" + HELP_EVERYTHING
    proc = run([sys.executable, "-c", script], cwd=ROOT)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_orch_entry_point_help_imports_no_heavy_modules(tmp_path: Path) -> None:
    """The same through the installed console script, read from ``-X importtime``."""
    orch_bin = shutil.which("orch", path=str(Path(sys.executable).parent))
    assert orch_bin is not None
    for args in (["--help"], ["db", "--help"], ["dispatch", "--help"]):
        proc = run([sys.executable, "-X", "importtime", orch_bin, *args], cwd=tmp_path)
        imported = [
            line.rsplit("|", 1)[-1].strip()
            for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        ]
        assert "click" in imported, "importtime output not understood"
        heavy = sorted({m for m in imported if m.split(".")[0] in HEAVY})
        assert heavy == [], (args, heavy)


def _commands(command: click.Command, path: str = "orch") -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(subcommands(command).items()):
            found += _commands(sub, f"{path} {name}")
    return found


def test_every_command_and_option_has_help_text() -> None:
    commands = _commands(cli)
    assert {"orch dispatch", "orch list", "orch show", "orch db upgrade"} <= dict(commands).keys()
    no_help = [path for path, cmd in commands if not (cmd.help or "").strip()]
    assert no_help == [], f"commands without help text: {no_help}"
    no_short = [path for path, cmd in commands if not cmd.get_short_help_str().strip()]
    assert no_short == []
    options = [
        f"{path} {param.opts[0]}"
        for path, cmd in commands
        for param in cmd.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert options == [], f"options without help text: {options}"


def test_a_plain_dispatch_imports_only_what_it_uses(repo: Path) -> None:
    """No ORM, no migrations, no pattern matcher for a repository without include rules:
    each costs every dispatch milliseconds to tens of them (bench/dispatch_bench.py)."""
    run(
        [sys.executable, "-m", "orch", "dispatch", "--prompt", "p", "first"], cwd=repo
    )  # creates the store
    proc = run(
        [sys.executable, "-X", "importtime", "-m", "orch", "dispatch", "--prompt", "p", "plain"],
        cwd=repo,
    )
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "sqlalchemy" in imported, "importtime output not understood"
    unused = sorted(m for m in imported if m.split(".")[0] in ("alembic", "pathspec", "dulwich"))
    unused += sorted(m for m in imported if m.startswith("sqlalchemy.orm"))
    # nor the standard library's archive, TOML (no config file here), secrets and getpass
    unused += sorted(
        imported & {"tarfile", "orch.system.archive", "tomllib", "secrets", "hmac", "getpass"}
    )
    assert unused == []


def test_every_package_of_the_source_tree_is_in_the_wheel() -> None:
    """setuptools' package list is written out by hand: a package missing from it is
    missing from every installed orch (orch.attempts.land once was), while an editable
    install and the tests never notice."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "orch").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set()
