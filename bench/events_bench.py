"""Benchmark: what configured sinks cost the command that makes a change (issue 20, point 7).

Times ``orch cancel ATTEMPT`` (a change that writes an event) through the installed entry
point, side by side in one run, interleaved with alternating order, in three orch homes:

* ``none``: no sink configured anywhere (the command still looks whether one is);
* ``user``: three sinks in the user config (a hook, a webhook, a desktop notification);
* ``repo``: the same three sinks in the repository's ``orch.toml`` (the command reads the
  changed attempt's repository and its config to know a sink wants the event).

With sinks the command starts ``orch events deliver`` in the background and returns; the
bench waits (untimed) for that deliverer to end before the next timed command, so each
command is measured on a quiet machine, and checks that every event was delivered.
The attempts are made through the store API beforehand (untimed). Target: a command with
three sinks at most 5 ms slower than with none (median).

Usage: python bench/events_bench.py [--iterations N] [--orch PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import fcntl
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import compile_orch, find_orch, isolated_env, orch_source, python_of, run

TARGET_MS = 5.0
SINKS = """
[[hooks]]
command = "true"
on = ["cancelled"]

[[webhooks]]
url = "{url}"
secret = "bench-secret"
on = ["cancelled"]

[notify]
on = ["cancelled"]
"""


class _Quiet(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def seed(python: str, env: dict[str, str], repo: Path, count: int) -> list[str]:
    """``count`` queued attempts with a ready workspace, made through the store API."""
    code = (
        "import sys, uuid\n"
        "from pathlib import Path\n"
        "from orch.config import resolve\n"
        "import os\n"
        "from orch.models import NewAttempt\n"
        "from orch.store import open_store\n"
        "s = resolve(os.environ)\n"
        "store = open_store(s.database_url, s.locks_dir)\n"
        "for i in range(int(sys.argv[2])):\n"
        "    aid = uuid.uuid4().hex[:8]\n"
        "    a = store.create_attempt(NewAttempt(id=aid, task_key=f'bench-{i}', "
        "repository=sys.argv[1], base_ref='HEAD', base_commit='0'*40, "
        "branch_name=f'orch/bench-{aid}', worktree_path=f'/nonexistent/{aid}', "
        "worker=None, prompt='bench'), 'bench')\n"
        "    store.finish_provisioning(a.id, Path('/nonexistent.json'), 'bench')\n"
        "    print(a.id)\n"
    )
    out = run([python, "-c", code, str(repo), str(count)], env).stdout.decode()
    return out.split()


def deliverer_idle(home: Path) -> bool:
    for lock in (home / "locks").glob("deliver-*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    return True


def wait_idle(home: Path) -> None:
    deadline = time.monotonic() + 60
    while not deliverer_idle(home):
        if time.monotonic() > deadline:
            raise SystemExit(f"the deliverer of {home} did not end within 60 s")
        time.sleep(0.01)


def measure_kick(python: str, env: dict[str, str], home: Path, count: int) -> list[float]:
    """What a command with sinks does beyond one without: take the deliver lock and start
    the deliverer (``start_deliverer``), timed inside one process, the deliverer left to
    end (untimed) before the next."""
    code = (
        "import os, sys, time, fcntl, glob\n"
        "from orch.config import resolve\n"
        "from orch.attempts.events.kick import start_deliverer\n"
        "s = resolve(os.environ)\n"
        "for _ in range(int(sys.argv[1])):\n"
        "    t = time.perf_counter()\n"
        "    start_deliverer(s, os.environ)\n"
        "    print((time.perf_counter() - t) * 1000, flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [python, "-c", code, str(count)],
        env=env,
        cwd=env["HOME"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    times = []
    for _ in range(count):
        times.append(float(proc.stdout.readline()))
        wait_idle(home)
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--orch", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    orch = find_orch(args.orch)
    python = python_of(orch)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sinks = SINKS.format(url=f"http://127.0.0.1:{server.server_address[1]}/")
    with tempfile.TemporaryDirectory(prefix="orch-events-bench-") as tmp:
        root = Path(tmp)
        env = isolated_env(root)
        compile_orch(python, env, print)
        sides: dict[str, dict[str, Any]] = {}
        for side in ("none", "user", "repo"):
            home = root / f"home-{side}"
            repo = root / f"repo-{side}"
            repo.mkdir()
            side_env = {**env, "ORCH_HOME": str(home), "ORCH_CONFIG": str(root / f"{side}.toml")}
            if side == "user":
                (root / "user.toml").write_text(sinks)
            if side == "repo":
                (repo / "orch.toml").write_text(sinks)
            ids = seed(python, side_env, repo, args.iterations + 1)
            # one untimed command first: the store and the page cache warm
            run([orch, "cancel", ids.pop()], side_env)
            wait_idle(home)
            sides[side] = {"env": side_env, "home": home, "ids": ids, "times": []}
        order = list(sides)
        for i in range(args.iterations):
            for side in order if i % 2 == 0 else list(reversed(order)):
                s = sides[side]
                started = time.perf_counter()
                run([orch, "cancel", s["ids"][i]], s["env"])
                s["times"].append((time.perf_counter() - started) * 1000)
                wait_idle(s["home"])  # untimed: the next command runs on a quiet machine
        server.shutdown()
        print(f"orch: {orch_source(python, env)}")
        print(f"orch cancel, {args.iterations} interleaved runs per side (ms):")
        base = statistics.median(sides["none"]["times"])
        report: dict[str, Any] = {"iterations": args.iterations, "sides": {}}
        for side, s in sides.items():
            times = sorted(s["times"])
            median = statistics.median(times)
            p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
            print(
                f"  {side:>5}: median {median:6.1f}  p90 {p90:6.1f}  "
                f"vs none {median - base:+5.1f} ms"
            )
            report["sides"][side] = {
                "median_ms": median,
                "p90_ms": p90,
                "over_none_ms": median - base,
            }
        kick = measure_kick(python, sides["user"]["env"], sides["user"]["home"], args.iterations)
        print(
            f"  the start of a deliverer alone (lock + posix_spawn), in process: "
            f"median {statistics.median(kick):.2f}  max {max(kick):.2f} ms"
        )
        report["kick_ms"] = {"median": statistics.median(kick), "max": max(kick)}
        delivered = _Quiet.received
        print(f"webhook deliveries received: {delivered} (expected {2 * (args.iterations + 1)})")
        worst = max(report["sides"][s]["over_none_ms"] for s in ("user", "repo"))
        verdict = "met" if worst <= TARGET_MS else "NOT met"
        print(f"target: at most {TARGET_MS:g} ms slower with three sinks: {verdict}")
        report["webhook_deliveries"] = delivered
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        if delivered != 2 * (args.iterations + 1):
            sys.exit("not every event was delivered")


if __name__ == "__main__":
    main()
