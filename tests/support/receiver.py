"""A webhook receiver on loopback: a small threaded HTTP server that records every POST.

It answers from a script (``answers``: the status of each request in turn, then
``then``), checks each body's ``X-Orch-Signature`` against the secret as a real receiver
would, and keeps the idempotency keys it saw, so a test can tell a delivery made again
(same key) from a second delivery. ``hold`` keeps the first request waiting until
``release()`` (a deliverer killed mid-delivery).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.server
import json
import threading
from typing import Any


@dataclasses.dataclass(frozen=True)
class Received:
    key: str
    event: str
    body: dict[str, Any]
    signed: bool  # the signature header matched the body under the receiver's secret
    status: int  # what the receiver answered


class Receiver:
    def __init__(
        self,
        secret: str | None = None,
        answers: tuple[int, ...] = (),
        then: int = 200,
        hold: bool = False,
    ) -> None:
        self.secret = secret
        self._answers = list(answers)
        self.then = then
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._hold = threading.Event() if hold else None
        self.holding = threading.Event()  # set once the held request has arrived
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._record(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        signature = handler.headers.get("X-Orch-Signature", "")
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if self.secret is not None
            else ""
        )
        with self._lock:
            first = not self.received
            status = self._answers.pop(0) if self._answers else self.then
            self.received.append(
                Received(
                    key=handler.headers.get("X-Orch-Delivery", ""),
                    event=handler.headers.get("X-Orch-Event", ""),
                    body=json.loads(body),
                    signed=bool(expected) and hmac.compare_digest(signature, expected),
                    status=status,
                )
            )
        if first and self._hold is not None:
            self.holding.set()
            self._hold.wait(60)
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except OSError:
            pass  # the deliverer was killed while this request was held

    def release(self) -> None:
        if self._hold is not None:
            self._hold.set()

    @property
    def keys(self) -> list[str]:
        with self._lock:
            return [r.key for r in self.received]

    @property
    def processed(self) -> list[str]:
        """The keys a receiver that drops repeats would have acted on, in order."""
        seen: list[str] = []
        with self._lock:
            for r in self.received:
                if 200 <= r.status < 300 and r.key not in seen:
                    seen.append(r.key)
        return seen

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
