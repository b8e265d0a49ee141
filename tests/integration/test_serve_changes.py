"""The dashboard's change stream (``GET /api/changes``, server-sent events) and its failed
deliveries (``GET /api/deliveries``) on a real server bound to an ephemeral loopback port,
both databases: the token is required, a change made by the CLI's own code in another
store connection produces a ``changed`` message naming its attempt, a delivery that failed
for good produces one and is listed, streams are bounded and end when the server stops.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch.models import DeliveryState
from orch.store import Store
from orch.store.outbox import SinkScope
from tests.support.attempts import dispatch
from tests.support.cli import RunCli
from tests.support.dashboard import TOKEN, Served, start
from tests.support.store import ready_attempt


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    yield from start(store, cancel_grace=1)


Client = http.client.HTTPConnection | http.client.HTTPResponse


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """The test's connections and their responses, each closed at its end: a stream's
    response holds its socket after its connection was closed (http.client hands a
    response without a length the connection), and one left to the garbage collector is a
    ResourceWarning in whichever test runs then."""
    made: list[Client] = []
    yield made
    for each in made:
        each.close()


def open_stream(
    served: Served, clients: list[Client], query: str = f"token={TOKEN}"
) -> http.client.HTTPResponse:
    host, port = urllib.parse.urlsplit(served.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    clients.append(conn)
    conn.request("GET", f"/api/changes?{query}")
    response = conn.getresponse()
    clients.append(response)
    return response


def next_message(stream: http.client.HTTPResponse) -> dict[str, Any]:
    """The next ``changed`` message's data; comments and the ``retry:`` line are skipped."""
    fields: dict[str, str] = {}
    while True:
        line = stream.fp.readline()
        assert line, "the stream ended"
        text = line.decode().rstrip("\n")
        if not text:
            if fields.get("event") == "changed":
                data: dict[str, Any] = json.loads(fields["data"])
                assert fields["id"] == str(data["version"])
                return data
            fields = {}
        elif not text.startswith(":"):
            name, _, value = text.partition(": ")
            fields[name] = value


def message_naming(stream: http.client.HTTPResponse, attempt_id: str) -> dict[str, Any]:
    while True:
        data = next_message(stream)
        if data["attempts"] is None or attempt_id in data["attempts"]:
            return data


def test_the_stream_needs_the_token_and_tells_of_a_cli_change(
    served: Served, repo: Path, run_cli: RunCli, clients: list[Client]
) -> None:
    attempt_id = dispatch(run_cli, repo, "streamed")["id"]
    refused = open_stream(served, clients, "")
    assert refused.status == 401
    assert "needs its token" in json.loads(refused.read())["error"]
    refused = open_stream(served, clients, "token=wrong")
    assert refused.status == 401

    stream = open_stream(served, clients)
    assert stream.status == 200
    assert stream.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert stream.getheader("Content-Length") is None
    assert stream.fp.readline() == b"retry: 1000\n"
    first = next_message(stream)  # at once: the version to re-read from
    assert first["attempts"] is None

    assert run_cli("cancel", attempt_id).exit_code == 0
    changed = message_naming(stream, attempt_id)
    assert changed["version"] > first["version"]


def test_a_delivery_failed_for_good_is_a_change_and_is_listed(
    served: Served,
    store: Store,
    repository: str,
    clients: list[Client],
) -> None:
    attempt = ready_attempt(store, repository)
    store.cancel(attempt.id, "test", "test")
    stream = open_stream(served, clients)
    first = next_message(stream)
    assert served.get("/api/deliveries") == (200, {"version": 1, "deliveries": []})

    # what a deliverer does with a receiver that refuses for good
    store.plan(SinkScope("hook-dead", None, None, None))
    claimed = store.claim_delivery("hook-dead", 30)
    assert claimed is not None
    store.end_delivery(claimed, DeliveryState.FAILED, "HTTP 404")
    while next_message(stream)["version"] == first["version"]:
        pass
    status, body = served.get("/api/deliveries")
    assert status == 200
    [failed] = body["deliveries"]
    assert failed["sink"] == "hook-dead" and failed["state"] == "failed"
    assert failed["attempt_id"] == attempt.id and failed["last_error"] == "HTTP 404"
    assert served.get("/api/deliveries", token=None)[0] == 401


def test_streams_are_bounded_and_end_when_the_server_stops(
    store: Store, clients: list[Client]
) -> None:
    running = start(store)
    served = next(running)
    served.server.feed.max_streams = 2
    streams = [open_stream(served, clients) for _ in range(2)]
    for stream in streams:
        assert stream.status == 200
        next_message(stream)
    assert served.server.feed.streams == 2
    third = open_stream(served, clients)
    assert third.status == 503
    assert "too many open event streams" in json.loads(third.read())["error"]

    clients[0].close()  # a client that goes away frees its place once a write fails
    with pytest.raises(StopIteration):
        next(running)  # shutdown: every stream ends, and closing joins their threads
    for stream in streams[1:]:
        stream.read()  # returns once the server ended the stream (left open: a timeout)
        assert stream.isclosed()
