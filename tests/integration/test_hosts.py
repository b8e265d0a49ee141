"""Several hosts on one machine: different host names, different clones, one store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cli import run_installed
from tests.support.repos import git


def _orch(host: str, home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_installed(*args, cwd=cwd, env={"ORCH_HOST_NAME": host, "ORCH_HOME": str(home)})


def _clones(tmp_path: Path) -> tuple[Path, Path, Path]:
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


def test_an_attempt_for_any_host_is_provisioned_by_the_host_that_claims_it(
    tmp_path: Path, store_url: str
) -> None:
    _upstream, alpha, beta = _clones(tmp_path)
    home_a, home_b = tmp_path / "home-alpha", tmp_path / "home-beta"
    sent = _orch(
        "alpha", home_a, "dispatch", "--prompt", "p", "remote", "--host", "any", "--json", cwd=alpha
    )
    assert sent.returncode == 0, sent.stderr
    attempt = json.loads(sent.stdout)["attempt"]
    assert attempt["workspace_status"] == "pending" and attempt["worktree_path"] is None
    base = git("rev-parse", "HEAD", cwd=alpha).strip()
    assert attempt["base_commit"] == base
    # a worker on alpha without --repo does not take it; beta with its clone does
    idle = _orch("alpha", home_a, "work", "--once", "--", "true", cwd=alpha)
    assert idle.returncode == 0 and idle.stdout == ""
    work = _orch(
        "beta", home_b, "work", "--once", "--repo", str(beta), "--", "sh", "-c", "pwd", cwd=beta
    )
    assert work.returncode == 0, work.stderr
    shown = json.loads(_orch("alpha", home_a, "show", attempt["id"], "--json", cwd=alpha).stdout)[
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
    skipped = _orch("alpha", home_a, "cleanup", attempt["id"], cwd=alpha)
    assert "its worktree is on host beta" in skipped.stdout
    assert worktree.is_dir()
    assert _orch("alpha", home_a, "doctor", cwd=alpha).returncode == 0
    removed = _orch("beta", home_b, "cleanup", attempt["id"], cwd=beta)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert not worktree.exists()


def test_an_attempt_for_a_named_host_waits_for_that_host(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = _clones(tmp_path)
    home_a, home_b, home_c = (tmp_path / f"home-{n}" for n in ("a", "b", "c"))
    sent = _orch(
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
    other = _orch("gamma", home_c, "work", "--once", "--repo", str(beta), "--", "true", cwd=beta)
    assert other.returncode == 0 and other.stdout == ""  # gamma is not beta
    taken = _orch("beta", home_b, "work", "--once", "--repo", str(beta), "--", "true", cwd=beta)
    assert taken.returncode == 0 and attempt_id in taken.stdout


def test_a_base_the_clone_lacks_fails_the_attempt_cleanly(tmp_path: Path, store_url: str) -> None:
    _upstream, alpha, beta = _clones(tmp_path)
    (alpha / "app.txt").write_text("v2, never pushed\n")
    git("commit", "-q", "-am", "v2", cwd=alpha)
    sent = _orch(
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
    work = _orch(
        "beta", tmp_path / "hb", "work", "--once", "--repo", str(beta), "--", "true", cwd=beta
    )
    assert work.returncode == 0, work.stderr
    shown: dict[str, Any] = json.loads(
        _orch("alpha", tmp_path / "ha", "show", attempt_id, "--json", cwd=alpha).stdout
    )["attempt"]
    assert shown["state"] == "failed"
    assert "is not in the clone" in (shown["summary"] or "")
    assert git("worktree", "list", "--porcelain", cwd=beta).count("worktree ") == 1
