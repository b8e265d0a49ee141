"""The dashboard's HTTP API on a real server bound to an ephemeral loopback port.

Reads must mirror ``orch list/show --json`` exactly; actions go through the CLI's own
calls; a mutating request without the token changes nothing.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from orch.models import DeliveryState
from orch.serve.web import TOKEN_HEADER
from orch.store import Store
from orch.store.outbox import SinkScope
from tests.support.attempts import dispatch
from tests.support.dashboard import TOKEN, Served, http, page, start
from tests.support.store import dead_worker

RunCli = Callable[..., Result]


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    yield from start(store, retry_cooldown=0, cancel_grace=1)


def cli_json(run_cli: RunCli, *args: str) -> Any:
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_reads_mirror_orch_list_and_show_json(repo: Path, run_cli: RunCli, served: Served) -> None:
    first = dispatch(run_cli, repo, "one")["id"]
    dispatch(run_cli, repo, "two")
    assert served.get("/api/attempts") == (200, cli_json(run_cli, "list", "--json"))
    assert served.get("/api/attempts?state=queued&task=one") == (
        200,
        cli_json(run_cli, "list", "--json", "--state", "queued", "--task", "one"),
    )
    assert served.get(f"/api/attempts/{first}") == (200, cli_json(run_cli, "show", first, "--json"))
    assert served.get(f"/api/attempts/{first[:6]}")[1]["attempt"]["id"] == first
    assert served.get(f"/api/attempts/{first}/ports") == (
        200,
        cli_json(run_cli, "ports", first, "--json"),
    )
    code, log = served.get(f"/api/attempts/{first}/log")
    assert code == 200 and log["attempt"] == first and isinstance(log["lines"], list)


def test_unknown_attempts_and_bad_queries_are_clear_errors(served: Served) -> None:
    code, body = served.get("/api/attempts/deadbeef")
    assert (code, body["exit_code"]) == (404, 8) and "no attempt 'deadbeef'" in body["error"]
    code, body = served.get("/api/attempts?state=bogus")
    assert (code, body["exit_code"]) == (400, 2)
    assert served.get("/api/nothing-here")[0] == 404
    assert served.get("/../../etc/passwd")[0] == 404
    # one line saying what is allowed, never Python's own words
    for limit in ("0", "-1", "abc", "2.5", "501", "٣"):
        code, body = served.get(f"/api/attempts?limit={urllib.parse.quote(limit)}")
        assert (code, body["exit_code"]) == (400, 2), (limit, body)
        assert body["error"] == (
            f"bad query: limit must be a whole number from 1 to 500, not {limit!r}"
        )
    code, body = served.get("/api/attempts?state=bogus")
    assert body["error"].startswith("bad query: state must be one of queued, running")
    assert body["error"].endswith(", not 'bogus'") and "invalid" not in body["error"]
    code, body = served.get("/api/attempts?limit=5&limit=6")
    assert (code, body["error"]) == (400, "bad query: 'limit' given 2 times")
    code, body = served.get("/api/attempts?page=2")
    assert code == 400
    assert body["error"] == (
        "bad query: no parameter 'page' (the attempts page reads limit, before, state, task)"
    )
    code, body = served.get("/api/attempts?before=deadbeef")
    assert code == 404 and "no attempt 'deadbeef'" in body["error"]


def test_an_attempt_is_never_read_by_file_path_over_http(
    repo: Path, run_cli: RunCli, served: Served, tmp_path: Path
) -> None:
    """`orch show` takes a payload path; the dashboard must not read files by name."""
    attempt = dispatch(run_cli, repo, "by-path")
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"attempt": {"id": attempt["id"]}}))
    for name in (attempt["payload_path"], str(secret), "./x.json", "../x"):
        quoted = urllib.parse.quote(name, safe="")
        code, body = served.get(f"/api/attempts/{quoted}")
        assert code == 404 and "name it by id" in body["error"], (name, code, body)
        # nor as the cursor of a page, nor as the attempt of a land to queue
        code, body = served.get(f"/api/attempts?before={quoted}")
        assert code == 404 and "no attempt" in body["error"], (name, code, body)
        code, body = served.post("/api/lands", {"attempt": name})
        assert code == 404 and "name it by id" in body["error"], (name, code, body)


def test_cancel_needs_the_token_and_then_goes_through_orch_cancel(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "to-cancel")["id"]
    for token in (None, "wrong", ""):
        code, body = served.post(f"/api/attempts/{attempt}/cancel", token=token)
        assert code == 403 and TOKEN_HEADER in body["error"]
    assert store.get(attempt).state == "queued"

    code, body = served.post(f"/api/attempts/{attempt}/cancel", {"reason": "not needed"})
    assert code == 200 and body["changed"] is True
    assert body["attempt"]["state"] == "cancelled" and body["attempt"]["reason"] == "not needed"
    events = [e["kind"] for e in cli_json(run_cli, "show", attempt, "--json")["events"]]
    assert events[-1] == "cancelled"
    code, body = served.post(f"/api/attempts/{attempt}/cancel")
    assert code == 200 and body["changed"] is False


def test_retry_and_send_go_through_the_cli_calls(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "flaky")["id"]
    code, body = served.post(f"/api/attempts/{attempt}/retry")
    assert (code, body["exit_code"]) == (409, 16) and "live attempt" in body["error"]

    code, body = served.post(f"/api/attempts/{attempt}/send", {"message": "also add a test"})
    assert code == 200 and body["message"]["body"] == "also add a test"
    assert [m.body for m in store.messages(attempt)] == ["also add a test"]
    code, body = served.post(f"/api/attempts/{attempt}/send", {"nothing": 1})
    assert (code, body["exit_code"]) == (400, 2)

    dead_worker(store, attempt, served.server.settings)
    code, body = served.post(f"/api/attempts/{attempt}/retry")
    assert code == 200, body
    assert (body["attempt"]["task_key"], body["attempt"]["attempt_number"]) == ("flaky", 2)
    assert store.get(attempt).state == "worker_gone"  # noticed by the retry's own reap


def test_retrying_a_failed_delivery_goes_through_orch_events_retry(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    """The dashboard's Retry button: as ``orch events --retry EVENT_ID``."""
    attempt = dispatch(run_cli, repo, "hooked")["id"]
    store.plan(SinkScope("hook-dead", None, None, None))
    claimed = store.claim_delivery("hook-dead", 30)
    assert claimed is not None
    store.end_delivery(claimed, DeliveryState.FAILED, "HTTP 404")
    event = claimed.event.id
    code, body = served.post(f"/api/events/{event}/retry", token=None)
    assert code == 403 and store.deliveries([DeliveryState.FAILED]) != []

    code, body = served.post(f"/api/events/{event}/retry")
    assert code == 200 and [(d["event_id"], d["tries"]) for d in body["deliveries"]] == [(event, 0)]
    assert store.deliveries([DeliveryState.FAILED]) == []
    code, body = served.post(f"/api/events/{event}/retry")  # nothing failed any more
    assert (code, body["exit_code"]) == (400, 2) and "no failed deliveries" in body["error"]
    code, body = served.post("/api/events/999999/retry")
    assert (code, body["exit_code"]) == (404, 8) and body["error"].startswith("no event 999999")
    for bad in ("abc/retry", f"{event}/again", f"{event}", "-1/retry", "%C2%B2/retry"):
        code, body = served.post(f"/api/events/{bad}")
        assert code == 404 and "POST /api/events/EVENT_ID/retry" in body["error"], bad
    assert store.get(attempt).state == "queued"


def test_dropping_a_ready_queue_entry_goes_through_orch_submit_drop(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    """The dashboard's Drop button of a ready queue entry: as ``orch submit --drop``."""
    submitted = run_cli("submit", "queued-here", "--prompt", "x", "--json", cwd=repo)
    assert submitted.exit_code == 0, submitted.stderr
    entry = json.loads(submitted.stdout)["task"]["id"]
    code, body = served.post(f"/api/tasks/{entry}/drop", token=None)
    assert code == 403
    assert next(t for t in store.queued_tasks() if t.id == entry).state == "ready"

    code, body = served.post(f"/api/tasks/{entry}/drop")
    assert code == 200 and (body["task"]["id"], body["task"]["state"]) == (entry, "failed")
    assert body["task"]["reason"].startswith("dropped from the queue by ")
    code, body = served.post(f"/api/tasks/{entry}/drop")  # it has ended
    assert (code, body["exit_code"]) == (409, 12) and "has already ended" in body["error"]
    code, body = served.post("/api/tasks/999999/drop")
    assert (code, body["exit_code"]) == (404, 8)
    bad_entries = ("abc", f"{entry}/again", "-1", "0", f"{2**31}", "%C2%B2")
    for bad in (f"{entry}", *(f"{b}/drop" if "/" not in b else b for b in bad_entries)):
        code, body = served.post(f"/api/tasks/{bad}")
        assert code == 404 and "POST /api/tasks/ENTRY/drop" in body["error"], bad


def test_malformed_bodies_are_refused(repo: Path, run_cli: RunCli, served: Served) -> None:
    import urllib.request

    attempt = dispatch(run_cli, repo, "x")["id"]
    request = urllib.request.Request(
        f"{served.url}/api/attempts/{attempt}/send",
        data=b"{not json",
        method="POST",
        headers={TOKEN_HEADER: TOKEN},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    with caught.value:
        assert caught.value.code == 400


def test_a_foreign_host_header_is_refused_on_loopback(served: Served) -> None:
    headers = {"Host": "attacker.example:80", TOKEN_HEADER: TOKEN}
    code, body = http(served.url + "/api/attempts", headers=headers)
    assert code == 403 and "loopback" in body["error"]


def test_the_page_never_embeds_the_token(store: Store) -> None:
    """On loopback too: any account on the machine can reach a loopback port."""
    for host in ("127.0.0.1", "0.0.0.0"):
        for served in start(store, host=host):
            html = page(served.url + "/", {TOKEN_HEADER: TOKEN})
            assert TOKEN not in html and "<title>orch dashboard</title>" in html
            assert served.get("/api/attempts", token=None)[0] == 401
            assert served.get(f"/api/attempts?token={TOKEN}", token=None)[0] == 200
            code, _ = http(served.url + "/api/status", headers={TOKEN_HEADER: TOKEN})
            assert code == 200
