"""What the cleanup, doctor and crash-safety tests (issue 4) share.

Attempts end for real: ``orch work --attempt ID -- sh -c '...'`` runs an agent script in
the attempt's worktree (a subprocess of the installed entry point) and ``orch cancel``
cancels. Every check asks git, the file system or orch itself; restoring saved work is
done with plain git and tar, in a fresh clone that holds only reachable objects, so a
commit counts as saved only if the archive really carries it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import (
    RunCli,
    attempts_of,
    git,
    json_out,
    orch_branches,
    payload_files,
    with_prompt,
    worktrees,
)

RunOrch = Callable[..., subprocess.CompletedProcess[str]]

LIVE = ("ready", "reused")

# An agent that commits, edits a tracked file, adds an untracked file and an ignored one.
AGENT_LEAVES_WORK = (
    "printf 'committed by the agent\\n' > agent.txt && git add agent.txt && "
    "git commit -q -m 'agent commit' && "
    "printf 'uncommitted edit\\n' >> src/d0/f0.txt && "
    "mkdir -p notes && printf 'untracked\\n' > notes/todo.txt && "
    "mkdir -p build && printf 'ignored\\n' > build/out.log"
)


def dispatch_id(run_cli: RunCli, repo: Path, task_key: str, *args: str) -> dict[str, Any]:
    result = run_cli("dispatch", task_key, "--json", *with_prompt(args), cwd=repo)
    attempt: dict[str, Any] = json_out(result)["attempt"]
    return attempt


def work(run_orch: RunOrch, repo: Path, attempt_id: str, script: str = "true") -> None:
    """Let the reference worker run ``script`` in the attempt's worktree; it succeeds."""
    proc = run_orch("work", "--attempt", attempt_id, "--", "sh", "-c", script, cwd=repo)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith(f"{attempt_id} succeeded"), proc.stdout


def cancel(run_cli: RunCli, repo: Path, attempt_id: str) -> None:
    result = run_cli("cancel", attempt_id, cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{attempt_id} cancelled"


def show(run_cli: RunCli, repo: Path, attempt_id: str) -> dict[str, Any]:
    attempt: dict[str, Any] = json_out(run_cli("show", attempt_id, "--json", cwd=repo))["attempt"]
    return attempt


def branch_tip(repo: Path, branch: str) -> str | None:
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() or None


def archives(home: Path) -> list[Path]:
    root = home / "archive"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def manifest(archive: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((archive / "manifest.json").read_text())
    return loaded


def fresh_clone(repo: Path, dest: Path) -> Path:
    """A clone holding only what the repository's refs reach (no shared object store)."""
    git("clone", "-q", "--no-local", str(repo), str(dest), cwd=repo.parent)
    return dest


def restore_commits(archive: Path, clone: Path) -> list[str]:
    """Run the manifest's own ``git fetch`` commands in ``clone``; return the fetched refs."""
    text = manifest(archive)["files"]["commits.bundle"]
    assert text.startswith("commits: ")
    fetched = []
    for command in text.removeprefix("commits: ").split("; "):
        argv = shlex.split(command)
        assert argv[:2] == ["git", "fetch"], command
        git("fetch", "-q", *argv[2:], cwd=clone)
        fetched.append(argv[-1].split(":", 1)[1])
    return fetched


def restore_worktree(archive: Path, clone: Path, start: str, dest: Path) -> Path:
    """A fresh worktree of ``clone`` at ``start`` with the saved patch and files restored."""
    git("worktree", "add", "-q", "--detach", str(dest), start, cwd=clone)
    files = manifest(archive)["files"]
    if "uncommitted.patch" in files:
        git("apply", str(archive / "uncommitted.patch"), cwd=dest)
    if "untracked.tar.gz" in files:
        subprocess.run(
            ["tar", "-C", str(dest), "-xzf", str(archive / "untracked.tar.gz")], check=True
        )
    return dest


def tarball_names(archive: Path) -> list[str]:
    with tarfile.open(archive / "untracked.tar.gz") as tar:
        return sorted(tar.getnames())


def reachable_from_a_branch(repo: Path, commit: str) -> bool:
    out = git("for-each-ref", "--contains", commit, "--format=%(refname)", "refs/heads/", cwd=repo)
    return bool(out.strip())


def commit_is_kept(repo: Path, home: Path, commit: str, scratch: Path) -> bool:
    """On a branch of ``repo``, or fetchable back from an archive bundle into a fresh clone."""
    if reachable_from_a_branch(repo, commit):
        return True
    for n, archive in enumerate(archives(home)):
        # an archive whose manifest was never written (killed while saving) counts for nothing
        if not (archive / "manifest.json").is_file():
            continue
        if "commits.bundle" not in manifest(archive)["files"]:
            continue
        clone = fresh_clone(repo, scratch / f"clone-{n}")
        for ref in restore_commits(archive, clone):
            proc = subprocess.run(
                ["git", "merge-base", "--is-ancestor", commit, ref], cwd=clone, capture_output=True
            )
            if proc.returncode == 0:
                return True
    return False


def doctor(run_cli: RunCli, repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("doctor", "--json", *args, cwd=repo)
    assert result.exit_code in (0, 18), (result.exit_code, result.output)
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["version"] == 1
    assert data["problems_left"] == len([f for f in data["findings"] if not f["fixed"]])
    assert (result.exit_code == 18) == (data["problems_left"] > 0), data
    return result.exit_code, data


def kinds(data: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in data["findings"])


def assert_consistent(run_cli: RunCli, repo: Path, home: Path) -> None:
    """What the issue calls consistent, checked against git and the disk, then doctor."""
    rows = attempts_of(run_cli, repo)
    assert not [r["id"] for r in rows if r["workspace_status"] == "provisioning"]
    live = {Path(r["worktree_path"]) for r in rows if r["workspace_status"] in LIVE}
    # no row pointing at nothing
    for path in live:
        assert path.is_dir(), f"a row with a live workspace points at nothing: {path}"
    # no orphan worktree: the main one plus the live rows', nothing stale
    listed = worktrees(repo)
    assert Path(listed[0]["worktree"]) == repo.resolve()
    assert {Path(w["worktree"]) for w in listed[1:]} == live, listed
    assert not [w for w in listed if "prunable" in w], listed
    # no orphan branch: every orch branch is named by a row that did not fail to provision
    owned = {r["branch_name"] for r in rows if r["workspace_status"] != "failed"}
    for ref in orch_branches(repo):
        assert ref.removeprefix("refs/heads/") in owned, f"orphan branch {ref}"
    # nothing under the worktree root that no live row owns
    roots = {Path(r["worktree_path"]).parent for r in rows if r["worktree_path"]}
    for root in roots:
        if root.is_dir():
            assert set(root.iterdir()) <= live, sorted(root.iterdir())
    # payloads: one per row that has one, no stray or partial files
    ids = {r["id"] for r in rows}
    for path in payload_files(home):
        assert not path.name.startswith("."), f"partial payload {path}"
        assert path.name.removesuffix(".json") in ids, f"payload without a row {path}"
    for r in rows:
        if r["workspace_status"] in LIVE and r["state"] in ("queued", "running"):
            assert Path(r["payload_path"]).is_file(), f"row without a payload {r['id']}"
    # no port bundle stays leased to a workspace that is gone
    for r in rows:
        if r["workspace_status"] not in LIVE:
            held = run_cli("ports", r["id"], "--json", cwd=repo)
            assert held.exit_code == 8, (r["id"], r["workspace_status"], held.output)
    code, data = doctor(run_cli, repo)
    assert code == 0, data
    assert data["findings"] == []


# -- a repository in every kind of trouble doctor knows -------------------------------------


def crashed_dispatch(run_orch: RunOrch, repo: Path, task_key: str, step: str) -> None:
    """``orch dispatch`` killed with SIGKILL at ``step`` (ORCH_CRASH_AT), once the git
    processes it had started are done too (a checkout outlives a killed dispatch, as
    any git process does; an operator's doctor runs after it)."""
    proc = run_orch("dispatch", "--prompt", "p", task_key, cwd=repo, env={"ORCH_CRASH_AT": step})
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)
    wait_for_git_under(repo.parent)


def wait_for_git_under(root: Path, timeout: float = 60.0) -> None:
    """Wait until no git process works in a directory under ``root``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if comm.startswith("git") and Path(cwd).is_relative_to(root):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.02)
    raise AssertionError(f"git still running under {root} after {timeout} s")


def worktree_dir(run_cli: RunCli, repo: Path) -> Path:
    """The directory orch puts this repository's worktrees in (from a real attempt)."""
    probe = dispatch_id(run_cli, repo, "probe")
    cancel(run_cli, repo, probe["id"])
    return Path(probe["worktree_path"]).parent


def orphan_worktree(repo: Path, root: Path, name: str, branch: str | None = None) -> dict[str, str]:
    """A worktree under orch's root that no row owns, with a commit and uncommitted work."""
    path = root / name
    branch = branch or f"orch/{name}"
    git("worktree", "add", "-q", "-b", branch, str(path), cwd=repo)
    (path / "stray.txt").write_text(f"committed in the stray worktree {name}\n")
    git("add", "stray.txt", cwd=path)
    git("commit", "-q", "-m", "stray commit", cwd=path)
    (path / "src/d0/f0.txt").write_text("edited in a stray worktree\n")
    (path / "loose.txt").write_text("untracked in a stray worktree\n")
    return {
        "path": str(path),
        "branch": branch,
        "commit": git("rev-parse", "HEAD", cwd=path).strip(),
    }


def orphan_branch(repo: Path, name: str, unique: bool = True) -> str:
    """``orch/<name>`` that no row owns, at a commit no other branch holds (if ``unique``)."""
    if unique:
        tree = git("rev-parse", "HEAD^{tree}", cwd=repo).strip()
        sha = git("commit-tree", tree, "-p", "HEAD", "-m", f"only on {name}", cwd=repo).strip()
    else:
        sha = git("rev-parse", "HEAD", cwd=repo).strip()
    git("branch", f"orch/{name}", sha, cwd=repo)
    return sha
