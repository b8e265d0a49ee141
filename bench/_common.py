"""What every bench script shares: the isolated environment its commands run in, running a
command, finding the measured orch (its entry point, its Python, its source), and the
frame of a report (progress lines, its head, printing and saving it).

Imported by the scripts beside it (``python bench/x.py`` puts this folder first on
``sys.path``). Standard library only, like the scripts; it must never import orch, so that
a bench can measure an orch it has not imported itself, and it times nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def isolated_env(root: Path) -> dict[str, str]:
    """The environment every command runs in: a private HOME, git config and identity."""
    home = root / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        # PYTHONDONTWRITEBYTECODE would make every orch run compile its modules from source
        # (tens of ms an installed orch, compiled at install time, never pays); a pager
        # setting would put a pager in front of a timed command's output
        if not k.startswith(("ORCH_", "GIT_", "XDG_"))
        and k not in ("PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE", "PAGER", "LESS")
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "GIT_CONFIG_GLOBAL": str(gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "orch bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "orch bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "ORCH_HOME": str(root / "orch-home-unused"),
        }
    )
    return env


def run(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd``; a failure ends the bench with its standard error."""
    # a neutral cwd: `python -c` puts the cwd first on sys.path, so a source checkout there
    # would shadow the installed orch
    proc = subprocess.run(
        cmd,
        cwd=cwd or env["HOME"],
        env=env,
        input=input,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def find_orch(given: str | None) -> str:
    """The orch entry point: ``given``, else the one beside this Python, else on PATH."""
    if given:
        return given
    sibling = Path(sys.executable).parent / "orch"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    found = shutil.which("orch")
    if not found:
        raise SystemExit("cannot find the orch command: install orch or pass --orch PATH")
    return found


def python_of(orch: str) -> str:
    """The interpreter an entry-point script runs on (its shebang), for the floor."""
    try:
        first = Path(orch).read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return sys.executable
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return sys.executable


def _orch_dir(python: str, env: dict[str, str]) -> str:
    """The directory ``python`` imports orch from ('' if it cannot)."""
    return subprocess.run(
        [python, "-c", "import orch, os; print(os.path.dirname(orch.__file__))"],
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
    ).stdout.strip()


def orch_source(python: str, env: dict[str, str]) -> str:
    """Where the measured orch is imported from, and its commit (``-dirty`` if edited)."""
    where = _orch_dir(python, env)
    if not where:
        return "?"
    desc = subprocess.run(
        ["git", "-C", where, "describe", "--always", "--dirty"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{where} ({desc})" if desc else where


def compile_orch(
    python: str, env: dict[str, str], log: Callable[[str], None] | None = None
) -> None:
    """Byte-compile the measured orch package, as ``pip install`` does: a source checkout
    (editable install, --orch-ref) otherwise pays for compiling on the first run only if
    it may write ``__pycache__``, and on every run if it may not."""
    where = _orch_dir(python, env)
    if not where:
        return
    proc = subprocess.run(
        [python, "-m", "compileall", "-q", where],
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and log is not None:
        log(f"warning: could not byte-compile {where}; orch may compile on every run")


# -- the frame of a report --------------------------------------------------------------------


def log(msg: str) -> None:
    """A progress line, on stderr: stdout is the report's."""
    print(msg, file=sys.stderr, flush=True)


def add_orch_and_json(ap: argparse.ArgumentParser) -> None:
    """The options every report takes: which orch to measure, and a JSON copy of it."""
    ap.add_argument("--orch", default=None, help="the orch command (default: next to this Python)")
    ap.add_argument("--json", default=None, help="also write the report here")


@dataclasses.dataclass(frozen=True)
class BenchRun:
    """One run of a bench: its temporary directory, the orch it measures and the Python
    that orch runs on (for the floor), and the isolated environment commands run in."""

    root: Path
    orch: str
    python: str
    env: dict[str, str]


@contextlib.contextmanager
def bench_run(prefix: str, given_orch: str | None) -> Iterator[BenchRun]:
    """A run in a new temporary directory, removed afterwards by a detached ``rm -rf``
    (its worktrees are many files: the report does not wait for them)."""
    orch = find_orch(given_orch)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield BenchRun(root, orch, python_of(orch), isolated_env(root))
    finally:
        subprocess.Popen(["rm", "-rf", "--", str(root)], start_new_session=True)


def report_head(env: dict[str, str]) -> dict[str, Any]:
    """When the run started, the git it measured against, and the cores it had."""
    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": run(["git", "--version"], env).stdout.decode().split()[-1],
        "cores": os.cpu_count(),
    }


def publish(report: dict[str, Any], text: str, json_path: str | None) -> None:
    """Print the report's ``text``; the whole report as JSON too when asked."""
    print(text)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
