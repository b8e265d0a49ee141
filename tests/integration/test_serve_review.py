"""The dashboard's review reads (issue 18, point 6) on a real server bound to an ephemeral
loopback port: an attempt's diff and one file's patch, a task's comparison, the check
runs with their output.

Each read must be the very document its command prints (``orch diff --json``,
``orch compare TASK --json``), one file's patch must be git's own, and a bad id, file or
query must be a clean JSON refusal. Real repositories and worktrees, a real store on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch.attempts.review import PATCH_LIMIT
from orch.store import Store
from tests.support.attempts import dispatch
from tests.support.cli import RunCli, json_out
from tests.support.dashboard import (
    HOSTILE_LOG,
    HOSTILE_NAME,
    HOSTILE_SUBJECT,
    Served,
    commit_hostile_work,
    start,
)
from tests.support.repos import commit_all, git


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    yield from start(store)


def task() -> str:
    # the PostgreSQL store is shared by the tests of one xdist worker: compare reads
    # every attempt of a task
    return f"view-{uuid.uuid4().hex[:8]}"


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def test_diff_and_compare_are_the_documents_the_commands_print(
    repo: Path, run_cli: RunCli, served: Served
) -> None:
    key = task()
    first = dispatch(run_cli, repo, key)
    second = dispatch(run_cli, repo, key)
    worktree = Path(first["worktree_path"])
    commit_hostile_work(worktree)
    (worktree / "untracked.txt").write_text("new\n")
    commit_hostile_work(Path(second["worktree_path"]))

    files = {}
    # a subject in bytes that are not UTF-8 (no encoding header; git commit would have
    # converted them, fast-import and old tools do not): shown, not a failure
    head = git("rev-parse", "HEAD", cwd=worktree).strip()
    tree = git("rev-parse", "HEAD^{tree}", cwd=worktree).strip()
    who = b"A U Thor <author@example.invalid> 1700000000 +0000"
    raw = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\ncaf\xe9 au lait\n" % (
        tree.encode(),
        head.encode(),
        who,
        who,
    )
    made = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"],
        cwd=worktree, input=raw, capture_output=True, check=True,
    )  # fmt: skip
    git("reset", "-q", "--soft", made.stdout.decode().strip(), cwd=worktree)
    for query, flags in (("", ()), ("?committed=1", ("--committed",))):
        code, body = served.get(f"/api/attempts/{first['id']}/diff{query}")
        assert (code, body) == (200, json_out(run_cli("diff", first["id"], "--json", *flags)))
        subjects = [c["subject"] for c in body["commits"]]
        assert subjects == ["caf\ufffd au lait", HOSTILE_SUBJECT]
        files[query] = {f["path"] for f in body["files"]}
    assert files[""] == {HOSTILE_NAME, "src/d0/f0.txt", "untracked.txt"}
    assert files["?committed=1"] == {HOSTILE_NAME, "src/d0/f0.txt"}

    code, compared = served.get(f"/api/compare/{quoted(key)}")
    assert (code, compared) == (200, json_out(run_cli("compare", key, "--json")))
    assert [a["id"] for a in compared["attempts"]] == [first["id"], second["id"]]
    assert {c["path"] for c in compared["collisions"]} == {HOSTILE_NAME, "src/d0/f0.txt"}


def test_a_file_patch_is_gits_own_whatever_the_files_name(
    repo: Path, run_cli: RunCli, served: Served
) -> None:
    attempt = dispatch(run_cli, repo, task())
    worktree = Path(attempt["worktree_path"])
    base = attempt["base_commit"]
    latin1 = b"caf\xe9 [x]*.txt"  # not UTF-8, and a pattern if git read it as one
    with open(os.path.join(os.fsencode(worktree), latin1), "wb") as fh:
        fh.write(b"b\n")
    git("mv", "src/d1/f1.txt", "src/d1/moved.txt", cwd=worktree)
    tip = commit_hostile_work(worktree)
    (worktree / "fresh.txt").write_text("untracked\n")
    url = f"/api/attempts/{attempt['id']}/diff/file"

    def patch(name: str, old: str | None = None) -> str:
        names = [name] if old is None else [old, name]
        out = git("--literal-pathspecs", "diff", "-M", base, tip, "--", *names, cwd=repo)
        return out

    code, body = served.get(f"{url}?committed=1&path={quoted(HOSTILE_NAME)}")
    assert code == 200, body
    assert body["patch"] == patch(HOSTILE_NAME) and HOSTILE_NAME in body["patch"]
    assert body["file"] == {
        "path": HOSTILE_NAME, "status": "added", "additions": 2, "deletions": 0, "binary": False
    }  # fmt: skip
    assert body["truncated"] is False and body["attempt"] == attempt["id"]

    code, body = served.get(f"{url}?committed=1&path=src%2Fd1%2Fmoved.txt")
    assert code == 200 and body["file"]["old_path"] == "src/d1/f1.txt"
    assert body["patch"] == patch("src/d1/moved.txt", "src/d1/f1.txt")
    assert "rename from src/d1/f1.txt" in body["patch"]

    encoded = base64.b64encode(latin1).decode()
    code, body = served.get(f"{url}?path_base64={quoted(encoded)}")
    assert code == 200, body
    assert body["file"]["path_base64"] == encoded and body["file"]["path"] == "caf\ufffd [x]*.txt"
    assert "+b" in body["patch"].splitlines()

    # without committed=1 the worktree counts: an untracked file has a patch too
    code, body = served.get(f"{url}?path=fresh.txt")
    assert code == 200 and body["file"]["status"] == "added" and "+untracked" in body["patch"]
    assert served.get(f"{url}?committed=1&path=fresh.txt")[0] == 404


def test_a_long_patch_is_cut_at_the_limit(repo: Path, run_cli: RunCli, served: Served) -> None:
    attempt = dispatch(run_cli, repo, task())
    worktree = Path(attempt["worktree_path"])
    line = "0123456789abcdefghi\n"
    (worktree / "big.txt").write_text(line * (2 * PATCH_LIMIT // len(line)))
    commit_all(worktree, "big")
    code, body = served.get(f"/api/attempts/{attempt['id']}/diff/file?path=big.txt")
    assert code == 200 and body["truncated"] is True and body["limit"] == PATCH_LIMIT
    assert body["patch"].startswith("diff --git a/big.txt b/big.txt\n")
    assert len(body["patch"].encode()) == PATCH_LIMIT
    assert body["file"]["additions"] == 2 * PATCH_LIMIT // len(line)


def test_the_check_runs_come_newest_first_each_with_its_own_output(
    repo: Path, run_cli: RunCli, served: Served
) -> None:
    (repo / "orch.toml").write_text(
        f"[review]\ncheck = \"printf '%s\\\\n' 'first run' '{HOSTILE_LOG}'; exit 3\"\n"
    )
    commit_all(repo, "a check that fails")
    attempt = dispatch(run_cli, repo, task())
    url = f"/api/attempts/{attempt['id']}/checks"
    assert served.get(url) == (
        200,
        {"version": 1, "attempt": attempt["id"], "task_key": attempt["task_key"], "checks": []},
    )
    assert run_cli("check", attempt["id"], cwd=repo).exit_code == 14
    # the check command is read from the main worktree's orch.toml each time
    (repo / "orch.toml").write_text("[review]\ncheck = \"echo 'second run'\"\n")
    assert run_cli("check", attempt["id"], cwd=repo).exit_code == 0

    code, body = served.get(url)
    assert code == 200, body
    second, first = body["checks"]
    assert (second["result"], second["exit_code"], second["timed_out"]) == ("passed", 0, False)
    assert (first["result"], first["exit_code"]) == ("failed", 3)
    assert second["log"]["lines"] == ["second run"] and second["log"]["found"] is True
    assert first["log"]["lines"] == ["first run", HOSTILE_LOG]
    shown = json_out(run_cli("show", attempt["id"], "--json", cwd=repo))
    assert second == {**shown["check"], "log": second["log"]}


def test_bad_ids_files_and_queries_are_clean_json_refusals(
    repo: Path, run_cli: RunCli, served: Served
) -> None:
    attempt = dispatch(run_cli, repo, task())
    one = f"/api/attempts/{attempt['id']}"
    unknown = ("deadbeef/diff", "deadbeef/checks", "deadbeef/diff/file?path=x")
    for path in (*(f"/api/attempts/{u}" for u in unknown), "/api/compare/no-such-task"):
        code, body = served.get(path)
        assert (code, body["exit_code"]) == (404, 8), (path, body)
        assert body["error"].startswith(("no attempt 'deadbeef'", "no attempts of task")), body
    assert served.get(f"{one}/diff/file?path=nothing.txt")[1]["error"] == (
        f"attempt {attempt['id']} changed no file named 'nothing.txt' against its "
        f"base_commit {attempt['base_commit'][:12]}"
    )
    for path, status in (
        (f"{one}/diff/elsewhere", 404),
        ("/api/compare/a/b", 404),
        (f"{one}/diff/file", 400),
        (f"{one}/diff/file?path=a&path_base64=YQ%3D%3D", 400),
        (f"{one}/diff/file?path_base64=%25%25", 400),
        (f"{one}/diff?committed=maybe", 400),
        (f"{one}/diff?committed=1&committed=0", 400),
    ):
        code, body = served.get(path)
        assert code == status and body["version"] == 1 and body["error"], (path, body)

    git("worktree", "remove", "--force", attempt["worktree_path"], cwd=repo)
    git("branch", "-D", attempt["branch_name"], cwd=repo)
    code, body = served.get(f"{one}/diff")
    assert (code, body["exit_code"]) == (404, 8)
    assert body["error"] == (
        f"attempt {attempt['id']} has no worktree and its branch {attempt['branch_name']} is gone"
    )
