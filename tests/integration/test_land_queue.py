"""The land queue of ``orch serve`` (issue 19, point 5): ``orch land --queue`` records
lands, the loop (``orch loop --once``, the installed ``orch``) lands them in order with
``orch land``'s own use case, and each entry keeps its result (the landed commit, a
conflict's paths, a refusal's line) for ``orch land --queue`` and the dashboard's
``/api/lands`` to show. Real repositories, real workers, SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.models import LandQueueState
from orch.store import Store, open_store
from tests.support.attempts import dispatch
from tests.support.cli import RunCli, RunOrch, assert_failed_cleanly, json_out
from tests.support.dashboard import Served, start
from tests.support.landing import attempt_with_commits, land, rev
from tests.support.repos import branch_tip, git
from tests.support.store import settings

# an agent that changes the same line as AGENT_COMMITS does, another way: it conflicts
CONFLICTING = "printf 'other\\n' > src/d0/f0.txt && git commit -qam 'the other change'"
ELSEWHERE = "printf 'c\\n' > c.txt && git add c.txt && git commit -qm 'a file of its own'"


def task() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def queue(run_cli: RunCli, repo: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json_out(land(run_cli, repo, "--queue", "--json"))["lands"]
    return found


def one_cycle(run_orch: RunOrch, repo: Path) -> str:
    done = run_orch("loop", "--once", cwd=repo)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = settings()
    with open_store(s.database_url, s.locks_dir) as opened:
        yield opened


def test_the_loop_lands_the_queue_in_order_and_keeps_each_result(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    first = attempt_with_commits(run_cli, run_orch, repo, task())
    second = attempt_with_commits(run_cli, run_orch, repo, task(), CONFLICTING)
    third = attempt_with_commits(run_cli, run_orch, repo, task(), ELSEWHERE)
    old = rev(repo, "main")

    queued = land(run_cli, repo, "--queue", first["id"], second["id"], third["id"])
    assert queued.exit_code == 0, queued.stderr
    assert queued.stdout.splitlines()[0].startswith(f"{first['id']} queued to land (entry ")
    assert "no loop runs" in queued.stderr  # said, not refused
    assert rev(repo, "main") == old  # queued, nothing landed yet
    waiting = queue(run_cli, repo)
    assert [(e["attempt_id"], e["state"], e["strategy"]) for e in waiting] == [
        (first["id"], "queued", "squash"),
        (second["id"], "queued", "squash"),
        (third["id"], "queued", "squash"),
    ]
    # an attempt waits in the queue once; an unknown one queues nothing
    again = assert_failed_cleanly(land(run_cli, repo, "--queue", first["id"]), 12)
    assert "already waits in the land queue" in again
    assert_failed_cleanly(land(run_cli, repo, "--queue", third["id"], "nope1234"), 8)
    # a live attempt is refused as orch land refuses it, and queues nothing either
    live = dispatch(run_cli, repo, task())
    refused = assert_failed_cleanly(land(run_cli, repo, "--queue", live["id"]), 22)
    assert "is queued: its agent may still commit" in refused
    assert len(queue(run_cli, repo)) == 3
    line = assert_failed_cleanly(land(run_cli, repo, "--queue", "--dry-run", first["id"]), 2)
    assert "--queue takes no --dry-run" in line

    out = one_cycle(run_orch, repo)
    assert f"landed {first['id']} as " in out
    ended = queue(run_cli, repo)
    by_id = {e["attempt_id"]: e for e in ended}
    # the first landed onto main, the third onto the first's result; the second conflicts
    landed_first, landed_third = by_id[first["id"]], by_id[third["id"]]
    assert (landed_first["state"], landed_first["result"]) == ("done", "landed")
    assert (landed_third["state"], landed_third["result"]) == ("done", "landed")
    assert landed_third["landed_commit"] == rev(repo, "main")
    assert rev(repo, f"{landed_third['landed_commit']}^") == landed_first["landed_commit"]
    assert rev(repo, f"{landed_first['landed_commit']}^") == old
    conflicted = by_id[second["id"]]
    assert (conflicted["state"], conflicted["result"]) == ("failed", "conflict")
    assert conflicted["paths"] == ["src/d0/f0.txt"] and conflicted["exit_code"] == 21
    assert "src/d0/f0.txt" in conflicted["reason"]
    assert branch_tip(repo, second["branch_name"]) is not None  # nothing of it was lost
    # the records say the same as a land by hand
    shown = json_out(run_cli("show", third["id"], "--json", cwd=repo))["attempt"]
    assert shown["landed_commit"] == landed_third["landed_commit"]
    listed = land(run_cli, repo, "--queue").stdout.splitlines()
    assert listed[0] == (
        f"#{landed_first['id']} {first['id']} squash into main: done, landed as "
        f"{landed_first['landed_commit'][:12]}"
    )
    assert listed[1].startswith(f"#{conflicted['id']} {second['id']} squash into main: failed, ")
    # a later cycle lands nothing again
    assert "landed" not in one_cycle(run_orch, repo)
    assert rev(repo, "main") == landed_third["landed_commit"]


def test_a_waiting_entry_is_dropped_and_the_loop_passes_it_by(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store: Store
) -> None:
    first = attempt_with_commits(run_cli, run_orch, repo, task())
    second = attempt_with_commits(run_cli, run_orch, repo, task(), ELSEWHERE)
    old = rev(repo, "main")
    assert land(run_cli, repo, "--queue", first["id"], second["id"]).exit_code == 0
    entries = {e["attempt_id"]: e["id"] for e in queue(run_cli, repo)}
    dropped = land(run_cli, repo, "--drop", str(entries[first["id"]]))
    assert dropped.exit_code == 0, dropped.stderr
    assert dropped.stdout == f"#{entries[first['id']]} {first['id']} dropped from the land queue\n"
    # bad input, each one line: again (ended), unknown, being landed, with attempts, zero
    again = assert_failed_cleanly(land(run_cli, repo, "--drop", str(entries[first["id"]])), 12)
    assert "has already ended: dropped" in again
    assert "no entry 999" in assert_failed_cleanly(land(run_cli, repo, "--drop", "999"), 8)
    assert_failed_cleanly(land(run_cli, repo, "--drop", "1", first["id"]), 2)
    zero = land(run_cli, repo, "--drop", "0")
    assert zero.exit_code == 2 and "Invalid value for '--drop'" in zero.stderr
    landing = entries[second["id"]]
    store.move_land(landing, LandQueueState.QUEUED, LandQueueState.LANDING)
    assert "being landed now" in assert_failed_cleanly(
        land(run_cli, repo, "--drop", str(landing)), 12
    )
    store.move_land(landing, LandQueueState.LANDING, LandQueueState.QUEUED)
    # the loop lands the one left, never the dropped one
    one_cycle(run_orch, repo)
    by_id = {e["attempt_id"]: e for e in queue(run_cli, repo)}
    assert (by_id[first["id"]]["state"], by_id[first["id"]]["result"]) == ("failed", "dropped")
    assert (by_id[second["id"]]["state"], by_id[second["id"]]["result"]) == ("done", "landed")
    assert rev(repo, "main^") == old
    kinds = [
        e["kind"] for e in json_out(run_cli("show", first["id"], "--json", cwd=repo))["events"]
    ]
    assert "land_dropped" in kinds and "landed" not in kinds


def test_a_land_a_dead_loop_left_landing_is_taken_up_again(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store: Store
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    rebased = land(run_cli, repo, "--queue", "--strategy", "rebase", attempt["id"])
    assert rebased.exit_code == 0, rebased.stderr
    [entry] = store.queued_lands()
    # a loop that died after taking the entry, before landing it
    assert store.move_land(entry.id, LandQueueState.QUEUED, LandQueueState.LANDING)
    one_cycle(run_orch, repo)
    [ended] = store.queued_lands()
    assert (ended.state, ended.result) == (LandQueueState.DONE, "landed")
    assert ended.landed_commit == rev(repo, "main")
    # rebase kept the agent's two commits
    assert git("log", "--format=%s", "-2", "main", cwd=repo).split("\n")[:2] == [
        "second change",
        "first change",
    ]


def test_the_dashboard_queues_and_lists_lands(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store: Store
) -> None:
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    served: Served
    for served in start(store):
        assert (
            served.post("/api/lands", {"attempt": attempt["id"], "strategy": "sideways"})[0] == 400
        )
        assert served.post("/api/lands", {"strategy": "merge"})[0] == 400
        assert served.post("/api/lands", {"attempt": "nope1234"})[0] == 404
        assert served.post("/api/lands", {"attempt": attempt["id"]}, token=None)[0] == 403
        status, body = served.post("/api/lands", {"attempt": attempt["id"], "strategy": "merge"})
        assert status == 200, body
        assert (body["land"]["state"], body["land"]["strategy"]) == ("queued", "merge")
        assert served.post("/api/lands", {"attempt": attempt["id"]})[0] == 409
        one_cycle(run_orch, repo)
        status, listed = served.get("/api/lands")
        assert status == 200
        [entry] = listed["lands"]
        assert (entry["state"], entry["result"]) == ("done", "landed")
    assert len(git("rev-list", "--parents", "-1", "main", cwd=repo).split()) == 3  # a merge


def test_the_queue_is_empty_and_needs_attempts_otherwise(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    assert land(run_cli, repo, "--queue").stdout == "the land queue is empty\n"
    assert "name the attempts" in assert_failed_cleanly(land(run_cli, repo), 2)


def test_a_loop_lands_only_what_was_queued_on_its_own_host(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One store for several hosts: the repository's path of an entry is a path on the host
    it was queued on, so only that host's loop lands it (or takes it up after a crash)."""
    attempt = attempt_with_commits(run_cli, run_orch, repo, task())
    old = rev(repo, "main")
    monkeypatch.setenv("ORCH_HOST_NAME", "elsewhere")
    assert land(run_cli, repo, "--queue", attempt["id"]).exit_code == 0
    monkeypatch.delenv("ORCH_HOST_NAME")
    [entry] = store.queued_lands()
    assert entry.host == "elsewhere"
    assert store.move_land(entry.id, LandQueueState.QUEUED, LandQueueState.LANDING)
    one_cycle(run_orch, repo)  # this host's loop
    [still] = store.queued_lands()
    assert (still.state, still.result) == (LandQueueState.LANDING, None)
    assert rev(repo, "main") == old
