"""Several hosts on one machine: a bare repository standing for the shared remote, clones
of it standing for each host's repository, and the installed ``orch`` run as one host
(its host name and orch home)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cli import run_installed
from tests.support.repos import git


def orch_on(
    host: str, home: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed ``orch`` as host ``host`` with its own orch home (one store for all)."""
    return run_installed(
        *args, cwd=cwd, env={"ORCH_HOST_NAME": host, "ORCH_HOME": str(home), **(env or {})}
    )


def clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare ``upstream.git`` with one commit on main, and two clones of it: alpha, beta."""
    upstream = tmp_path / "upstream.git"
    git("init", "-q", "--bare", "-b", "main", str(upstream), cwd=tmp_path)
    alpha = tmp_path / "alpha"
    git("clone", "-q", str(upstream), str(alpha), cwd=tmp_path)
    (alpha / "app.txt").write_text("v1\n")
    git("add", "-A", cwd=alpha)
    git("commit", "-q", "-m", "v1", cwd=alpha)
    git("push", "-q", "origin", "HEAD:main", cwd=alpha)
    beta = tmp_path / "beta"
    git("clone", "-q", str(upstream), str(beta), cwd=tmp_path)
    return upstream, alpha, beta
