"""PostgreSQL beyond the shared test database: statements on a connection of their own,
connections that name themselves, a throwaway server of a test's own (``Cluster``:
initdb, pg_ctl, any server settings) and the PgBouncer in front of the shared server
(``scripts/ensure-pgbouncer`` starts it on 127.0.0.1:6432 in transaction mode).

Like ``pg_unavailable``, a PgBouncer that cannot be reached skips the test off CI and
fails it on CI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

PROCESS_LIMIT = 300.0  # seconds: an upper bound on any process of these tests, never asserted
PGBOUNCER = os.environ.get("ORCH_TEST_PGBOUNCER", "127.0.0.1:6432")


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def named(url: str, application_name: str) -> str:
    """The same database, with connections that say who they are in pg_stat_activity."""
    parsed = make_url(url).update_query_dict({"application_name": application_name})
    return parsed.render_as_string(hide_password=False)


def sql(url: str, query: str, params: Any = None) -> list[Any]:
    """Run one statement on a connection of its own (autocommit) and return its rows."""
    import psycopg

    with psycopg.connect(conninfo(url), autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def held_connections(pid: int, port: int) -> int:
    """How many TCP connections to ``port`` the process ``pid`` holds open now (Linux).

    Counted on the client's side: a connection it closed is gone from it at once, while
    the server may still list the backend for a moment."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[9] in inodes:
                    count += 1
    return count


# -- PgBouncer -------------------------------------------------------------------------------


def pgbouncer_unavailable(reason: str) -> None:
    """Skip (off CI) or fail (on CI) a test that needs the PgBouncer it cannot reach."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PgBouncer is required on CI and unreachable: {reason}")
    pytest.skip(
        f"PgBouncer unreachable at {PGBOUNCER} ({reason}); run scripts/ensure-pgbouncer "
        "or set ORCH_TEST_PGBOUNCER"
    )


def through_pgbouncer(url: str) -> str:
    """The same database as ``url``, reached through the PgBouncer (checked reachable)."""
    import psycopg

    host, _, port = PGBOUNCER.rpartition(":")
    pooled = make_url(url).set(host=host, port=int(port)).render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo(pooled), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pgbouncer_unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    return pooled


@dataclasses.dataclass(frozen=True)
class Route:
    """How orch reaches a PostgreSQL database: directly (``url`` is the server), or
    through the PgBouncer (``pooler``, and LISTEN on ``listen_url``, the server)."""

    name: str
    url: str
    listen_url: str | None = None

    @property
    def pooler(self) -> bool:
        return self.listen_url is not None

    def named(self, tag: str) -> Route:
        """The same route, every connection (the listening one too) named ``tag``."""
        listen = named(self.listen_url, tag) if self.listen_url else None
        return Route(self.name, named(self.url, tag), listen)

    def env(self) -> dict[str, str]:
        """The environment that makes the CLI take this route."""
        found = {"ORCH_DATABASE_URL": self.url}
        if self.listen_url:
            found.update(ORCH_POOLER="true", ORCH_LISTEN_URL=self.listen_url)
        return found

    def connecting(self) -> Any:
        """What ``open_store`` is told for this route (its ``Connecting``)."""
        from orch.store import Connecting

        return Connecting(pooler=True, listen_url=self.listen_url) if self.pooler else None


def route(name: str, direct_url: str) -> Route:
    """``direct`` or ``pgbouncer`` (checked reachable) to the database of ``direct_url``."""
    if name == "direct":
        return Route(name, direct_url)
    return Route(name, through_pgbouncer(direct_url), direct_url)


ROUTES = ["direct", pytest.param("pgbouncer", marks=pytest.mark.pgbouncer)]


# -- a throwaway server ----------------------------------------------------------------------


def pg_bin() -> Path | None:
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        path = Path(found)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL server of a test's own (initdb, pg_ctl)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="orch-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.settings: dict[str, str] = {}
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as postgres
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.skip("running as root and no runuser to start a server as postgres")
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run a server")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = [runuser, "-u", "postgres", "--"]

    def run(self, *argv: str) -> None:
        proc = subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, timeout=PROCESS_LIMIT
        )
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)

    def pg_ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {key}={value}" for key, value in self.settings.items())
        self.run(
            str(self.bindir / "pg_ctl"), action, "-D", str(self.data), "-w", "-t", "120",
            "-l", str(self.dir / "server.log"), "-o", options, *args,
        )  # fmt: skip

    def start(self, password: str | None = None, **settings: str) -> str:
        """Make and start the server; with ``password``, it asks for it (scram-sha-256);
        ``settings`` are the server's (``max_connections="8"``)."""
        self.settings = dict(settings)
        auth = ["-A", "trust"]
        user = "postgres"
        if password is not None:
            pwfile = self.dir / "pwfile"
            pwfile.write_text(password + "\n")
            if self.as_user:
                os.chown(pwfile, os.stat(self.dir).st_uid, os.stat(self.dir).st_gid)
            auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
            user = f"postgres:{password}"
        self.run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", *auth,
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.pg_ctl("start")
        sql(f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/postgres", "CREATE DATABASE orch")
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/orch"

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
