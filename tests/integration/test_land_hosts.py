"""Several machines (issue 19, point 7): with ``push = true`` ``orch work`` pushes an
attempt's branch to the remote when its run ends, and ``orch land`` on another host fetches
it from there and lands it; without a pushed branch it names the host that holds the
work; a push that fails is a warning and an event, never a failed run. A real bare
remote and two clones standing for two hosts, one store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orch.store import open_store
from tests.support.hosts import clones, orch_on
from tests.support.repos import git

AGENT = "printf 'v2\\n' > app.txt && git commit -qam 'v2 from beta'"


def worked_on_beta(
    tmp_path: Path, alpha: Path, beta: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """An attempt dispatched from alpha for any host, claimed and run by beta's worker
    (which commits on its branch); the attempt and what the worker printed on stderr."""
    sent = orch_on(
        "alpha",
        tmp_path / "home-a",
        "dispatch",
        "--prompt",
        "p",
        "remote",
        "--host",
        "any",
        "--json",
        cwd=alpha,
    )
    assert sent.returncode == 0, sent.stderr
    attempt_id = json.loads(sent.stdout)["attempt"]["id"]
    work = orch_on(
        "beta",
        tmp_path / "home-b",
        "work",
        "--once",
        "--repo",
        str(beta),
        "--",
        "sh",
        "-c",
        AGENT,
        cwd=beta,
        env=env,
    )
    assert work.returncode == 0, work.stderr
    assert work.stdout.startswith(f"{attempt_id} succeeded"), work.stdout
    return show(tmp_path, alpha, attempt_id), work.stderr


def show(tmp_path: Path, alpha: Path, attempt_id: str) -> dict[str, Any]:
    shown = orch_on("alpha", tmp_path / "home-a", "show", attempt_id, "--json", cwd=alpha)
    assert shown.returncode == 0, shown.stderr
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def test_a_pushed_branch_lands_on_another_host(tmp_path: Path, store_url: str) -> None:
    upstream, alpha, beta = clones(tmp_path)
    before = git("rev-parse", "main", cwd=alpha).strip()
    shown, said = worked_on_beta(tmp_path, alpha, beta, env={"ORCH_PUSH": "true"})
    attempt = shown["attempt"]
    assert attempt["workspace_host"] == "beta" and "push" not in said
    branch = attempt["branch_name"]
    tip = git("rev-parse", branch, cwd=beta).strip()
    # pushed to the remote when the run ended, and said in an event
    assert git("rev-parse", f"refs/heads/{branch}", cwd=upstream).strip() == tip
    [pushed] = [e for e in shown["events"] if e["kind"] == "branch_pushed"]
    assert pushed["detail"] == {"remote": "origin", "branch": branch, "commit": tip}
    assert git("branch", "--list", branch, cwd=alpha) == ""  # alpha has never seen it

    landed = orch_on(
        "alpha",
        tmp_path / "home-a",
        "land",
        "--repo",
        str(alpha),
        attempt["id"],
        "--json",
        cwd=alpha,
    )
    assert landed.returncode == 0, landed.stderr
    [outcome] = json.loads(landed.stdout)["outcomes"]
    assert (outcome["result"], outcome["target"], outcome["old"]) == ("landed", "main", before)
    new = git("rev-parse", "main", cwd=alpha).strip()
    assert outcome["commit"] == new and git("rev-parse", "main^", cwd=alpha).strip() == before
    assert (alpha / "app.txt").read_text() == "v2\n"  # alpha's checkout of main followed
    assert git("rev-parse", f"{new}^{{tree}}", cwd=alpha) == git(
        "rev-parse", f"{tip}^{{tree}}", cwd=beta
    )
    # beta's worktree is beta's to remove: land leaves it and says so
    assert "on host beta" in outcome["removed"]
    assert Path(attempt["worktree_path"]).is_dir()
    after = show(tmp_path, alpha, attempt["id"])["attempt"]
    assert (after["landed_commit"], after["landed_tip"]) == (new, tip)
    # on beta, cleanup counts what landed as saved, and the pushed copy goes too
    assert git("rev-parse", f"refs/heads/{branch}", cwd=upstream).strip() == tip
    removed = orch_on("beta", tmp_path / "home-b", "cleanup", attempt["id"], cwd=beta)
    assert removed.returncode == 0, removed.stderr
    assert not Path(attempt["worktree_path"]).exists()
    assert f"{attempt['id']}  deleted its branch on origin" in removed.stdout
    assert git("branch", "--list", branch, cwd=upstream) == ""


def test_without_a_pushed_branch_land_names_the_host(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    shown, _ = worked_on_beta(tmp_path, alpha, beta)  # push is off by default
    attempt = shown["attempt"]
    assert not [e for e in shown["events"] if e["kind"] in ("branch_pushed", "push_failed")]
    before = git("rev-parse", "main", cwd=alpha).strip()
    refused = orch_on(
        "alpha", tmp_path / "home-a", "land", "--repo", str(alpha), attempt["id"], cwd=alpha
    )
    assert refused.returncode == 22, refused.stderr
    assert refused.stdout == "" and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"Error: the work of attempt {attempt['id']} is on host beta")
    assert "set push = true there" in refused.stderr
    assert git("rev-parse", "main", cwd=alpha).strip() == before


def test_a_push_that_fails_is_a_warning_not_a_failed_run(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    shown, said = worked_on_beta(
        tmp_path, alpha, beta, env={"ORCH_PUSH": "1", "ORCH_PUSH_REMOTE": "nowhere"}
    )
    attempt = shown["attempt"]
    assert attempt["state"] == "succeeded"
    line = f"orch work: pushing {attempt['branch_name']} to nowhere failed: "
    assert line in said
    [failed] = [e for e in shown["events"] if e["kind"] == "push_failed"]
    assert failed["detail"]["remote"] == "nowhere" and failed["detail"]["error"]
    log = (tmp_path / "home-b" / "logs" / f"{attempt['id']}.log").read_text()
    assert line in log


def worked_here(tmp_path: Path, alpha: Path) -> dict[str, Any]:
    """An attempt dispatched and worked on alpha with push = true (its agent commits)."""
    home = tmp_path / "home-a"
    sent = orch_on("alpha", home, "dispatch", "--prompt", "p", "here", "--json", cwd=alpha)
    assert sent.returncode == 0, sent.stderr
    attempt: dict[str, Any] = json.loads(sent.stdout)["attempt"]
    agent = "echo x > x.txt && git add x.txt && git commit -qm x"
    work = orch_on(
        "alpha",
        home,
        "work",
        "--once",
        "--repo",
        str(alpha),
        "--",
        "sh",
        "-c",
        agent,
        cwd=alpha,
        env={"ORCH_PUSH": "1"},
    )
    assert work.returncode == 0, work.stderr
    return attempt


def land_here(tmp_path: Path, alpha: Path, attempt_id: str) -> dict[str, Any]:
    landed = orch_on("alpha", tmp_path / "home-a", "land", attempt_id, "--json", cwd=alpha)
    assert landed.returncode == 0, landed.stderr
    [outcome] = json.loads(landed.stdout)["outcomes"]
    assert outcome["result"] == "landed"
    found: dict[str, Any] = outcome
    return found


def test_landing_deletes_the_branch_its_worker_pushed(tmp_path: Path, store_url: str) -> None:
    upstream, alpha, _beta = clones(tmp_path)
    attempt = worked_here(tmp_path, alpha)
    outcome = land_here(tmp_path, alpha, attempt["id"])
    assert outcome["removed"].endswith("; deleted its branch on origin"), outcome["removed"]
    branch = attempt["branch_name"]
    assert git("branch", "--list", branch, cwd=upstream) == ""
    assert git("branch", "-r", "--list", f"origin/{branch}", cwd=alpha) == ""
    shown = show(tmp_path, alpha, attempt["id"])
    [deleted] = [e for e in shown["events"] if e["kind"] == "remote_branch_deleted"]
    assert deleted["detail"] == {
        "remote": "origin",
        "branch": branch,
        "commit": shown["attempt"]["landed_tip"],
    }


def test_a_commit_pushed_to_the_branch_since_is_never_deleted(
    tmp_path: Path, store_url: str
) -> None:
    upstream, alpha, beta = clones(tmp_path)
    attempt = worked_here(tmp_path, alpha)
    branch = attempt["branch_name"]
    git("fetch", "-q", "origin", f"{branch}:{branch}", cwd=beta)
    git("checkout", "-q", branch, cwd=beta)
    (beta / "later.txt").write_text("later\n")
    git("add", "later.txt", cwd=beta)
    git("commit", "-qm", "later", cwd=beta)
    git("push", "-q", "origin", branch, cwd=beta)  # someone else's commit on top
    later = git("rev-parse", "HEAD", cwd=beta).strip()

    outcome = land_here(tmp_path, alpha, attempt["id"])
    [warning] = outcome["warnings"]
    assert warning.startswith(f"its branch {branch} on origin was not deleted: ")
    assert git("rev-parse", f"refs/heads/{branch}", cwd=upstream).strip() == later


def test_a_branch_with_an_open_pull_request_is_kept_on_the_remote(
    tmp_path: Path, store_url: str
) -> None:
    """Deleting a pull request's head would close it: the copy stays (the pull request
    is recorded here through the store, as ``orch pr`` records it once gh opened it)."""
    upstream, alpha, _beta = clones(tmp_path)
    attempt = worked_here(tmp_path, alpha)
    store = open_store(store_url, tmp_path / "locks")
    try:
        store.record_pull_request(attempt["id"], "https://example.invalid/pull/7", 7, "test")
    finally:
        store.close()
    tip = git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=upstream).strip()
    outcome = land_here(tmp_path, alpha, attempt["id"])
    assert outcome["removed"].endswith("; kept its branch on origin: pull request #7 is open on it")
    assert git("rev-parse", f"refs/heads/{attempt['branch_name']}", cwd=upstream).strip() == tip
