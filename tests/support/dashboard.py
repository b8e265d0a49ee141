"""Requests to the dashboard of `orch serve`, as a browser's script would make them, and
a dashboard server on an ephemeral loopback port: in this process with the token ``TOKEN``,
or the installed ``orch serve`` as a real process.

Returns status and JSON body for every answer, errors included; never retries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orch.serve.web import TOKEN_HEADER, DashboardServer
from orch.store import Store
from tests.support.cli import ORCH_BIN
from tests.support.processes import Proc, wait_for
from tests.support.store import settings

TOKEN = "test-token"


def http(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def page(url: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        text: str = response.read().decode()
        return text


@dataclasses.dataclass
class Served:
    url: str
    server: DashboardServer

    def post(self, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {TOKEN_HEADER: token} if token is not None else {}
        return http(self.url + path, "POST", body if body is not None else {}, headers)

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
        return http(self.url + path, headers={TOKEN_HEADER: token} if token is not None else {})


def start(store: Store, host: str = "127.0.0.1", **changes: Any) -> Iterator[Served]:
    server = DashboardServer(host, 0, store, settings(**changes), "dashboard", TOKEN)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_process(out_dir: Path, port: int = 0, token: str | None = None) -> tuple[Proc, str]:
    """``orch serve --port PORT`` (0: any free port; ``token``: a given one) as a real process
    in a session of its own, writing its status snapshot every 0.2 s, and the dashboard URL
    it printed; killed if it prints none."""
    server = Proc(
        [ORCH_BIN, "serve", "--port", str(port), *(["--token", token] if token else [])],
        out_dir,
        env={"ORCH_SERVE_INTERVAL": "0.2"},
        start_new_session=True,
    )
    try:
        found = wait_for(lambda: re.search(r"dashboard at (\S+)", server.stdout), "the URL")
    except BaseException:
        server.kill()
        raise
    return server, str(found.group(1))


@contextlib.contextmanager
def serving(out_dir: Path) -> Iterator[str]:
    """``orch serve`` as a real process for the length of the block: its dashboard URL;
    stopped as ``orch serve --stop`` stops it (killed if that fails)."""
    server, url = serve_process(out_dir)
    try:
        yield url
    finally:
        Proc([ORCH_BIN, "serve", "--stop"], out_dir / "stop").wait()
        if server.popen.poll() is None:
            server.signal(signal.SIGKILL)
        server.wait()


# -- what a hostile repository or agent writes: the review views must show it as text ----

# an alert would be left open in the browser (and fail the next command); the others set
# a flag the test reads
HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"
HOSTILE_SUBJECT = '<img src=x onerror="window.orchPwned=1"> fix <b>everything</b>'
HOSTILE_LOG = "<script>window.orchPwned=1</script><img src=x onerror=window.orchPwned=1>"


def commit_hostile_work(worktree: Path, long_lines: int = 0) -> str:
    """Commit, in an attempt's worktree, a file with markup for a name, an edit to a
    tracked file and (``long_lines`` > 0) a new file of that many lines, under a subject
    made of markup; returns the commit."""
    from tests.support.repos import commit_all

    (worktree / HOSTILE_NAME).write_text("<b>bold?</b>\n<script>window.orchPwned=1</script>\n")
    with open(worktree / "src" / "d0" / "f0.txt", "a") as fh:
        fh.write("one more line\n")
    if long_lines:
        body = "".join(f"line {i}: value = {i * 7 % 1000}\n" for i in range(long_lines))
        (worktree / "src" / "long.py").write_text(body)
    return commit_all(worktree, HOSTILE_SUBJECT)
