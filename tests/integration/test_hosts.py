"""Several hosts on one machine: different host names, different clones, one store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.hosts import clones, orch_on
from tests.support.repos import git


def test_an_attempt_for_any_host_is_provisioned_by_the_host_that_claims_it(
    tmp_path: Path, store_url: str
) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    home_a, home_b = tmp_path / "home-alpha", tmp_path / "home-beta"
    sent = orch_on(
        "alpha", home_a, "dispatch", "--prompt", "p", "remote", "--host", "any", "--json", cwd=alpha
    )
    assert sent.returncode == 0, sent.stderr
    attempt = json.loads(sent.stdout)["attempt"]
    assert attempt["workspace_status"] == "pending" and attempt["worktree_path"] is None
    base = git("rev-parse", "HEAD", cwd=alpha).strip()
    assert attempt["base_commit"] == base
    # a worker on alpha without --repo does not take it; beta with its clone does
    idle = orch_on("alpha", home_a, "work", "--once", "--", "true", cwd=alpha)
    assert idle.returncode == 0 and idle.stdout == ""
    work = orch_on(
        "beta", home_b, "work", "--once", "--repo", str(beta), "--", "sh", "-c", "pwd", cwd=beta
    )
    assert work.returncode == 0, work.stderr
    shown = json.loads(orch_on("alpha", home_a, "show", attempt["id"], "--json", cwd=alpha).stdout)[
        "attempt"
    ]
    assert shown["state"] == "succeeded"
    assert shown["workspace_host"] == "beta" and shown["repository"] == str(beta)
    worktree = Path(shown["worktree_path"])
    assert worktree.is_relative_to(home_b / "worktrees")
    assert git("rev-parse", "HEAD", cwd=worktree).strip() == base
    assert str(worktree) in git("worktree", "list", "--porcelain", cwd=beta)
    assert str(worktree) not in git("worktree", "list", "--porcelain", cwd=alpha)
    payload = json.loads(Path(shown["payload_path"]).read_text())
    assert payload["host"] == "beta" and payload["worktree_path"] == str(worktree)
    # cleanup and doctor only touch their own host's worktrees
    skipped = orch_on("alpha", home_a, "cleanup", attempt["id"], cwd=alpha)
    assert "its worktree is on host beta" in skipped.stdout
    assert worktree.is_dir()
    assert orch_on("alpha", home_a, "doctor", cwd=alpha).returncode == 0
    removed = orch_on("beta", home_b, "cleanup", attempt["id"], cwd=beta)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert not worktree.exists()


def test_an_attempt_for_a_named_host_waits_for_that_host(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    home_a, home_b, home_c = (tmp_path / f"home-{n}" for n in ("a", "b", "c"))
    sent = orch_on(
        "alpha",
        home_a,
        "dispatch",
        "--prompt",
        "p",
        "for-beta",
        "--host",
        "beta",
        "--json",
        cwd=alpha,
    )
    attempt_id = json.loads(sent.stdout)["attempt"]["id"]
    other = orch_on("gamma", home_c, "work", "--once", "--repo", str(beta), "--", "true", cwd=beta)
    assert other.returncode == 0 and other.stdout == ""  # gamma is not beta
    taken = orch_on("beta", home_b, "work", "--once", "--repo", str(beta), "--", "true", cwd=beta)
    assert taken.returncode == 0 and attempt_id in taken.stdout


def test_a_base_the_clone_lacks_fails_the_attempt_cleanly(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = clones(tmp_path)
    (alpha / "app.txt").write_text("v2, never pushed\n")
    git("commit", "-q", "-am", "v2", cwd=alpha)
    sent = orch_on(
        "alpha",
        tmp_path / "ha",
        "dispatch",
        "--prompt",
        "p",
        "unpushed",
        "--host",
        "any",
        "--json",
        cwd=alpha,
    )
    attempt_id = json.loads(sent.stdout)["attempt"]["id"]
    work = orch_on(
        "beta", tmp_path / "hb", "work", "--once", "--repo", str(beta), "--", "true", cwd=beta
    )
    assert work.returncode == 0, work.stderr
    shown: dict[str, Any] = json.loads(
        orch_on("alpha", tmp_path / "ha", "show", attempt_id, "--json", cwd=alpha).stdout
    )["attempt"]
    assert shown["state"] == "failed"
    assert "is not in the clone" in (shown["summary"] or "")
    assert git("worktree", "list", "--porcelain", cwd=beta).count("worktree ") == 1
