"""Opening a directory in the user's editor: ``$VISUAL``, else ``$EDITOR`` (as git chooses).

Owns reading those variables and starting the editor in the foreground (a terminal editor
needs the terminal). Never decides which directory to open: the caller does.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from orch.errors import ConfigError, describe_os_error

VARIABLES = ("VISUAL", "EDITOR")


def editor_command(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """The variable that named the editor, and its command line (``code --wait`` works)."""
    for name in VARIABLES:
        value = env.get(name, "").strip()
        if not value:
            continue
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"${name} is not a command line ({exc}): {value!r}") from exc
        if argv:
            return name, argv
    raise ConfigError(
        "neither $VISUAL nor $EDITOR is set: set one (export EDITOR=vim), "
        'or go there with cd "$(orch path ATTEMPT)"'
    )


def open_in_editor(path: Path, env: Mapping[str, str]) -> int:
    """Run the editor on ``path`` (from inside it) and return its exit status."""
    name, argv = editor_command(env)
    command = [*argv, str(path)]
    try:
        return subprocess.run(command, cwd=path, env=dict(env), check=False).returncode
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot start the editor {argv[0]!r} (${name}): not found") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot start the editor {argv[0]!r} (${name}): {describe_os_error(exc)}"
        ) from exc
