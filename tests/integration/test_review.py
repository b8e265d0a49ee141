"""``orch diff`` and ``orch compare A B`` (issue 18, points 1 and 5): what an attempt
changed against its recorded base_commit, wherever its work still is, and how two
attempts' results differ.

Real repositories and real worktrees; every expectation is checked against git itself
or against files the test wrote. The race test runs ``orch diff`` (through its use case,
in-process) while a shell loop commits in the same worktree the way an agent does.
"""

from __future__ import annotations

import base64
import os
import pty
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from orch.attempts.review import locate, with_untracked, worktree_stat
from orch.config import resolve
from orch.git import Git
from orch.store import open_store
from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, RunCli, RunOrch, assert_failed_cleanly, json_out
from tests.support.repos import commit_all, git

_FILE = {
    "type": "object",
    "required": ["path", "status", "additions", "deletions", "binary"],
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string"},
        "old_path": {"type": "string"},
        "path_base64": {"type": "string"},
        "old_path_base64": {"type": "string"},
        "status": {"enum": ["added", "modified", "deleted", "renamed", "copied", "type-changed"]},
        "additions": {"type": ["integer", "null"], "minimum": 0},
        "deletions": {"type": ["integer", "null"], "minimum": 0},
        "binary": {"type": "boolean"},
    },
}
DIFF_SCHEMA = {
    "type": "object",
    "required": [
        "version",
        "attempt",
        "task_key",
        "base_commit",
        "tip",
        "source",
        "committed_only",
        "branch_name",
        "worktree_path",
        "archive_path",
        "notes",
        "files",
        "commits",
        "totals",
    ],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "attempt": {"type": "string"},
        "task_key": {"type": "string"},
        "base_commit": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
        "tip": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
        "source": {"enum": ["worktree", "branch", "archive"]},
        "committed_only": {"type": "boolean"},
        "branch_name": {"type": ["string", "null"]},
        "worktree_path": {"type": ["string", "null"]},
        "archive_path": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"type": "string"}},
        "files": {"type": "array", "items": _FILE},
        "commits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sha", "subject", "author_name", "author_email", "date"],
                "additionalProperties": False,
                "properties": {
                    "sha": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
                    "subject": {"type": "string"},
                    "author_name": {"type": "string"},
                    "author_email": {"type": "string"},
                    "date": {"type": "string"},
                },
            },
        },
        "totals": {
            "type": "object",
            "required": ["files", "additions", "deletions", "binary", "commits"],
            "additionalProperties": {"type": "integer"},
        },
    },
}


def diff_json(run_cli: RunCli, repo: Path, attempt_id: str, *args: str) -> dict[str, Any]:
    body = json_out(run_cli("diff", attempt_id, "--json", *args, cwd=repo))
    jsonschema.validate(body, DIFF_SCHEMA)
    return body


def by_path(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in body["files"]}


def leave_work(worktree: Path) -> str:
    """A commit (a new file and a rename), then an uncommitted edit, an untracked file and
    an ignored one; returns the commit."""
    (worktree / "agent.txt").write_text("one\ntwo\n")
    git("mv", "src/d1/f1.txt", "src/d1/moved.txt", cwd=worktree)
    tip = commit_all(worktree, "agent commit")
    with open(worktree / "src/d0/f0.txt", "a") as fh:
        fh.write("uncommitted edit\n")
    (worktree / "notes.txt").write_text("untracked\n")
    (worktree / "build").mkdir()
    (worktree / "build" / "out.log").write_text("ignored\n")
    return tip


def test_diff_shows_commits_uncommitted_and_untracked_work(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-all")
    worktree = Path(attempt["worktree_path"])
    git("commit", "-q", "--allow-empty", "-m", "main moves on", cwd=repo)
    tip = leave_work(worktree)
    index_before = git("ls-files", "--stage", cwd=worktree)

    body = diff_json(run_cli, repo, attempt["id"])
    assert body["source"] == "worktree"
    assert body["base_commit"] == attempt["base_commit"]
    assert body["tip"] == tip
    files = by_path(body)
    assert set(files) == {"agent.txt", "src/d1/moved.txt", "src/d0/f0.txt", "notes.txt"}
    assert files["agent.txt"] == {
        "path": "agent.txt",
        "status": "added",
        "additions": 2,
        "deletions": 0,
        "binary": False,
    }
    assert files["src/d1/moved.txt"]["status"] == "renamed"
    assert files["src/d1/moved.txt"]["old_path"] == "src/d1/f1.txt"
    assert files["src/d0/f0.txt"]["status"] == "modified"
    assert files["notes.txt"]["status"] == "added"
    assert [c["sha"] for c in body["commits"]] == [tip]
    assert body["commits"][0]["subject"] == "agent commit"
    assert body["commits"][0]["author_email"] == "tests@orch.invalid"
    assert body["totals"] == {
        "files": 4,
        "additions": 4,
        "deletions": 0,
        "binary": 0,
        "commits": 1,
    }

    # the text forms are git's own for the same range, untracked file included
    patch = run_cli("diff", attempt["id"], cwd=repo)
    assert patch.exit_code == 0, patch.output
    assert "+uncommitted edit" in patch.stdout and "+untracked" in patch.stdout
    assert "\x1b[" not in patch.stdout  # plain when not on a terminal
    names = run_cli("diff", attempt["id"], "--name-only", cwd=repo)
    assert names.stdout.splitlines() == [
        "agent.txt",
        "notes.txt",
        "src/d0/f0.txt",
        "src/d1/moved.txt",
    ]
    stat = run_cli("diff", attempt["id"], "--stat", cwd=repo)
    assert stat.stdout.rstrip().endswith("4 files changed, 4 insertions(+)")
    # the worktree's own index and status are what the agent left
    assert git("ls-files", "--stage", cwd=worktree) == index_before
    assert "?? notes.txt" in git("status", "--porcelain", cwd=worktree)


def test_committed_leaves_out_the_worktree(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-committed")
    worktree = Path(attempt["worktree_path"])
    tip = leave_work(worktree)
    body = diff_json(run_cli, repo, attempt["id"], "--committed")
    assert body["committed_only"] is True
    assert set(by_path(body)) == {"agent.txt", "src/d1/moved.txt"}
    expected = git("diff", "--stat", attempt["base_commit"], tip, cwd=repo)
    # by id, by a 4-character prefix and by its payload's path alike
    for ref in (attempt["id"], attempt["id"][:4], attempt["payload_path"]):
        assert run_cli("diff", ref, "--committed", "--stat", cwd=repo).stdout == expected


def test_after_the_worktree_was_removed_the_branch_shows(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-branch")
    worktree = Path(attempt["worktree_path"])
    tip = leave_work(worktree)
    git("worktree", "remove", "--force", str(worktree), cwd=repo)
    body = diff_json(run_cli, repo, attempt["id"])
    assert body["source"] == "branch" and body["tip"] == tip
    assert set(by_path(body)) == {"agent.txt", "src/d1/moved.txt"}


def test_archived_worktree_with_its_branch_kept(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-kept")
    tip = leave_work(Path(attempt["worktree_path"]))
    cleaned = run_cli("cleanup", attempt["id"], "--force", "--keep-branch", cwd=repo)
    assert cleaned.exit_code == 0, cleaned.output
    saved = json_out(run_cli("show", attempt["id"], "--json", cwd=repo))["attempt"]
    assert saved["archive_path"]
    result = run_cli("diff", attempt["id"], "--json", cwd=repo)
    body = json_out(result)
    assert body["source"] == "branch" and body["tip"] == tip
    assert set(by_path(body)) == {"agent.txt", "src/d1/moved.txt"}
    assert body["notes"] == [result.stderr.removeprefix("Note: ").rstrip("\n")]
    assert saved["archive_path"] in result.stderr


def test_branch_deleted_by_hand_is_one_line(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-gone")
    git("worktree", "remove", "--force", attempt["worktree_path"], cwd=repo)
    git("branch", "-D", attempt["branch_name"], cwd=repo)
    line = assert_failed_cleanly(run_cli("diff", attempt["id"], cwd=repo), 8)
    assert line == (
        f"Error: attempt {attempt['id']} has no worktree and its branch "
        f"{attempt['branch_name']} is gone"
    )


def test_archive_only(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-archived")
    tip = leave_work(Path(attempt["worktree_path"]))
    cleaned = run_cli("cleanup", attempt["id"], "--force", cwd=repo)
    assert cleaned.exit_code == 0, cleaned.output
    shown = json_out(run_cli("show", attempt["id"], "--json", cwd=repo))["attempt"]
    assert shown["workspace_status"] == "archived"
    assert git("branch", "--list", attempt["branch_name"], cwd=repo) == ""

    result = run_cli("diff", attempt["id"], "--json", cwd=repo)
    body = json_out(result)
    jsonschema.validate(body, DIFF_SCHEMA)
    assert body["source"] == "archive" and body["tip"] == tip
    assert body["archive_path"] == shown["archive_path"]
    assert set(by_path(body)) == {"agent.txt", "src/d1/moved.txt"}
    assert result.stderr.startswith("Note: ")
    assert shown["archive_path"] in result.stderr

    # once the object store no longer holds the commit, one line naming the archive
    git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    git("gc", "-q", "--prune=now", cwd=repo)
    line = assert_failed_cleanly(run_cli("diff", attempt["id"], cwd=repo), 8)
    assert shown["archive_path"] in line and f"orch restore {attempt['id']}" in line


def test_binary_rename_and_awkward_names(repo: Path, run_cli: RunCli) -> None:
    attempt = dispatch(run_cli, repo, "review-names")
    worktree = Path(attempt["worktree_path"])
    (worktree / "image.bin").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    newline = "two\nlines.txt"
    (worktree / newline).write_text("a\n")
    latin1 = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(worktree), latin1), "wb") as fh:
        fh.write(b"b\n")
    git("mv", "src/d2/f2.txt", "src/d2/renamed.txt", cwd=worktree)
    commit_all(worktree, "awkward")
    (worktree / "spaced name.txt").write_text("untracked\n")  # uncommitted, untracked
    git("init", "-q", str(worktree / "cloned"), cwd=worktree)  # a repository, no commit

    result = run_cli("diff", attempt["id"], "--json", cwd=repo)
    body = json_out(result)
    jsonschema.validate(body, DIFF_SCHEMA)
    assert result.stderr == (
        "Note: untracked repositories inside the worktree are not shown: cloned/\n"
    )
    files = by_path(body)
    assert files["image.bin"]["binary"] is True
    assert files["image.bin"]["additions"] is None and files["image.bin"]["deletions"] is None
    assert files[newline]["status"] == "added" and files[newline]["additions"] == 1
    assert files["spaced name.txt"]["additions"] == 1
    assert files["src/d2/renamed.txt"]["old_path"] == "src/d2/f2.txt"
    odd = [f for f in body["files"] if "path_base64" in f]
    assert len(odd) == 1
    assert base64.b64decode(odd[0]["path_base64"]) == latin1
    assert odd[0]["path"] == "caf\ufffd.txt"
    assert body["totals"]["binary"] == 1


def test_a_20_mb_file_shows_in_stat_without_its_content(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = dispatch(run_cli, repo, "review-big")
    worktree = Path(attempt["worktree_path"])
    line = b"0123456789abcdefghi\n"
    (worktree / "big.txt").write_bytes(line * (20 * 1024 * 1024 // len(line)))
    proc = run_orch("diff", attempt["id"], "--stat", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) < 1000, len(proc.stdout)
    assert " big.txt | 1048576 +" in proc.stdout
    assert "1 file changed, 1048576 insertions(+)" in proc.stdout


def _stat_through_intent_to_add(worktree: Path, base: str, *options: str) -> str:
    """git's own stat with the untracked files, through an intent-to-add copy of the index
    (the way orch took before it had a quicker one)."""
    index = worktree / ".." / f"{worktree.name}.index"
    real = git("rev-parse", "--git-path", "index", cwd=worktree).strip()
    shutil.copyfile(real if os.path.isabs(real) else worktree / real, index)
    env = {**os.environ, "GIT_INDEX_FILE": str(index), "LC_ALL": "C"}
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--others", "--exclude-standard"],
        cwd=worktree,
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    files = b"".join(n + b"\0" for n in listed.split(b"\0") if n and not n.endswith(b"/"))
    add = ["git", "add", "-N", "--pathspec-from-file=-", "--pathspec-file-nul"]
    subprocess.run(add, cwd=worktree, input=files, env=env, check=True)
    diff = ["git", "diff", "-M", *options, base, "--"]
    out = subprocess.run(diff, cwd=worktree, capture_output=True, env=env, check=True).stdout
    index.unlink()
    return out.decode()


def test_stat_of_a_live_worktree_is_gits_with_the_untracked_files(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "review-quick-stat")
    worktree = Path(attempt["worktree_path"])
    (worktree / "src/d0/f0.txt").write_text("committed\n" * 30)
    commit_all(worktree, "agent commit")
    (worktree / "src/d1/f1.txt").write_text("uncommitted\n")
    (worktree / "src/d1/new.py").write_text("untracked = 1\n" * 12)
    (worktree / "data.bin").write_bytes(b"\0\1" * 500)
    (worktree / "scratch.log").write_text("ignored\n")
    git("init", "-q", str(worktree / "cloned"), cwd=worktree)
    index_before = git("ls-files", "--stage", cwd=worktree)

    proc = run_orch("diff", attempt["id"], "--stat", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _stat_through_intent_to_add(worktree, attempt["base_commit"], "--stat")
    assert "src/d1/new.py" in proc.stdout and "data.bin" in proc.stdout
    note = "Note: untracked repositories inside the worktree are not shown: cloned/\n"
    assert proc.stderr == note
    assert git("ls-files", "--stage", cwd=worktree) == index_before

    # on a terminal: coloured, as wide as the terminal, through the pager
    paged = tmp_path / "paged"
    out = _on_a_terminal(
        ["diff", attempt["id"], "--stat"], repo, {"GIT_PAGER": f"cat > '{paged}'", "COLUMNS": "70"}
    )
    assert out == ""
    expected = _stat_through_intent_to_add(
        worktree, attempt["base_commit"], "--stat=70", "--color=always"
    )
    assert paged.read_text() == expected and "\x1b[32m+" in expected


def test_unknown_attempt_and_conflicting_options(repo: Path, run_cli: RunCli) -> None:
    line = assert_failed_cleanly(run_cli("diff", "feedbeef", cwd=repo), 8)
    assert "feedbeef" in line
    attempt = dispatch(run_cli, repo, "review-options")
    assert_failed_cleanly(run_cli("diff", attempt["id"], "--stat", "--name-only", cwd=repo), 2)


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the installed orch with its standard output on a pseudo-terminal."""
    main, other = pty.openpty()
    try:
        proc = subprocess.run(
            [ORCH_BIN, *args],
            cwd=cwd,
            stdout=other,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            timeout=60,
        )
        os.close(other)
        other = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main)
        if other >= 0:
            os.close(other)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode(errors="replace")


def test_colour_and_pager_only_on_a_terminal(repo: Path, run_cli: RunCli, tmp_path: Path) -> None:
    attempt = dispatch(run_cli, repo, "review-terminal")
    (Path(attempt["worktree_path"]) / "new.txt").write_text("hello\n")
    paged = tmp_path / "paged"
    out = _on_a_terminal(
        ["diff", attempt["id"]], repo, {"GIT_PAGER": f"cat > '{paged}'", "PAGER": "false"}
    )
    assert out == ""
    assert "\x1b[32mhello" in paged.read_text()  # coloured, through GIT_PAGER
    out = _on_a_terminal(["diff", attempt["id"], "--no-pager"], repo, {"GIT_PAGER": "false"})
    assert "\x1b[32mhello" in out
    # a reader who quits the pager early is no failure (git's broken pipe is expected)
    (Path(attempt["worktree_path"]) / "long.txt").write_text("line\n" * 200_000)
    out = _on_a_terminal(["diff", attempt["id"]], repo, {"GIT_PAGER": "head -c 1 >/dev/null"})
    assert out == ""


def test_a_diff_that_races_with_files_being_rewritten_is_read_again(tmp_path: Path) -> None:
    """git maps a file to hash it: one an agent truncates meanwhile kills git with SIGBUS,
    or git reads fewer bytes than it was told (measured: 33 of 1,500 plain ``git diff
    --stat`` failed so). orch's reads of a live worktree make such a read again."""
    repo = tmp_path / "live"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    for k in range(7):
        (repo / f"f{k}.txt").write_text("x\n")
    commit_all(repo, "seven files")
    stop = threading.Event()

    def agent() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            for k in range(7):
                (repo / f"f{k}.txt").write_text(str(i) * (1 + i % 5000))

    writer = threading.Thread(target=agent)
    writer.start()
    adapter = Git()
    try:
        for _ in range(400):
            adapter.output_bytes(["--no-optional-locks", "diff", "-M", "--stat"], cwd=repo)
            adapter.output_head(["--no-optional-locks", "diff", "--numstat"], 1 << 20, cwd=repo)
    finally:
        stop.set()
        writer.join()


def test_diff_never_breaks_an_agent_committing_in_the_worktree(repo: Path, run_cli: RunCli) -> None:
    """200 diffs while an agent-like loop runs ``git add`` + ``git commit``: every one of
    the agent's commands succeeds (no ``index.lock`` failure), whether the diff reads the
    worktree's own index (``--no-optional-locks``) or a private copy of it."""
    attempt = dispatch(run_cli, repo, "review-race")
    worktree = Path(attempt["worktree_path"])
    stop = worktree.parent / f"{attempt['id']}.stop"
    agent = subprocess.Popen(
        [
            "sh",
            "-c",
            'i=0; while [ ! -e "$1" ]; do i=$((i+1)); echo "$i" > "f$((i % 7)).txt"; '
            'echo "$i" > "u$i.txt"; '
            "git add -A || echo FAILED add; "
            'git commit -q -m "step $i" || echo FAILED commit; '
            # a file touched but not changed: a diff that may write the index would
            'touch f$(((i + 3) % 7)).txt; done; echo "steps $i"',
            "agent",
            str(stop),
        ],
        cwd=worktree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    settings = resolve(os.environ, {})
    store = open_store(settings.database_url, settings.locks_dir)
    git_adapter = Git(settings.git_lock_timeout)
    try:
        deadline = time.monotonic() + 60
        quick = 0
        for i in range(200):
            # what orch diff --stat runs: the diff without a private index when it can,
            # else (and every fourth time anyway) through the private index
            found = locate(store, git_adapter, attempt["id"], committed=False)
            stat = worktree_stat(git_adapter, found, color=False, stat_width=None)
            quick += stat is not None
            if stat is None or i % 4 == 0:
                with with_untracked(git_adapter, found) as ready:
                    out = git_adapter.diff_output(ready.range, "stat", color=False)
            else:
                out = stat.output
            assert out.endswith(b"\n")
            assert time.monotonic() < deadline
    finally:
        stop.touch()
        output, _ = agent.communicate(timeout=60)
        store.close()
    assert agent.returncode == 0
    assert "index.lock" not in output and "FAILED" not in output, output
    steps = int(output.strip().rsplit(" ", 1)[-1])
    assert steps > 10, output  # the agent really committed meanwhile
    assert int(git("rev-list", "--count", "HEAD", cwd=worktree)) > steps // 2
    assert quick > 0  # the diff without a private index ran too


def test_compare_two_attempts(repo: Path, run_cli: RunCli) -> None:
    first = dispatch(run_cli, repo, "review-cmp")
    second = dispatch(run_cli, repo, "review-cmp")
    wt1, wt2 = Path(first["worktree_path"]), Path(second["worktree_path"])
    (wt1 / "answer.txt").write_text("one\n")
    tip1 = commit_all(wt1, "first answer")
    (wt2 / "answer.txt").write_text("two\nlines\n")
    (wt2 / "extra.txt").write_text("extra\n")
    tip2 = commit_all(wt2, "second answer")
    (wt2 / "scratch.txt").write_text("uncommitted\n")

    assert run_cli("compare", first["id"], second["id"], cwd=repo).stdout == git(
        "diff", "-M", tip1, tip2, cwd=repo
    )
    body = json_out(run_cli("compare", first["id"], second["id"], "--json", cwd=repo))
    assert body["from"]["attempt"] == first["id"] and body["to"]["tip"] == tip2
    files = by_path(body)
    assert set(files) == {"answer.txt", "extra.txt"}
    assert (files["answer.txt"]["additions"], files["answer.txt"]["deletions"]) == (2, 1)
    for entry in body["files"]:
        jsonschema.validate(entry, _FILE)
    stat = run_cli("compare", first["id"], second["id"], "--stat", cwd=repo)
    assert stat.stdout.rstrip().endswith("2 files changed, 3 insertions(+), 1 deletion(-)")

    index_before = git("ls-files", "--stage", cwd=wt2)
    git("init", "-q", str(wt2 / "cloned"), cwd=wt2)  # a nested repository: left out, said
    result = run_cli("compare", first["id"], second["id"], "--worktree", "--json", cwd=repo)
    with_worktree = json_out(result)
    assert set(by_path(with_worktree)) == {"answer.txt", "extra.txt", "scratch.txt"}
    assert git("ls-files", "--stage", cwd=wt2) == index_before
    assert result.stderr == (f"Note: untracked repositories in {wt2} are left out: cloned/\n")
    assert with_worktree["to"]["notes"] == [result.stderr[len("Note: ") :].rstrip("\n")]

    # a side without a worktree is compared by its branch, and says so
    git("worktree", "remove", "--force", str(wt1), cwd=repo)
    result = run_cli("compare", first["id"], second["id"], "--worktree", "--stat", cwd=repo)
    assert result.exit_code == 0, result.output
    assert f"Note: attempt {first['id']} has no worktree here: its branch is used" in (
        result.stderr
    )
    assert "scratch.txt" in result.stdout


def test_compare_refuses_attempts_of_different_repositories(
    make_repo: Callable[..., Path], run_cli: RunCli
) -> None:
    one, other = make_repo("one"), make_repo("other")
    a = dispatch(run_cli, one, "review-two-repos")
    b = dispatch(run_cli, other, "review-two-repos")
    line = assert_failed_cleanly(run_cli("compare", a["id"], b["id"], cwd=one), 2)
    assert "different repositories" in line
    assert_failed_cleanly(run_cli("compare", a["id"], "feedbeef", cwd=one), 8)
