"""Several machines (issue 19, point 7): with ``push = true`` ``orch work`` pushes an
attempt's branch to the remote when its run ends, and ``orch land`` on another host fetches
it from there and lands it; without a pushed branch it names the host that holds the
work; a push that fails is a warning and an event, never a failed run. A real bare
remote and two clones standing for two hosts, one store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    # on beta, cleanup counts what landed as saved
    removed = orch_on("beta", tmp_path / "home-b", "cleanup", attempt["id"], cwd=beta)
    assert removed.returncode == 0, removed.stderr
    assert not Path(attempt["worktree_path"]).exists()


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
