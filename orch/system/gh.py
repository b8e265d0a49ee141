"""GitHub through its CLI, ``gh``: the only module that runs it.

orch opens a pull request (``gh pr create``), reads one (``gh pr view --json``) and a
failed run's log (``gh run view --log-failed``); ``gh`` knows the user's account, host
and repository from the checkout it runs in, so orch keeps no token of its own. Every
command runs in the repository's main worktree with a timeout; a ``gh`` that is missing
or not logged in is ``PullRequestUnavailable``, any other failure ``GitHubError``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orch.errors import GitHubError, PullRequestUnavailable
from orch.record import record

# what orch reads of a pull request (gh's documented --json fields)
VIEW_FIELDS = (
    "state,statusCheckRollup,reviews,comments,url,number,headRefOid,baseRefName,mergeCommit"
)
_TIMEOUT = 60.0
_PR_URL = re.compile(r"https?://\S+/pull/(\d+)\s*$")
_RUN_ID = re.compile(r"/actions/runs/(\d+)")


@record
class PullRequest:
    url: str
    number: int


class Gh:
    """``gh`` as found on ``PATH`` (of ``env``, by default this process's)."""

    def __init__(self, env: Mapping[str, str] | None = None, timeout: float = _TIMEOUT) -> None:
        self._env = dict(os.environ if env is None else env)
        # never a prompt, a pager or a colour code in what orch parses
        self._env.update({"GH_PROMPT_DISABLED": "1", "GH_PAGER": "cat", "NO_COLOR": "1"})
        self.timeout = timeout

    def _run(
        self, args: Sequence[str], cwd: Path, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        program = shutil.which("gh", path=self._env.get("PATH"))
        if program is None:
            raise PullRequestUnavailable("gh (the GitHub CLI) is not installed: see cli.github.com")
        argv = [program, *args]
        try:
            return subprocess.run(
                argv,
                cwd=cwd,
                env=self._env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
                input=input if input is not None else "",
            )
        except subprocess.TimeoutExpired as exc:
            raise GitHubError(f"gh {args[0]} {args[1]} took over {self.timeout:g}s") from exc
        except OSError as exc:
            raise PullRequestUnavailable(f"gh cannot start: {exc.strerror or exc}") from exc

    def _ok(self, args: Sequence[str], cwd: Path, input: str | None = None) -> str:
        done = self._run(args, cwd, input)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise GitHubError(f"gh {args[0]} {args[1]} failed: {why}")
        return done.stdout

    def check_logged_in(self, cwd: Path) -> None:
        """Raise ``PullRequestUnavailable`` unless ``gh auth status`` says logged in."""
        done = self._run(["auth", "status"], cwd)
        if done.returncode != 0:
            raise PullRequestUnavailable("gh is not logged in: run 'gh auth login'")

    def create(
        self,
        cwd: Path,
        head: str,
        title: str,
        body: str,
        base: str | None = None,
        draft: bool = False,
    ) -> PullRequest:
        """``gh pr create``; gh prints the new pull request's URL as its last line. The
        body goes on standard input (``--body-file -``): a long prompt would not fit in
        one argument."""
        args = ["pr", "create", "--head", head, "--title", title, "--body-file", "-"]
        if base is not None:
            args += ["--base", base]
        if draft:
            args.append("--draft")
        out = self._ok(args, cwd, body).strip()
        found = _PR_URL.search(out.splitlines()[-1] if out else "")
        if found is None:
            raise GitHubError(f"gh pr create printed no pull request URL: {out[-200:]!r}")
        return PullRequest(found.group(0).strip(), int(found.group(1)))

    def view(self, cwd: Path, number: int) -> dict[str, Any]:
        """``gh pr view NUMBER --json ...`` as a dict."""
        out = self._ok(["pr", "view", str(number), "--json", VIEW_FIELDS], cwd)
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise GitHubError(f"gh pr view printed no JSON: {out[:200]!r}") from exc
        if not isinstance(data, dict):
            raise GitHubError(f"gh pr view printed no JSON object: {out[:200]!r}")
        return data

    def failed_log(self, cwd: Path, run_id: str) -> str:
        """``gh run view RUN --log-failed``: the log lines of the run's failed steps."""
        return self._ok(["run", "view", run_id, "--log-failed"], cwd)


def run_id(details_url: str | None) -> str | None:
    """The Actions run a check's details URL points into (None: not an Actions run)."""
    found = _RUN_ID.search(details_url or "")
    return found.group(1) if found else None
