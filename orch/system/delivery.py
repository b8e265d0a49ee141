"""Handing one event document to one sink: a command, a webhook or a desktop notification.

A hook runs like the set-up hook (``sh -c`` in its own process group, killed at its
timeout, output appended to its log), the document on its standard input and the
``ORCH_*`` variables in its environment. A webhook is an HTTP POST of the document (the
standard library's ``urllib``), signed like GitHub's webhooks
(``X-Orch-Signature: sha256=<hex HMAC-SHA256 of the body>``) and carrying the delivery's
idempotency key (``X-Orch-Delivery``); redirects are not followed. A notification goes
through ``notify-send`` or ``osascript``, whichever is on PATH. Each answers an
``Outcome``: delivered, worth another try, failed for good, or nothing to deliver with.
Never touches the store.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orch import __version__
from orch.errors import describe_os_error
from orch.record import record
from orch.system import processes

SIGNATURE_HEADER = "X-Orch-Signature"
DELIVERY_HEADER = "X-Orch-Delivery"
EVENT_HEADER = "X-Orch-Event"
# refusals worth another try all the same: the receiver asks to be called again later
_RETRIED_4XX = (408, 429)


@record
class Outcome:
    delivered: bool
    error: str | None = None
    retry: bool = True  # a failure worth another try (False: failed for good at once)
    skipped: bool = False  # nothing on this machine to deliver with


def encode(doc: dict[str, Any]) -> bytes:
    """The body every sink gets: the event document as UTF-8 JSON."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run_hook(
    command: str,
    body: bytes,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    timeout: float,
) -> Outcome:
    try:
        code = processes.run_hook(
            command, cwd, env, log_path, timeout, label="event hook", input_data=body
        )
    except OSError as exc:
        return Outcome(False, f"cannot run the hook: {describe_os_error(exc)}")
    if code == 0:
        return Outcome(True)
    tail = " | ".join(
        ln.strip()
        for ln in processes.log_tail(log_path, 6)
        if ln.strip() and not ln.startswith("=== orch")
    )[-300:]
    what = f"timed out after {timeout:g}s" if code is None else f"exited with {code}"
    return Outcome(False, f"hook {what}: {tail or '(no output)'} (log {log_path})")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirected POST would arrive as a GET, unsigned: say so instead


def post_webhook(
    url: str, body: bytes, secret: str | None, key: str, kind: str, timeout: float
) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"orch/{__version__}",
        EVENT_HEADER: kind,
        DELIVERY_HEADER: key,
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        text = describe_os_error(reason) if isinstance(reason, OSError) else str(reason)
        return Outcome(False, f"POST {url}: {text or type(exc).__name__}")
    if 200 <= status < 300:
        return Outcome(True)
    if status >= 500 or status in _RETRIED_4XX:
        return Outcome(False, f"POST {url}: HTTP {status}")
    return Outcome(
        False, f"POST {url}: HTTP {status}, refused by the receiver (not tried again)", False
    )


def notify(title: str, message: str, timeout: float) -> Outcome:
    argv: list[str]
    if (notify_send := shutil.which("notify-send")) is not None:
        argv = [notify_send, "--app-name=orch", title, message]
    elif (osascript := shutil.which("osascript")) is not None and sys.platform == "darwin":
        script = f"display notification {_quoted(message)} with title {_quoted(title)}"
        argv = [osascript, "-e", script]
    else:
        return Outcome(False, "neither notify-send nor osascript is on PATH", skipped=True)
    try:
        done = processes.run_bounded(argv, "", {"PATH": "/usr/bin:/bin", **_session()}, timeout)
    except OSError as exc:
        return Outcome(False, f"{argv[0]}: {describe_os_error(exc)}")
    if done is None:
        return Outcome(False, f"{Path(argv[0]).name} timed out after {timeout:g}s")
    if done.returncode != 0:
        return Outcome(False, f"{Path(argv[0]).name}: {done.stderr.strip()[-300:]}")
    return Outcome(True)


def _session() -> dict[str, str]:
    """What a notifier needs to find the desktop session."""
    names = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "HOME")
    return {n: os.environ[n] for n in names if n in os.environ}


def _quoted(text: str) -> str:
    """An AppleScript string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
