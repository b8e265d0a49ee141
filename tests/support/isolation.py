"""The environment every test runs in: a home of its own, none of the developer's ORCH_
and GIT_ variables, and (for tests that run git) a pinned git identity and config.

Only sets environment variables through pytest's monkeypatch, so everything is undone
after the test; never touches the real home.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GITCONFIG = (
    "[user]\n\tname = orch tests\n\temail = tests@orch.invalid\n"
    "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
)


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path, orch_home: Path) -> None:
    """Forget the developer's ORCH_ and GIT_ variables; HOME, XDG and ORCH_HOME point here."""
    for var in list(os.environ):
        if var.startswith(("ORCH_", "GIT_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("ORCH_HOME", str(orch_home))


def pin_git(monkeypatch: pytest.MonkeyPatch, gitconfig: Path) -> None:
    """git reads only ``gitconfig`` (written here) and commits as one fixed author at one
    fixed time, so commit ids are the same on every machine."""
    gitconfig.write_text(GITCONFIG)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "orch tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@orch.invalid")
        monkeypatch.setenv(f"GIT_{role}_DATE", "2026-01-01T00:00:00Z")
