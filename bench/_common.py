"""What every bench script shares: the isolated environment its commands run in, running a
command, and finding the measured orch (its entry point, its Python, its source).

Imported by the scripts beside it (``python bench/x.py`` puts this folder first on
``sys.path``). Standard library only, like the scripts; it must never import orch, so that
a bench can measure an orch it has not imported itself, and it times nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


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
