"""Events out of orch (issue 20, points 1, 2 and 6): the outbox delivered to command hooks
and signed webhooks, each event once per sink, on both databases.

The webhook receiver is a real HTTP server on loopback (``tests/support/receiver.py``)
that checks each body's HMAC signature and keeps the idempotency keys it saw; hooks are
real ``sh -c`` commands; deliverers are real ``orch`` processes (the one a command starts
in the background, ``orch events deliver``, the loop), killed with SIGKILL where a crash
is the point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orch import fslock
from orch.attempts.events.kick import lock_path
from orch.errors import StoreError
from orch.models import DeliveryState, State
from orch.serve import runtime
from orch.store import Store
from tests.support.attempts import cancel, dispatch
from tests.support.cli import ORCH_BIN, RunCli, RunOrch, json_out
from tests.support.processes import Start, wait_for
from tests.support.receiver import Receiver
from tests.support.repos import git
from tests.support.store import ready_attempt, settings

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "orch" / "schemas" / "event-v1.schema.json").read_text()
)
SECRET = "s3cret-for-tests"


@pytest.fixture
def user_config(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user config file (ORCH_CONFIG) the test writes its sinks into."""
    path = isolated_env.parent / "user-config.toml"
    monkeypatch.setenv("ORCH_CONFIG", str(path))
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ORCH_EVENT_RETRY_BASE", "0.05")
    return path


def webhook(url: str, on: str, timeout: float = 5.0) -> str:
    return (
        f'[[webhooks]]\nurl = "{url}"\nsecret_env = "TEST_WEBHOOK_SECRET"\n'
        f"on = {on}\ntimeout = {timeout}\n"
    )


def deliveries(store: Store, state: DeliveryState | None = None) -> list[Any]:
    return store.deliveries([state] if state else [])


def all_delivered(store: Store, count: int) -> bool:
    found = deliveries(store)
    return len(found) == count and all(d.state == DeliveryState.DELIVERED for d in found)


def no_deliverer(isolated_env: Path) -> bool:
    """Nobody holds the deliver lock of the test's store (every deliverer has ended)."""
    held = fslock.try_lock(lock_path(settings()), "test")
    if held is None:
        return False
    held.release()
    return True


# -- a change starts delivery; hooks and webhooks get each event once ------------------


def test_a_cancel_reaches_the_hook_and_the_signed_webhook_once(
    store_url: str,
    store: Store,
    run_cli: RunCli,
    repo: Path,
    tmp_path: Path,
    user_config: Path,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "hook-out"
    out.mkdir()
    monkeypatch.setenv("HOOK_OUT", str(out))
    with Receiver(secret=SECRET) as receiver:
        # the hook is in the repository's orch.toml (its events only); the webhook in the
        # user config (every repository's)
        (repo / "orch.toml").write_text(
            "[[hooks]]\n"
            'command = \'cat > "$HOOK_OUT/$ORCH_EVENT_ID.json"; '
            'echo "$ORCH_EVENT $ORCH_STATE $ORCH_TASK_KEY $ORCH_ATTEMPT_ID $ORCH_DELIVERY"'
            ' >> "$HOOK_OUT/hook.log"\'\n'
            'on = ["provisioned", "cancelled"]\n'
        )
        user_config.write_text(webhook(receiver.url, '["cancelled"]'))
        attempt = dispatch(run_cli, repo, "notify-me")
        cancel(run_cli, repo, attempt["id"])
        wait_for(lambda: all_delivered(store, 3), "three deliveries (2 hook, 1 webhook)")
        wait_for(lambda: no_deliverer(isolated_env), "the background deliverer to end")

        [got] = receiver.received
        assert got.signed and got.event == "cancelled"
        jsonschema.validate(got.body, SCHEMA)
        assert got.body["state"] == "cancelled"
        assert got.body["attempt"]["id"] == attempt["id"]
        assert got.body["attempt"]["task_key"] == "notify-me"
        webhook_sink = next(d.sink for d in deliveries(store) if d.sink.startswith("webhook-"))
        assert got.key == f"{got.body['id']}:{webhook_sink}"

    lines = (out / "hook.log").read_text().splitlines()
    # in order; a provisioned event moved no state: ORCH_STATE is the attempt's as it is
    assert [(ln.split()[0], *ln.split()[2:4]) for ln in lines] == [
        ("provisioned", "notify-me", attempt["id"]),
        ("cancelled", "notify-me", attempt["id"]),
    ]
    assert lines[1].split()[1] == "cancelled"
    for line in lines:
        event_id = line.split()[4].split(":")[0]
        body = json.loads((out / f"{event_id}.json").read_text())
        jsonschema.validate(body, SCHEMA)
        assert str(body["id"]) == event_id


def test_no_sink_no_deliverer_and_no_delivery(
    store_url: str, store: Store, run_cli: RunCli, repo: Path, isolated_env: Path
) -> None:
    attempt = dispatch(run_cli, repo, "quiet")
    cancel(run_cli, repo, attempt["id"])
    assert deliveries(store) == []
    assert not (isolated_env / "logs" / "events" / "deliver.log").exists()
    events = json_out(run_cli("events", "--json", "--attempt", attempt["id"], cwd=repo))
    assert [e["kind"] for e in events["events"]][-1] == "cancelled"
    for doc in events["events"]:
        jsonschema.validate(doc, SCHEMA)


# -- exactly once: a loop, two deliverers of other "hosts", commands, all at once -------


def test_a_loop_and_racing_deliverers_deliver_each_event_once_in_order(
    store_url: str,
    store: Store,
    repository: str,
    user_config: Path,
    tmp_path: Path,
    start: Start,
) -> None:
    with Receiver(secret=SECRET) as receiver:
        user_config.write_text(webhook(receiver.url, '["created", "cancelled"]'))
        made = [ready_attempt(store, repository, f"race-{i}") for i in range(8)]

        def home(name: str) -> dict[str, str]:
            # another orch home: a deliver lock of its own, as on another host
            return {"ORCH_HOME": str(tmp_path / name), "ORCH_SERVE_INTERVAL": "0.2"}

        loop = start([ORCH_BIN, "loop"], env=home("loop-home"))
        racers = [start([ORCH_BIN, "events", "deliver"], env=home(f"h{i}")) for i in range(2)]
        cancels = [start([ORCH_BIN, "cancel", a.id], env=home("cancel-home")) for a in made]
        for proc in [*racers, *cancels]:
            assert proc.wait() == 0, proc.output()
        wait_for(lambda: all_delivered(store, 16), "16 deliveries", limit=60)
        # the racers may deliver all before the loop has started: a SIGTERM before it
        # has set its handler (and published itself) ends it as Python's default does
        wait_for(lambda: runtime.running(tmp_path / "loop-home", runtime.LOOP), "the loop")
        loop.signal(signal.SIGTERM)
        assert loop.wait() == 0, loop.output()

        keys = receiver.keys
        assert sorted(keys) == sorted({d.key for d in deliveries(store)})
        assert len(keys) == len(set(keys)) == 16  # once each
        assert all(r.signed for r in receiver.received)
        for a in made:  # in order per attempt
            mine = [r.body["kind"] for r in receiver.received if r.body["attempt_id"] == a.id]
            assert mine == ["created", "cancelled"]


# -- retries, failing for good, trying again by hand ------------------------------------


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(
    store_url: str, store: Store, repository: str, user_config: Path, run_orch: RunOrch
) -> None:
    with Receiver(secret=SECRET, answers=(500, 502)) as receiver:
        user_config.write_text(webhook(receiver.url, '["cancelled"]'))
        attempt = ready_attempt(store, repository)
        store.cancel(attempt.id, "test", "test")
        done = run_orch("events", "deliver")
        assert done.returncode == 0, done.stderr
        assert [r.status for r in receiver.received] == [500, 502, 200]
        assert len(set(receiver.keys)) == 1
        [delivered] = deliveries(store)
        assert delivered.state == DeliveryState.DELIVERED and delivered.tries == 3


def test_a_receiver_down_for_good_is_shown_and_retried_by_hand(
    store_url: str,
    store: Store,
    repository: str,
    user_config: Path,
    run_orch: RunOrch,
    run_cli: RunCli,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCH_EVENT_MAX_TRIES", "3")
    with Receiver(secret=SECRET, then=503) as down, Receiver(then=404) as refusing:
        user_config.write_text(
            webhook(down.url, '["cancelled"]') + webhook(refusing.url, '["cancelled"]')
        )
        attempt = ready_attempt(store, repository)
        store.cancel(attempt.id, "test", "test")
        assert run_orch("events", "deliver").returncode == 0
        assert [r.status for r in down.received] == [503] * 3
        assert [r.status for r in refusing.received] == [404]  # a 4xx is not tried again

        failed = json_out(run_cli("events", "--failed", "--json"))["deliveries"]
        assert sorted(d["tries"] for d in failed) == [1, 3]
        assert {d["state"] for d in failed} == {"failed"}
        assert any("HTTP 404" in d["last_error"] for d in failed)
        result = run_cli("doctor", "--json")
        assert result.exit_code == 18
        findings = json.loads(result.stdout)["findings"]
        undelivered = [f for f in findings if f["kind"] == "event-undelivered"]
        assert len(undelivered) == 2

        down.then = refusing.then = 200
        event_id = failed[0]["event_id"]
        result = run_cli("events", "--retry", str(event_id))
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("2 deliveries pending again")
        wait_for(lambda: all_delivered(store, 2), "the deliveries tried again by hand")
        wait_for(lambda: no_deliverer(isolated_env), "the background deliverer to end")
        assert [r.status for r in down.received][-1] == 200
        assert [r.status for r in refusing.received] == [404, 200]
        again = run_cli("events", "--retry", str(event_id))
        assert again.exit_code == 2
        assert "no failed deliveries" in again.stderr
        unknown = run_cli("events", "--retry", "999999")
        assert unknown.exit_code == 8 and "no event 999999" in unknown.stderr


# -- a deliverer killed mid-delivery ----------------------------------------------------


def test_a_deliverer_killed_mid_delivery_is_followed_by_one_delivery_with_the_same_key(
    store_url: str,
    store: Store,
    repository: str,
    user_config: Path,
    run_orch: RunOrch,
    start: Start,
) -> None:
    with Receiver(secret=SECRET, hold=True) as receiver:
        # a timeout well above the time the kill takes to arrive, even on a loaded machine
        user_config.write_text(webhook(receiver.url, '["cancelled"]', timeout=8))
        attempt = ready_attempt(store, repository)
        store.cancel(attempt.id, "test", "test")
        first = start([ORCH_BIN, "events", "deliver"])
        wait_for(receiver.holding.is_set, "the first delivery to arrive")
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait()
        receiver.release()
        [pending] = deliveries(store)
        assert pending.state == DeliveryState.PENDING and pending.tries == 0

        # the next deliverer waits for the dead one's claim to end, then delivers again
        again = run_orch("events", "deliver")
        assert again.returncode == 0, again.stderr
        [key] = set(receiver.keys)
        assert receiver.keys == [key, key]  # made again, with the same idempotency key
        assert receiver.processed == [key]  # so the receiver acted on it once
        [delivered] = deliveries(store)
        assert delivered.state == DeliveryState.DELIVERED and delivered.key == key


# -- the stream -----------------------------------------------------------------------------


def test_events_follow_prints_each_new_event_as_a_document(
    store_url: str, store: Store, repository: str, start: Start
) -> None:
    attempt = ready_attempt(store, repository)
    follower = start([ORCH_BIN, "events", "--follow", "--json", "--attempt", attempt.id])

    def lines() -> list[dict[str, Any]]:
        return [json.loads(ln) for ln in follower.stdout.splitlines() if ln.strip()]

    wait_for(lambda: len(lines()) == 2, "the two events so far (created, provisioned)")
    store.cancel(attempt.id, "test", "test")
    wait_for(lambda: len(lines()) == 3, "the cancel to be followed")
    follower.popen.send_signal(signal.SIGINT)
    follower.popen.wait()
    docs = lines()
    assert [d["kind"] for d in docs] == ["created", "provisioned", "cancelled"]
    assert [d["state"] for d in docs] == ["queued", None, "cancelled"]
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)


def test_every_state_change_writes_its_state_into_its_event(
    store_url: str, store: Store, repository: str
) -> None:
    from tests.support.store import claimed

    attempt, lease = claimed(store, repository)
    store.finish(attempt.id, lease.token, State.SUCCEEDED, "w", 0, "done")
    states = {e.kind: e.state for e in store.events(attempt.id)}
    assert states == {
        "created": State.QUEUED,
        "provisioned": None,
        "claimed": State.RUNNING,
        "finished": State.SUCCEEDED,
    }
    for event in store.events(attempt.id):
        if event.state is not None:
            assert str(event.state) in event.kinds


def test_events_are_announced_after_their_commit_only(
    store_url: str, store: Store, repository: str
) -> None:
    """``on_events`` (what starts delivery) hears of a committed change, never of one that
    was refused and rolled back."""
    heard: list[dict[str, frozenset[str]]] = []
    store.on_events = heard.append
    attempt = ready_attempt(store, repository)
    # created, then provisioned: each with the names a sink subscribes to it by
    assert heard == [{attempt.id: e.kinds} for e in store.events(attempt.id)]
    assert "created" in heard[0][attempt.id]
    heard.clear()
    with pytest.raises(StoreError):  # its attempt does not exist: the insert is refused
        store.record_event("feedbeef", "note", "test")
    store.cancel(attempt.id, "test", "test")
    assert heard == [{attempt.id: frozenset({"cancelled"})}]
    assert store.events(attempt.id)[-1].kind == "cancelled"


def test_a_command_starts_a_deliverer_only_for_a_sink_subscribed_to_its_events(
    store_url: str,
    store: Store,
    run_orch: RunOrch,
    repo: Path,
    user_config: Path,
    isolated_env: Path,
) -> None:
    """The installed command (which starts its deliverer as it exits) starts none while
    no sink, in the user config or the repository's, subscribes to what it changed, and
    one that delivers once a sink does."""
    log = isolated_env / "logs" / "events" / "deliver.log"
    with Receiver(secret=SECRET) as receiver:
        user_config.write_text(webhook(receiver.url, '["succeeded"]'))
        (repo / "orch.toml").write_text('[[hooks]]\ncommand = "true"\non = ["failed"]\n')
        quiet, told = (
            ready_attempt(store, str(repo), "quiet"),
            ready_attempt(store, str(repo), "told"),
        )
        done = run_orch("cancel", quiet.id)
        assert done.returncode == 0, done.stderr
        assert not log.exists()  # no deliverer was started
        assert deliveries(store) == []

        user_config.write_text(webhook(receiver.url, '["cancelled"]'))
        done = run_orch("cancel", told.id)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{told.id} cancelled\n"
        wait_for(lambda: all_delivered(store, 1), "the cancel delivered to the webhook")
        wait_for(lambda: no_deliverer(isolated_env), "the background deliverer to end")
    [got] = receiver.received
    assert got.body["attempt_id"] == told.id and got.event == "cancelled"
    assert log.exists()


def test_a_command_started_after_exit_runs_once_its_starter_has_ended(tmp_path: Path) -> None:
    """How a command line starts its deliverer (``spawn_detached(after_exit=True)``): the
    started command runs only after the process that started it has ended, and it keeps
    a descriptor handed to it (the deliver lock's)."""
    ended, seen = tmp_path / "starter-ended", tmp_path / "seen"
    starter = f"""
import os, sys, time
from pathlib import Path
from orch.system import processes
kept = os.open({str(tmp_path / "kept")!r}, os.O_RDWR | os.O_CREAT)
os.set_inheritable(kept, True)
script = 'if [ -e "$1" ]; then echo after; else echo before; fi > "$2"; echo kept >&$3'
processes.spawn_detached(
    ["/bin/sh", "-c", script, "sh", {str(ended)!r}, {str(seen)!r}, str(kept)],
    os.environ, Path({str(tmp_path / "log")!r}), after_exit=True,
)
time.sleep(0.3)  # time enough for a command that did not wait to run before the end
Path({str(ended)!r}).touch()
"""
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: seen.exists() and seen.read_text(), "the started command to run")
    assert seen.read_text() == "after\n"
    wait_for(lambda: (tmp_path / "kept").read_text(), "the handed descriptor written")
    assert (tmp_path / "kept").read_text() == "kept\n"


# -- desktop notifications, secrets in git ----------------------------------------------


def test_a_notification_goes_through_notify_send_or_is_skipped_without_one(
    store_url: str,
    store: Store,
    repository: str,
    user_config: Path,
    run_orch: RunOrch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The desktop itself cannot be reached from tests: ``notify-send`` is a stand-in on
    PATH that records its arguments (the boundary only); without one the delivery is
    ``skipped``, not failed."""
    user_config.write_text('[notify]\non = ["cancelled"]\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "notify-send"
    stand_in.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {tmp_path / "notified"}\n')
    stand_in.chmod(0o755)
    first = ready_attempt(store, repository, "shown")
    store.cancel(first.id, "test", "test")
    done = run_orch("events", "deliver", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "notified").read_text().split("|")[:3] == [
        "--app-name=orch",
        "orch: shown cancelled",
        f"attempt {first.id} · branch {first.branch_name} · test",
    ]

    second = ready_attempt(store, repository, "unseen")
    store.cancel(second.id, "test", "test")
    bare = tmp_path / "bare-bin"  # sh and the interpreter, but no notifier
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    done = run_orch("events", "deliver")
    assert done.returncode == 0, done.stderr
    states = {d.attempt_id: (d.state, d.last_error) for d in deliveries(store)}
    assert states[first.id] == (DeliveryState.DELIVERED, None)
    assert states[second.id] == (
        DeliveryState.SKIPPED,
        "neither notify-send nor osascript is on PATH",
    )


def test_a_webhook_secret_in_a_tracked_file_is_warned_about(
    store_url: str, run_cli: RunCli, repo: Path
) -> None:
    (repo / "orch.toml").write_text(
        '[[webhooks]]\nname = "ci"\nurl = "http://127.0.0.1:9/x"\nsecret = "plain"\n'
        'on = ["succeeded"]\n'
    )
    git("add", "orch.toml", cwd=repo)
    git("commit", "-qm", "sinks", cwd=repo)
    dispatch(run_cli, repo, "secretive")
    listed = run_cli("events", cwd=repo)
    assert listed.exit_code == 0
    assert "the secret of webhook ci is written in" in listed.stderr
    assert "use secret_env" in listed.stderr
    result = run_cli("doctor", "--json", cwd=repo)
    kinds = [f["kind"] for f in json.loads(result.stdout)["findings"]]
    assert "secret-in-git" in kinds
