"""What the ``orch serve`` tests share: a real store, real dispatches, a dead worker."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orch.config import Settings, resolve
from orch.models import Attempt, WorkerIdentity
from orch.store import Store
from orch.system import processes


def settings(**changes: Any) -> Settings:
    return dataclasses.replace(resolve(os.environ), **changes)


def dead_worker(store: Store, attempt_id: str, s: Settings) -> Attempt:
    """Claim ``attempt_id`` for a real process that then exits: its worker is gone."""
    proc = subprocess.Popen(["sleep", "30"])
    worker = WorkerIdentity(
        name="w", host=s.host_name, pid=proc.pid, started_at=processes.start_time(proc.pid)
    )
    lease = store.claim(worker, 60.0, "test", attempt_id)
    assert lease is not None
    proc.kill()
    proc.wait()
    return lease.attempt


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


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        text: str = response.read().decode()
        return text


def repo_root(repo: Path) -> str:
    return str(repo.resolve())
