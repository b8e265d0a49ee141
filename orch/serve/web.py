"""The dashboard's HTTP server: the page, read-only JSON that mirrors ``orch list/show
--json`` (and ``orch diff``/``orch compare TASK --json`` and the check runs, built in
orch.serve.review_api), and the operator actions (cancel, retry, send) through the CLI's
own calls.

Who may do what (the model Jupyter uses): every request, the page and every read
included, must carry the server's token, on loopback too, since any account on this
machine can reach a loopback port.
- ``orch serve`` prints ``/?token=...``; that first visit trades the token for an
  HttpOnly, SameSite=Strict cookie and is redirected to ``/``, so the token leaves the
  address bar and page scripts cannot read it. Scripts send ``X-Orch-Token`` instead
  (reads also take ``?token=``).
- A mutating request needs more than the cookie, which a form on another local port (the
  same site to a browser) would carry: the ``X-Orch-Token`` header, or the page's
  anti-forgery value (derived from the token, embedded only in a page served to a request
  that carried the token) in ``X-Orch-CSRF``. Another site cannot send either header
  without a CORS preflight this server never grants.
- On loopback the ``Host`` header must name a loopback host, which defeats DNS rebinding.
- Each connection's reads time out (``read_timeout``) and bodies are capped, so a client
  that promises a body it never sends holds a thread for seconds, not forever.
- The page's live updates are one server-sent event stream per tab (``GET /api/changes``,
  orch.serve.feed): bounded in number and lifetime, ended at shutdown. EventSource sends
  no headers: it carries the cookie, other clients ``?token=``, which is never logged.
Whatever goes into the page is HTML-escaped; the page's script builds text nodes only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import ipaddress
import json
import os
import socket
import sys
import traceback
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any

from orch import naming
from orch.attempts import changes, lifecycle
from orch.attempts.queries import find_attempt, looks_like_path
from orch.attempts.retry import RetryPolicy, retry
from orch.config import Settings
from orch.errors import (
    BaseRefError,
    Conflict,
    DirtyRepository,
    InvalidInput,
    LockBusy,
    NotClaimable,
    NotFound,
    OrchError,
    RepositoryError,
    RetryRefused,
    ServeError,
    StoreError,
)
from orch.git import Git
from orch.models import ENTRY_MAX, DeliveryState, State
from orch.serve import attempts_api, land_api, review_api, runtime
from orch.serve.feed import ChangeFeed, FeedFull
from orch.system import processes

if TYPE_CHECKING:
    from orch.store import Store

TOKEN_HEADER = "X-Orch-Token"
CSRF_HEADER = "X-Orch-CSRF"
MAX_BODY = 1 << 20
READ_TIMEOUT = 10.0  # seconds a connection may take to send each part of a request
LOG_TAIL = 40
TASKS_SHOWN = 50  # GET /api/tasks: the newest tasks (the page shows 20)
# what each kind of refusal is in HTTP terms; any other orch error is a refusal too (409:
# a failed set-up hook, an unreadable config), and only a bug is the server's fault (500)
_STATUS_FOR_ERROR: tuple[tuple[type[OrchError], int], ...] = (
    (InvalidInput, 400),
    (RepositoryError, 400),
    (BaseRefError, 400),
    (DirtyRepository, 409),
    (NotFound, 404),
    (Conflict, 409),
    (RetryRefused, 409),
    (NotClaimable, 409),
    (StoreError, 503),
    (LockBusy, 503),
)


def http_status(exc: OrchError) -> int:
    return next((status for kind, status in _STATUS_FOR_ERROR if isinstance(exc, kind)), 409)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cookie_safe(token: str) -> bool:
    """A token travels in a cookie and a URL: only characters neither needs to quote."""
    return bool(token) and all(c.isascii() and (c.isalnum() or c in "-._~") for c in token)


def dashboard_html() -> str:
    return (resources.files("orch.serve") / "static" / "dashboard.html").read_text("utf-8")


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str, port: int, store: Store, settings: Settings, actor: str, token: str
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # before binding: a port that cannot be bound closes the server at once
        self.feed = ChangeFeed(store, settings.home)
        try:
            super().__init__((host, port), Handler)
        except OSError as exc:
            raise ServeError(
                f"cannot serve the dashboard on {host}:{port}: {exc.strerror}"
            ) from exc
        self.store = store
        self.settings = settings
        self.actor = actor
        self.token = token
        self.csrf = hmac.new(token.encode(), b"orch dashboard csrf", hashlib.sha256).hexdigest()
        self.loopback = is_loopback(host)
        # the state filter's choices, in the order orch defines them
        self.page = dashboard_html().replace("{{ORCH_STATES}}", " ".join(str(s) for s in State))
        self.read_timeout = READ_TIMEOUT

    def server_close(self) -> None:
        # the event streams first: closing joins every handler thread, a stream's included
        self.feed.close()
        super().server_close()

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    @property
    def login_url(self) -> str:
        """The address ``orch serve`` prints: the first visit trades its token for a cookie."""
        return f"{self.url}?{urllib.parse.urlencode({'token': self.token})}"

    @property
    def cookie_name(self) -> str:
        # cookies ignore ports: two dashboards on one host must not overwrite each other's
        return f"orch-token-{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the dashboard polls every few seconds; an access log would be noise

    def setup(self) -> None:
        super().setup()
        # every read of this connection (request line, headers, body) waits this long at most
        self.connection.settimeout(self.server.read_timeout)

    # -- plumbing --------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, **body: Any) -> None:
        data = json.dumps({"version": 1, **body}, indent=2, ensure_ascii=False)
        self._send(status, data.encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str, exit_code: int | None = None) -> None:
        # a refused request's body may be unread: never read it as the next request
        self.close_connection = True
        self._json(status, error=message, exit_code=exit_code)

    def _is_token(self, given: str | None, expected: str | None = None) -> bool:
        wanted = expected if expected is not None else self.server.token
        return given is not None and hmac.compare_digest(given.encode(), wanted.encode())

    def _cookie(self) -> str | None:
        from http.cookies import CookieError, SimpleCookie

        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(self.server.cookie_name)
        return morsel.value if morsel is not None else None

    def _may_read(self, query: dict[str, list[str]]) -> bool:
        return any(
            self._is_token(given)
            for given in (self.headers.get(TOKEN_HEADER), self._cookie(), *query.get("token", []))
        )

    def _may_act(self) -> bool:
        """The token itself in its header, or the cookie with the page's anti-forgery value."""
        if self._is_token(self.headers.get(TOKEN_HEADER)):
            return True
        return self._is_token(self._cookie()) and self._is_token(
            self.headers.get(CSRF_HEADER), self.server.csrf
        )

    def _host_ok(self) -> bool:
        if not self.server.loopback:
            return True
        host = urllib.parse.urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
        return is_loopback(host)

    def _route(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        path = [urllib.parse.unquote(p) for p in parts.path.split("/") if p]
        if not self._host_ok():
            return self._error(403, "this dashboard answers only to a loopback host name")
        try:
            if method == "GET" and not path:
                return self._page(query)
            if method == "POST" and not self._may_act():
                return self._error(403, f"a mutating request needs the {TOKEN_HEADER} header")
            if not self._may_read(query):
                return self._error(
                    401, "this dashboard needs its token: open the URL 'orch serve' printed"
                )
            if not path or path[0] != "api":
                return self._error(404, f"no such page: {parts.path}")
            handler = getattr(self, f"_{method.lower()}_{'_'.join(path[1:2]) or 'root'}", None)
            if handler is None:
                return self._error(404, f"no such endpoint: {method} {parts.path}")
            handler(path[2:], query)
        except OrchError as exc:
            self._error(http_status(exc), exc.message, exc.exit_code)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away: nobody to answer
        except Exception as exc:  # a bug: answer it and keep its traceback in the log
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _page(self, query: dict[str, list[str]]) -> None:
        srv = self.server
        if any(self._is_token(t) for t in query.get("token", [])):
            # the printed URL: trade the token for a cookie and take it out of the address
            cookie = f"{srv.cookie_name}={srv.token}; HttpOnly; SameSite=Strict; Path=/"
            self.close_connection = True
            extra = (("Set-Cookie", cookie), ("Location", "/"))
            return self._send(303, b"", "text/plain; charset=utf-8", extra)
        if not self._may_read({}):
            self.close_connection = True
            body = (
                b"orch serve: this dashboard needs its token; open the URL 'orch serve' printed.\n"
            )
            return self._send(401, body, "text/plain; charset=utf-8")
        page = srv.page.replace("{{ORCH_CSRF}}", html.escape(srv.csrf, quote=True))
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise InvalidInput("bad Content-Length") from None
        if length < 0:
            raise InvalidInput("bad Content-Length")
        if length > MAX_BODY:
            raise InvalidInput(f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise InvalidInput("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object")
        return body

    # -- reads -----------------------------------------------------------------------------

    def _get_attempts(self, rest: list[str], query: dict[str, list[str]]) -> None:
        store = self.server.store
        if rest and looks_like_path(rest[0]):
            # `orch show` reads a payload file by path; over HTTP that would read any file
            raise NotFound(f"no attempt {rest[0]!r}: name it by id")
        if not rest:
            return self._json(200, **attempts_api.page_body(store, query))
        if len(rest) == 1:
            git = Git(self.server.settings.git_lock_timeout)
            return self._json(200, **changes.show(store, git, rest[0]).to_dict())
        attempt = find_attempt(store, rest[0])
        review = review_api.ATTEMPT_READS.get(tuple(rest[1:]))
        if review is not None:
            return self._json(200, **review(store, self.server.settings, attempt.id, query))
        if rest[1:] == ["log"]:
            path = self.server.settings.logs_dir / f"{attempt.id}.log"
            lines = processes.log_tail(path, LOG_TAIL)
            return self._json(200, attempt=attempt.id, path=str(path), lines=lines)
        if rest[1:] == ["ports"]:
            bundle = store.port_bundle(attempt.id)
            if bundle is None:
                raise NotFound(f"attempt {attempt.id} holds no port bundle")
            return self._json(
                200, attempt=attempt.id, start=bundle.start, size=bundle.size, ports=bundle.ports
            )
        raise NotFound(f"no such endpoint: {self.path}")

    def _get_status(self, rest: list[str], query: dict[str, list[str]]) -> None:
        home = self.server.settings.home
        snapshot = runtime.read_json(runtime.serve_dir(home) / "status.json") or {}
        loop = runtime.running(home, runtime.LOOP)
        snapshot.pop("version", None)
        self._json(
            200,
            **snapshot,
            loop_running=loop is not None,
            loop_pid=loop.pid if loop else None,
        )

    def _get_compare(self, rest: list[str], query: dict[str, list[str]]) -> None:
        if len(rest) != 1:
            raise NotFound(f"no such endpoint: {self.path} (GET /api/compare/TASK)")
        srv = self.server
        self._json(200, **review_api.compare_body(srv.store, srv.settings, rest[0]))

    def _get_deliveries(self, rest: list[str], query: dict[str, list[str]]) -> None:
        """The event deliveries that failed for good, as ``orch events --failed --json``."""
        failed = self.server.store.deliveries([DeliveryState.FAILED])
        self._json(200, deliveries=[d.to_dict() for d in failed])

    def _get_changes(self, rest: list[str], query: dict[str, list[str]]) -> None:
        """Server-sent events: a ``changed`` message whenever what the page shows changed."""
        try:
            with self.server.feed.stream() as messages:
                self._event_stream(messages)
        except FeedFull:
            # the page polls instead; EventSource does not retry a refusal, the page does
            self._error(503, "too many open event streams: poll instead")

    def _event_stream(self, messages: Iterator[bytes]) -> None:
        self.close_connection = True  # the body ends when the connection does
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        for chunk in messages:
            self.wfile.write(chunk)  # unbuffered: each message leaves at once

    def _get_tasks(self, rest: list[str], query: dict[str, list[str]]) -> None:
        """The newest ``TASKS_SHOWN`` tasks, oldest first (the page shows the newest 20): a
        year of tasks submitted before them is history, and never read."""
        tasks = self.server.store.queued_tasks(newest=TASKS_SHOWN)
        self._json(200, tasks=[t.to_dict() for t in tasks])

    # -- actions: the same calls as orch cancel / retry / send ------------------------------

    def _post_attempts(self, rest: list[str], query: dict[str, list[str]]) -> None:
        if len(rest) != 2 or rest[1] not in ("cancel", "retry", "send"):
            raise NotFound(f"no such action: {self.path}")
        ref, action = rest
        body = self._body()
        srv = self.server
        settings, store = srv.settings, srv.store
        if action == "cancel":
            reason = body.get("reason") or "cancelled from the dashboard"
            out = lifecycle.cancel(
                store, ref, srv.actor, settings.cancel_grace, str(reason), settings.host_name
            )
            return self._json(
                200,
                attempt=out.attempt.to_dict(),
                changed=out.changed,
                signalled=out.signalled,
                dropped=[m.to_dict() for m in out.dropped],
            )
        if action == "retry":
            prompt = body.get("prompt")
            made = retry(
                store,
                ref,
                settings,
                Git(settings.git_lock_timeout),
                RetryPolicy(settings.retry_cooldown, settings.max_attempts),
                srv.actor,
                prompt=str(prompt) if prompt else None,
            )
            return self._json(200, attempt=made.attempt.to_dict(), warnings=list(made.warnings))
        message = body.get("message")
        if not isinstance(message, str):
            raise InvalidInput("send needs a JSON body with a 'message' string")
        sent = lifecycle.send(store, ref, message, srv.actor, settings)
        return self._json(
            200,
            message=sent.message.to_dict() if sent.message else None,
            continuation=sent.continuation.to_dict() if sent.continuation else None,
        )

    def _post_events(self, rest: list[str], query: dict[str, list[str]]) -> None:
        """The Retry button of a delivery that failed for good: ``orch events --retry ID``."""
        event = naming.whole_number(rest[0]) if len(rest) == 2 and rest[1] == "retry" else None
        if event is None:
            raise NotFound(f"no such action: {self.path} (POST /api/events/EVENT_ID/retry)")
        from orch.attempts.events import listing

        srv = self.server
        again = listing.retry(srv.store, srv.settings, os.environ, event)
        self._json(200, deliveries=[d.to_dict() for d in again])

    def _post_tasks(self, rest: list[str], query: dict[str, list[str]]) -> None:
        """The Drop button of a ready queue entry: ``orch submit --drop ENTRY``."""
        entry = naming.whole_number(rest[0]) if len(rest) == 2 and rest[1] == "drop" else None
        if entry is None or not 0 < entry <= ENTRY_MAX:
            raise NotFound(f"no such action: {self.path} (POST /api/tasks/ENTRY/drop)")
        srv = self.server
        self._json(200, task=srv.store.drop_task(entry, srv.actor).to_dict())

    # -- the land queue (orch.serve.land_api): the Land button queues, the loop lands -------

    def _get_lands(self, rest: list[str], query: dict[str, list[str]]) -> None:
        if rest:
            raise NotFound(f"no such endpoint: {self.path} (GET /api/lands)")
        self._json(200, **land_api.lands_body(self.server.store))

    def _post_lands(self, rest: list[str], query: dict[str, list[str]]) -> None:
        if rest:
            raise NotFound(f"no such action: {self.path} (POST /api/lands)")
        srv = self.server
        self._json(200, **land_api.queue_body(srv.store, srv.settings, self._body(), srv.actor))


def serve_until_stopped(server: DashboardServer) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    server.server_close()
