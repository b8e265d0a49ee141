"""The task queue and the loop's cycle: ``orch submit``, dispatching at most N per
cycle, never a second live attempt, retries of lost workers per policy, the snapshot.

Cycles run in-process against a real store; the loop dispatches through real ``orch``
child processes into real repositories, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import Result

from orch.errors import OrchError
from orch.models import QueuedTask, State, TaskState
from orch.serve.loop import Launched, Loop
from orch.serve.runtime import serve_dir
from orch.store import Store, open_store
from orch.system import processes
from tests.support.attempts import dispatch
from tests.support.cli import assert_failed_cleanly
from tests.support.repos import git, orch_branches, repo_root, worktrees
from tests.support.store import dead_worker, settings

RunCli = Callable[..., Result]


@pytest.fixture
def store(store_url: str, isolated_env: Path) -> Iterator[Store]:
    with open_store(store_url, isolated_env / "locks") as s:
        yield s
        # the PostgreSQL database is shared by the tests of one xdist worker: leave no task
        # another test's loop would dispatch
        for task in s.queued_tasks([TaskState.READY, TaskState.DISPATCHED]):
            s.move_task(task.id, task.state, TaskState.FAILED, reason="test over")


def submit(run_cli: RunCli, repo: Path, key: str, *args: str) -> int:
    result = run_cli("submit", key, "--prompt", f"do {key}", "--json", *args, cwd=repo)
    assert result.exit_code == 0, result.stderr
    task_id: int = json.loads(result.stdout)["task"]["id"]
    return task_id


def left_dispatching(store: Store, task_id: int, ago: float) -> None:
    """The entry as a loop that took it ``ago`` seconds ago, and died, leaves it."""
    assert store.move_task(task_id, TaskState.READY, TaskState.DISPATCHING) is not None
    left_dispatching_since(store, task_id, ago)


def left_dispatching_since(store: Store, task_id: int, ago: float) -> None:
    """Move back the time the entry became ``dispatching`` (a loop that died long ago)."""
    from sqlalchemy import update

    from orch.store.tables import queued_tasks

    then = store.clock() - dt.timedelta(seconds=ago)
    with store.engine.begin() as conn:
        conn.execute(
            update(queued_tasks).where(queued_tasks.c.id == task_id).values(updated_at=then)
        )


def ours(store: Store, repo: Path) -> dict[int, TaskState]:
    return {t.id: t.state for t in store.queued_tasks() if t.repository == repo_root(repo)}


def test_submit_records_a_ready_task_and_provisions_nothing(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    task_id = submit(run_cli, repo, "add-retries", "--worker", "codex")
    queued = run_cli("submit", "again", "--prompt", "x", cwd=repo)
    assert queued.stderr == (
        "Warning: no loop runs: 'orch serve' or 'orch loop' dispatches the queue\n"
    )
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert (task.state, task.task_key, task.workers, task.attempts, task.base_ref) == (
        TaskState.READY,
        "add-retries",
        ("codex",),
        1,
        None,
    )
    assert orch_branches(repo) == [] and len(worktrees(repo)) == 1
    assert store.list_attempts(repository=repo_root(repo)) == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("../escape", "--prompt", "x"), 2, "task key"),
        (("ok", "--prompt", "x", "--base-ref", "no-such-ref"), 4, "unknown base ref"),
        (("ok", "--prompt", "x", "--worker", " "), 2, "--worker"),
        (("ok", "--prompt", "x", "--attempts", "0"), 2, "--attempts must be at least 1"),
        (("ok", "--prompt", "x", "--attempts", "101"), 2, "at most 100 attempts"),
        (("ok", "--prompt", "x", "--worker", "w" * 129), 2, "at most 128 are allowed"),
        (
            ("ok", "--prompt", "x", "--attempts", "1", "--worker", "a", "--worker", "b"),
            2,
            "2 workers named for 1 attempt",
        ),
    ],
)
def test_submit_refuses_bad_input_and_records_nothing(
    repo: Path, run_cli: RunCli, store: Store, args: tuple[str, ...], code: int, says: str
) -> None:
    line = assert_failed_cleanly(run_cli("submit", *args, cwd=repo), code)
    assert says in line
    assert ours(store, repo) == {}


def test_submit_outside_a_repository_exits_3(tmp_path: Path, run_cli: RunCli, store: Store) -> None:
    assert_failed_cleanly(run_cli("submit", "t", "--prompt", "x", cwd=tmp_path), 3)


def test_a_cycle_dispatches_at_most_n_and_never_a_second_live_attempt(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    first = submit(run_cli, repo, "a")
    again = submit(run_cli, repo, "a")  # the same task: waits for the first to end
    b, c = submit(run_cli, repo, "b"), submit(run_cli, repo, "c")
    loop = Loop(store, settings(dispatch_per_cycle=2, retry_cooldown=0), "loop")

    report = loop.cycle()
    assert len(report.dispatched) == 2
    assert ours(store, repo) == {
        first: TaskState.DISPATCHED,
        again: TaskState.READY,
        b: TaskState.DISPATCHED,
        c: TaskState.READY,
    }
    loop.cycle()
    assert ours(store, repo)[c] == TaskState.DISPATCHED
    assert ours(store, repo)[again] == TaskState.READY  # task a still has a live attempt
    live = store.list_attempts(repository=repo_root(repo))
    assert sorted(a.task_key for a in live) == ["a", "b", "c"]
    assert all(a.state == State.QUEUED for a in live)

    a1 = next(a for a in live if a.task_key == "a")
    store.cancel(a1.id, "done with it", "test")
    loop.cycle()
    tasks = ours(store, repo)
    assert tasks[first] == TaskState.DONE and tasks[again] == TaskState.DISPATCHED
    numbers = sorted(
        a.attempt_number
        for a in store.list_attempts(task_key="a")
        if a.repository == repo_root(repo)
    )
    assert numbers == [1, 2]


def test_a_lost_worker_is_retried_per_policy_and_the_snapshot_says_so(
    repo: Path, run_cli: RunCli, store: Store, isolated_env: Path
) -> None:
    task_id = submit(run_cli, repo, "flaky")
    patient = Loop(store, settings(retry_cooldown=3600, max_attempts=2), "loop")
    first = patient.cycle().dispatched[0]
    dead_worker(store, first, patient.settings)

    report = patient.cycle()  # the cooldown holds the retry back
    assert report.gone == [first] and report.retried == []
    snapshot = json.loads((serve_dir(isolated_env) / "status.json").read_text())
    flagged = {x["attempt"]: x["why"] for x in snapshot["attention"]}
    assert flagged[first][0].startswith("worker gone: worker process")
    assert snapshot["counts"]["worker_gone"] >= 1

    eager = Loop(store, settings(retry_cooldown=0, max_attempts=2), "loop")
    second = eager.cycle().retried[0]
    retried = store.get(second)
    assert (retried.task_key, retried.attempt_number, retried.state) == ("flaky", 2, State.QUEUED)
    assert retried.branch_name != store.get(first).branch_name
    snapshot = json.loads((serve_dir(isolated_env) / "status.json").read_text())
    assert first not in {x["attempt"] for x in snapshot["attention"]}  # superseded

    dead_worker(store, second, eager.settings)
    report = eager.cycle()
    assert report.gone == [second] and report.retried == []  # max_attempts reached
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert task.state == TaskState.DONE and "max_attempts 2" in (task.reason or "")


def test_a_best_of_n_task_is_one_dispatch_and_done_when_all_its_attempts_ended(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    """``orch submit --attempts 3`` with two workers: one cycle makes three attempts from
    one base commit, going to the workers in turn; a lost worker's attempt is not retried
    while its siblings stand in for it; the task is done once all three have ended."""
    task_id = submit(
        run_cli, repo, "tri", "--attempts", "3", "--worker", "claude", "--worker", "codex"
    )
    queued = next(t for t in store.queued_tasks() if t.id == task_id)
    assert (queued.workers, queued.attempts) == (("claude", "codex"), 3)
    loop = Loop(store, settings(retry_cooldown=0, max_attempts=5), "loop")

    report = loop.cycle()
    assert len(report.dispatched) == 3 and report.failed == []
    made = [store.get(attempt_id) for attempt_id in report.dispatched]
    assert [a.worker for a in made] == ["claude", "codex", "claude"]
    assert len({a.base_commit for a in made}) == 1
    assert len({a.branch_name for a in made}) == 3
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert (task.state, task.attempt_id) == (TaskState.DISPATCHED, made[0].id)

    dead_worker(store, made[1].id, loop.settings, name="codex")
    report = loop.cycle()
    assert report.gone == [made[1].id] and report.retried == [] and report.dispatched == []
    assert ours(store, repo)[task_id] == TaskState.DISPATCHED  # two still live

    store.cancel(made[0].id, "picked the other", "test")
    store.cancel(made[2].id, "picked the other", "test")
    loop.cycle()
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert task.state == TaskState.DONE
    assert task.reason == "3 ended: cancelled 2, worker_gone 1"
    assert len(store.list_attempts(task_key="tri", repository=repo_root(repo))) == 3


def test_a_best_of_n_task_follows_its_own_attempts_and_no_other_entry_runs_beside_them(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    """While any attempt of a best-of-N entry lives, a second entry of the task waits
    (not only while its newest one lives); the first entry is done when its own attempts
    have ended, never counting the second entry's."""
    first = submit(run_cli, repo, "k", "--attempts", "2")
    second = submit(run_cli, repo, "k")
    loop = Loop(store, settings(retry_cooldown=0, max_attempts=9), "loop")
    a1, a2 = loop.cycle().dispatched
    assert ours(store, repo) == {first: TaskState.DISPATCHED, second: TaskState.READY}
    entry = next(t for t in store.queued_tasks() if t.id == first)
    assert (entry.attempt_id, entry.attempt_ids) == (a1, (a1, a2))

    store.cancel(a2, "not this one", "test")  # the newest ended, a1 lives on
    assert loop.cycle().dispatched == []
    assert ours(store, repo) == {first: TaskState.DISPATCHED, second: TaskState.READY}

    store.cancel(a1, "nor this one", "test")
    (a3,) = loop.cycle().dispatched
    assert ours(store, repo) == {first: TaskState.DONE, second: TaskState.DISPATCHED}
    done = next(t for t in store.queued_tasks() if t.id == first)
    assert done.reason == "2 ended: cancelled 2"
    assert store.get(a3).attempt_number == 3


def test_a_best_of_n_dispatch_whose_answer_was_lost_is_found_again(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    """The loop died (or its dispatch was killed) after the attempts were made: the next
    cycle finds every attempt made since the entry became ``dispatching``, in order."""
    real = Loop(store, settings(), "loop").launch

    def answer_lost(args: Sequence[str], stdin: str) -> Launched:
        real(args, stdin)  # the real dispatch makes its attempts; its answer is lost
        return Launched((), "did not finish within 300s and was killed", None)

    task_id = submit(run_cli, repo, "lost", "--attempts", "2")
    report = Loop(store, settings(), "loop", launch=answer_lost).cycle()
    made = [
        a.id for a in reversed(store.list_attempts(task_key="lost", repository=repo_root(repo)))
    ]
    assert len(made) == 2 and report.dispatched == made
    entry = next(t for t in store.queued_tasks() if t.id == task_id)
    assert (entry.state, entry.attempt_ids) == (TaskState.DISPATCHED, tuple(made))
    assert entry.reason == "did not finish within 300s and was killed"

    # a loop that died while dispatching: the entry is left ``dispatching``; its dispatch
    # may still be making attempts until dispatch_timeout has passed: left alone till then
    again = submit(run_cli, repo, "died", "--attempts", "2")
    left_dispatching(store, again, 10)
    by_hand = run_cli("dispatch", "died", "--prompt", "x", "--attempts", "2", "--json", cwd=repo)
    assert by_hand.exit_code == 0, by_hand.stderr
    ids = tuple(a["id"] for a in json.loads(by_hand.stdout)["attempts"])
    assert Loop(store, settings(dispatch_timeout=60), "loop").cycle().dispatched == []
    assert ours(store, repo)[again] == TaskState.DISPATCHING
    Loop(store, settings(dispatch_timeout=5), "loop").cycle()
    entry = next(t for t in store.queued_tasks() if t.id == again)
    assert (entry.state, entry.attempt_id, entry.attempt_ids) == (
        TaskState.DISPATCHED,
        ids[0],
        ids,
    )


def test_the_queue_is_listed_and_a_ready_entry_dropped_before_the_loop_takes_it(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    """``orch submit --list`` shows each entry; ``--drop`` takes a ready one out (the loop
    then never dispatches it) and refuses, with one line and exit 12, an entry already
    dispatched (naming its attempts) or ended, and with exit 8 an entry that is none."""
    kept = submit(run_cli, repo, "kept", "--attempts", "2", "--worker", "claude")
    gone = submit(run_cli, repo, "gone")
    listed = run_cli("submit", "--list", cwd=repo)
    assert listed.exit_code == 0, listed.stderr
    assert f"#{kept} kept x2 for claude: ready" in listed.stdout
    assert f"#{gone} gone: ready" in listed.stdout

    dropped = run_cli("submit", "--drop", str(gone), "--json", cwd=repo)
    assert dropped.exit_code == 0, dropped.stderr
    (entry,) = json.loads(dropped.stdout)["dropped"]
    assert (entry["id"], entry["state"]) == (gone, "failed")
    assert entry["reason"].startswith("dropped from the queue by ")

    made = Loop(store, settings(), "loop").cycle().dispatched
    assert [store.get(a).task_key for a in made] == ["kept", "kept"]
    assert ours(store, repo) == {kept: TaskState.DISPATCHED, gone: TaskState.FAILED}
    assert store.list_attempts(task_key="gone", repository=repo_root(repo)) == []

    line = assert_failed_cleanly(run_cli("submit", "--drop", str(kept), cwd=repo), 12)
    assert "already dispatched" in line and f"orch cancel {made[0]} {made[1]}" in line
    line = assert_failed_cleanly(run_cli("submit", "--drop", str(gone), cwd=repo), 12)
    assert "has already ended: failed" in line
    assert_failed_cleanly(run_cli("submit", "--drop", "999999", cwd=repo), 8)
    # several at once: what can be dropped is, each refusal is named, the first one's code
    third, fourth = submit(run_cli, repo, "third"), submit(run_cli, repo, "fourth")
    mixed = run_cli(
        "submit", "--drop", str(third), "--drop", "999999", "--drop", str(kept), cwd=repo
    )
    assert mixed.exit_code == 8
    assert mixed.stdout == f"#{third} third dropped from the task queue\n"
    assert mixed.stderr.strip().endswith(f"(and #{kept}: refused too)")
    as_json = run_cli("submit", "--drop", str(fourth), "--drop", str(kept), "--json", cwd=repo)
    assert as_json.exit_code == 12
    body = json.loads(as_json.stdout)
    assert [t["id"] for t in body["dropped"]] == [fourth]
    assert [(r["entry"], r["exit_code"]) for r in body["refused"]] == [(kept, 12)]
    assert ours(store, repo)[third] == ours(store, repo)[fourth] == TaskState.FAILED
    # an entry number past the store's integer column is refused before the store
    too_big = run_cli("submit", "--drop", str(2**31), cwd=repo)
    assert too_big.exit_code == 2 and "Traceback" not in too_big.stderr
    listed = run_cli("submit", "--list", cwd=repo).stdout
    assert f"#{kept} kept x2 for claude: dispatched ({made[0]} {made[1]})" in listed


@pytest.mark.parametrize(
    "args",
    [
        ("--list", "--drop", "1"),
        ("t", "--list"),
        ("--list", "--prompt", "x"),
        ("--drop", "1", "--attempts", "2"),
        ("--drop", "1", "--worker", "w"),
        (),
    ],
)
def test_submit_refuses_a_mix_of_queueing_listing_and_dropping(
    repo: Path, run_cli: RunCli, store: Store, args: tuple[str, ...]
) -> None:
    assert_failed_cleanly(run_cli("submit", *args, cwd=repo), 2)
    assert ours(store, repo) == {}


def test_a_drop_racing_the_loop_either_drops_or_is_refused_never_both(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    """The drop and the loop's taking of the entry are both compare-and-sets on
    ``ready``: whichever comes second loses, so a dropped entry is never dispatched and a
    dispatched one is never marked dropped."""
    import threading

    for n in range(4):
        task_id = submit(run_cli, repo, f"race-{n}")
        results: list[object] = []

        def drop(task_id: int = task_id, results: list[object] = results) -> None:
            try:
                results.append(store.drop_task(task_id, "racer"))
            except OrchError as exc:
                results.append(exc)

        racer = threading.Thread(target=drop)
        racer.start()
        report = Loop(store, settings(), "loop").cycle()
        racer.join()
        task = next(t for t in store.queued_tasks() if t.id == task_id)
        if task.state == TaskState.FAILED:
            assert report.dispatched == [] and isinstance(results[0], QueuedTask)
        else:
            assert task.state == TaskState.DISPATCHED and len(report.dispatched) == 1
            assert isinstance(results[0], OrchError)
            store.cancel(report.dispatched[0], "race over", "test")


def test_a_dispatch_over_its_timeout_is_killed_and_the_task_fails_saying_so(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    task_id = submit(run_cli, repo, "slow")
    report = Loop(store, settings(dispatch_timeout=0.001), "loop").cycle()
    assert report.dispatched == []
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert task.state == TaskState.FAILED
    assert "did not finish within 0.001s and was killed" in (task.reason or "")


def test_a_dispatch_that_fails_later_fails_the_task_with_the_error(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    git("tag", "base", cwd=repo)
    task_id = submit(run_cli, repo, "gone-base", "--base-ref", "base")
    git("tag", "-d", "base", cwd=repo)
    Loop(store, settings(), "loop").cycle()
    task = next(t for t in store.queued_tasks() if t.id == task_id)
    assert task.state == TaskState.FAILED and "unknown base ref 'base'" in (task.reason or "")
    assert orch_branches(repo) == []


def test_a_task_left_dispatching_by_a_dead_loop_is_dispatched_once(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    task_id = submit(run_cli, repo, "interrupted")
    left_dispatching(store, task_id, 1)
    early = Loop(store, settings(dispatch_timeout=60), "loop").cycle()
    assert early.dispatched == []  # its dispatch may still run: not dispatched again
    assert ours(store, repo)[task_id] == TaskState.DISPATCHING
    left_dispatching_since(store, task_id, 120)
    loop = Loop(store, settings(dispatch_timeout=60), "loop")
    loop.cycle()  # nothing was made: back to ready, then dispatched
    loop.cycle()
    made = [
        a for a in store.list_attempts(task_key="interrupted") if a.repository == repo_root(repo)
    ]
    assert len(made) == 1
    assert ours(store, repo)[task_id] == TaskState.DISPATCHED
    # a loop that died after the attempt was made: the task adopts it, no second one
    store.cancel(made[0].id, "x", "test")
    again = submit(run_cli, repo, "interrupted")
    left_dispatching(store, again, 0)
    made_by_dead_loop = dispatch(run_cli, repo, "interrupted")["id"]
    left_dispatching_since(store, again, 120)
    Loop(store, settings(retry_cooldown=0, dispatch_timeout=60), "loop").cycle()
    task = next(t for t in store.queued_tasks() if t.id == again)
    assert (task.state, task.attempt_id) == (TaskState.DISPATCHED, made_by_dead_loop)
    numbers = [
        a.attempt_number
        for a in store.list_attempts(task_key="interrupted")
        if a.repository == repo_root(repo)
    ]
    assert sorted(numbers) == [1, 2]


def test_the_loop_dispatches_a_key_with_spaces_unicode_and_dashes(
    repo: Path, run_cli: RunCli, store: Store
) -> None:
    key = "Fix lógin \u2013 ünïcode --now"
    task_id = submit(run_cli, repo, key)
    made = Loop(store, settings(), "loop").cycle().dispatched
    assert len(made) == 1
    attempt = store.get(made[0])
    assert (
        attempt.task_key == key and attempt.branch_name == f"orch/fix-login-unicode-now-{made[0]}"
    )
    assert ours(store, repo)[task_id] == TaskState.DISPATCHED


def test_a_dispatch_refused_by_a_busy_lock_leaves_the_task_ready_for_the_next_cycle(
    repo: Path, run_cli: RunCli, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orch.fslock import file_lock

    task_id = submit(run_cli, repo, "locked-out")
    monkeypatch.setenv("ORCH_GIT_LOCK_TIMEOUT", "0.2")  # the child dispatch's patience
    with file_lock(repo / ".git" / "orch" / "worktree.lock", 5.0, "the test"):
        report = Loop(store, settings(), "loop").cycle()
    assert report.dispatched == []
    assert any("will try again" in line for line in report.failed), report.failed
    assert ours(store, repo)[task_id] == TaskState.READY
    assert orch_branches(repo) == []

    # the lock is free now; the refused dispatch left a failed attempt, so the task's
    # retry cooldown applies first
    report = Loop(store, settings(retry_cooldown=0), "loop").cycle()
    assert len(report.dispatched) == 1
    assert ours(store, repo)[task_id] == TaskState.DISPATCHED


def test_a_run_killed_at_its_timeout_leaves_no_pipe_open() -> None:
    """The timeout can strike before the input is written; every pipe is closed anyway
    (a leaked one surfaced as a ResourceWarning in a loop test on a busy machine)."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert processes.run_bounded(sleeper, "do slow", os.environ, 0.0001) is None
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
