"""A stand-in for ``gh`` (the GitHub CLI): GitHub cannot be reached from tests.

The stand-in replaces the ``gh`` program only, on PATH, and nothing behind it: orch runs
it as it would run gh, and it answers what gh answers, from files a test writes in its
state directory: ``gh auth status`` (logged in while ``logged-in`` exists), ``gh pr
create`` (the new pull request's URL on stdout, as gh prints it; the body it read from
standard input, ``--body-file -``, kept in ``body.md``), ``gh pr view N --json
…`` (``view.json``, shaped as gh's documented JSON fields: ``state``,
``statusCheckRollup`` of ``CheckRun`` items, ``reviews``, ``comments``, ``headRefOid``,
``baseRefName``, ``mergeCommit``, ``url``, ``number``) and ``gh run view RUN
--log-failed`` (``run-RUN.log``). Every call's arguments go to ``calls.jsonl``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import stand_in

PR_URL = "https://github.com/owner/repo/pull/42"

_SCRIPT = f"""#!{sys.executable}
import json, os, pathlib, sys
state = pathlib.Path(os.environ["GH_STATE"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:2] == ["auth", "status"]:
    if (state / "logged-in").exists():
        print("github.com\\n  Logged in to github.com account tester", file=sys.stderr)
        sys.exit(0)
    print("You are not logged into any GitHub hosts. To log in, run: gh auth login",
          file=sys.stderr)
    sys.exit(1)
if args[:2] == ["pr", "create"]:
    (state / "body.md").write_text(sys.stdin.read())
    print("{PR_URL}")
    sys.exit(0)
if args[:2] == ["pr", "view"]:
    sys.stdout.write((state / "view.json").read_text())
    sys.exit(0)
if args[:2] == ["run", "view"] and "--log-failed" in args:
    sys.stdout.write((state / f"run-{{args[2]}}.log").read_text())
    sys.exit(0)
print(f"unknown command: gh {{' '.join(args)}}", file=sys.stderr)
sys.exit(1)
"""


class FakeGitHub:
    """The stand-in's state directory: what it answers, and what it was asked."""

    def __init__(self, root: Path) -> None:
        self.state = root / "gh-state"
        self.state.mkdir()
        self.env = {**stand_in(root / "gh-bin", "gh", _SCRIPT), "GH_STATE": str(self.state)}
        self.log_in()

    def log_in(self) -> None:
        (self.state / "logged-in").touch()

    def log_out(self) -> None:
        (self.state / "logged-in").unlink()

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(ln) for ln in lines]

    def created_body(self) -> str:
        """The body the last ``gh pr create`` read from standard input."""
        return (self.state / "body.md").read_text()

    def answer_view(self, view: dict[str, Any]) -> None:
        (self.state / "view.json").write_text(json.dumps(view))

    def answer_run_log(self, run: int, log: str) -> None:
        (self.state / f"run-{run}.log").write_text(log)


def check_run(name: str, conclusion: str | None, run: int, workflow: str = "CI") -> dict[str, Any]:
    """A ``CheckRun`` of ``statusCheckRollup`` (conclusion None: still running)."""
    return {
        "__typename": "CheckRun",
        "name": name,
        "workflowName": workflow,
        "status": "COMPLETED" if conclusion else "IN_PROGRESS",
        "conclusion": conclusion or "",
        "detailsUrl": f"https://github.com/owner/repo/actions/runs/{run}/job/{run}1",
        "startedAt": "2026-12-07T04:00:00Z",
        "completedAt": "2026-12-07T04:05:00Z" if conclusion else "0001-01-01T00:00:00Z",
    }


def comment(id_: str, author: str, body: str, when: str) -> dict[str, Any]:
    """An issue comment as ``gh pr view --json comments`` gives it."""
    return {
        "id": id_,
        "author": {"login": author},
        "authorAssociation": "MEMBER",
        "body": body,
        "createdAt": when,
        "includesCreatedEdit": False,
        "isMinimized": False,
        "minimizedReason": "",
        "reactionGroups": [],
        "url": f"{PR_URL}#issuecomment-{id_}",
        "viewerDidAuthor": False,
    }


def review(id_: str, author: str, body: str, state: str, when: str) -> dict[str, Any]:
    """A review as ``gh pr view --json reviews`` gives it."""
    return {
        "id": id_,
        "author": {"login": author},
        "authorAssociation": "MEMBER",
        "body": body,
        "submittedAt": when,
        "includesCreatedEdit": False,
        "reactionGroups": [],
        "state": state,
        "commit": {"oid": "0" * 40},
    }


def pr_view(
    head: str,
    state: str = "OPEN",
    checks: list[dict[str, Any]] | None = None,
    comments: list[dict[str, Any]] | None = None,
    reviews: list[dict[str, Any]] | None = None,
    merge_commit: str | None = None,
) -> dict[str, Any]:
    """``gh pr view 42 --json state,statusCheckRollup,reviews,comments,url,number,
    headRefOid,baseRefName,mergeCommit``."""
    return {
        "state": state,
        "statusCheckRollup": checks or [],
        "reviews": reviews or [],
        "comments": comments or [],
        "url": PR_URL,
        "number": 42,
        "headRefOid": head,
        "baseRefName": "main",
        "mergeCommit": {"oid": merge_commit} if merge_commit else None,
    }
