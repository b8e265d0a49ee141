"""Settings, resolved once (flag > environment > config file > default) and passed down.

Nothing here is global: ``resolve`` returns a frozen ``Settings`` built from the mapping
it is given, so tests and callers decide the environment. Reads the user config file
(TOML) but writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orch.errors import ConfigError
from orch.naming import validate_branch_prefix
from orch.record import record
from orch.sinks import SECTIONS as SINK_SECTIONS
from orch.sinks import Sink, parse_sinks

_DEFAULT_SLOTS = {"web": 0, "api": 1, "db": 2}


@record
class Settings:
    """Every setting of orch, resolved from the defaults, the config file and the
    environment (``resolve``)."""

    home: Path
    database_url: str
    worktree_root: Path
    branch_prefix: str = "orch"
    git_lock_timeout: float = 30.0
    lock_timeout: float = 120.0
    checkout_slots: int = max(1, os.cpu_count() or 1)
    lease_ttl: float = 30.0
    retry_cooldown: float = 10.0
    max_attempts: int = 5
    cancel_grace: float = 10.0
    sqlite_synchronous: str = "NORMAL"
    port_base: int = 20000
    port_block_size: int = 100
    port_limit: int = 60999
    port_slots: dict[str, int] = dataclasses.field(default_factory=lambda: dict(_DEFAULT_SLOTS))
    serve_interval: float = 5.0
    dispatch_per_cycle: int = 4
    dispatch_timeout: float = 300.0
    attempt_time_budget: float = 3600.0
    pool_size: int = 0  # warm worktrees kept per repository when no `orch pool fill --size`
    pool_refill: bool = True  # refill the pool in the background after each dispatch
    # PostgreSQL behind a transaction-mode pooler (PgBouncer): True or False as configured,
    # None to let the store find out at its first connection
    pooler: bool | None = None
    # the PostgreSQL server itself, for LISTEN when database_url goes through a pooler
    listen_url: str | None = None
    config_file: Path | None = None
    # the user config's event sinks (every repository's events), and how deliveries retry
    sinks: tuple[Sink, ...] = ()
    event_retry_base: float = 5.0  # seconds before the first retry; doubles each time
    event_max_tries: int = 8  # then the delivery has failed for good ('orch events --failed')
    # the CI loop of orch serve / orch loop over the attempts' pull requests
    pr_poll_interval: float = 60.0  # seconds between two looks at one open pull request
    max_ci_followups: int = 3  # follow-ups about failing checks, then it needs attention
    ci_followup_backoff: float = 300.0  # seconds after the first such follow-up; doubles
    # [agents.NAME] args: the options a built-in agent template runs with, in place of its
    # own (``orch.attempts.agent_command``); config file only
    agent_args: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # ``orch work`` pushes an attempt's branch to this remote when a run ends, so that
    # ``orch land`` on another host can fetch it (off by default)
    push: bool = False
    push_remote: str = "origin"
    # gethostname()'s answer without importing socket (a completion request reads settings)
    host_name: str = dataclasses.field(default_factory=lambda: os.uname().nodename)

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def cache_dir(self) -> Path:
        """What orch keeps to go faster and can always make again (config files parsed)."""
        return self.home / "cache"

    @property
    def sqlite_file(self) -> Path | None:
        """The embedded store's file, read from the URL without importing SQLAlchemy."""
        scheme, sep, rest = self.database_url.partition(":///")
        if not sep or scheme.split("+")[0] != "sqlite":
            return None
        name = rest.split("?")[0]
        return Path(name) if name and name != ":memory:" else None


# key in the config file -> (environment variable, type)
_KEYS: dict[str, tuple[str, type]] = {
    "database_url": ("ORCH_DATABASE_URL", str),
    "worktree_root": ("ORCH_WORKTREE_ROOT", str),
    "branch_prefix": ("ORCH_BRANCH_PREFIX", str),
    "git_lock_timeout": ("ORCH_GIT_LOCK_TIMEOUT", float),
    "lock_timeout": ("ORCH_LOCK_TIMEOUT", float),
    "checkout_slots": ("ORCH_CHECKOUT_SLOTS", int),
    "lease_ttl": ("ORCH_LEASE_TTL", float),
    "retry_cooldown": ("ORCH_RETRY_COOLDOWN", float),
    "max_attempts": ("ORCH_MAX_ATTEMPTS", int),
    "cancel_grace": ("ORCH_CANCEL_GRACE", float),
    "sqlite_synchronous": ("ORCH_SQLITE_SYNCHRONOUS", str),
    "port_base": ("ORCH_PORT_BASE", int),
    "port_block_size": ("ORCH_PORT_BLOCK_SIZE", int),
    "port_limit": ("ORCH_PORT_LIMIT", int),
    "port_slots": ("ORCH_PORT_SLOTS", dict),
    "host_name": ("ORCH_HOST_NAME", str),
    "serve_interval": ("ORCH_SERVE_INTERVAL", float),
    "dispatch_per_cycle": ("ORCH_DISPATCH_PER_CYCLE", int),
    "dispatch_timeout": ("ORCH_DISPATCH_TIMEOUT", float),
    "attempt_time_budget": ("ORCH_ATTEMPT_TIME_BUDGET", float),
    "pool_size": ("ORCH_POOL_SIZE", int),
    "pool_refill": ("ORCH_POOL_REFILL", bool),
    "event_retry_base": ("ORCH_EVENT_RETRY_BASE", float),
    "event_max_tries": ("ORCH_EVENT_MAX_TRIES", int),
    "pr_poll_interval": ("ORCH_PR_POLL_INTERVAL", float),
    "max_ci_followups": ("ORCH_MAX_CI_FOLLOWUPS", int),
    "ci_followup_backoff": ("ORCH_CI_FOLLOWUP_BACKOFF", float),
    "pooler": ("ORCH_POOLER", bool),
    "listen_url": ("ORCH_LISTEN_URL", str),
    "push": ("ORCH_PUSH", bool),
    "push_remote": ("ORCH_PUSH_REMOTE", str),
}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("ORCH_HOME"):
        return Path(env["ORCH_HOME"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "orch"
    return Path(env.get("HOME", "~")).expanduser() / ".local" / "state" / "orch"


def config_file_path(env: Mapping[str, str]) -> Path:
    if env.get("ORCH_CONFIG"):
        return Path(env["ORCH_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "orch" / "config.toml"


def _read_file(path: Path, kept_in: Path) -> dict[str, Any]:
    try:
        data = read_toml(path, "config file ", kept_in)
    except FileNotFoundError:
        return {}
    known = set(_KEYS) | set(SINK_SECTIONS) | {"agents"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {path}: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return data


def _agent_args(agents: Any, path: Path) -> dict[str, tuple[str, ...]]:
    """``[agents.claude] args = ["--permission-mode", "plan"]``: per agent, its options."""
    if not isinstance(agents, dict):
        raise ConfigError(f"[agents] in {path} must be a table of agents")
    found: dict[str, tuple[str, ...]] = {}
    for name, table in agents.items():
        if not isinstance(table, dict) or set(table) - {"args"}:
            raise ConfigError(f"[agents.{name}] in {path} takes one key: args (a list of strings)")
        args = table.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"[agents.{name}] args in {path} must be a list of strings")
        found[str(name)] = tuple(args)
    return found


def parse_slots(value: Any, source: str) -> dict[str, int]:
    """``{"web": 0, "api": 1}`` (a TOML table) or ``"web=0,api=1"`` (the environment)."""
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        value = {name.strip(): off.strip() for name, _, off in pairs}
    if not isinstance(value, dict):
        raise ConfigError(f"port_slots from {source} must be a table of name = offset")
    slots: dict[str, int] = {}
    for name, offset in value.items():
        if not str(name).replace("_", "").isalnum():
            raise ConfigError(f"port_slots from {source}: invalid slot name {name!r}")
        try:
            slots[str(name)] = int(offset)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"port_slots from {source}: offset of {name!r} must be an integer"
            ) from exc
        if slots[str(name)] < 0:
            raise ConfigError(f"port_slots from {source}: offset of {name!r} must not be negative")
    return slots


def check_slots_fit(slots: Mapping[str, int], block_size: int, what: str) -> None:
    """Every slot's port must lie inside the attempt's own block, never in a neighbour's."""
    if any(off >= block_size for off in slots.values()):
        raise ConfigError(f"{what} offsets must be below port_block_size ({block_size})")


# settings for which 0 means "none": no cooldown, no warm pool
_ZERO_ALLOWED = frozenset(
    {"retry_cooldown", "pool_size", "pr_poll_interval", "max_ci_followups", "ci_followup_backoff"}
)


def _coerce(key: str, value: Any, source: str) -> Any:
    kind = _KEYS[key][1]
    if kind is dict:
        return parse_slots(value, source)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE + _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ConfigError(f"{key} from {source} must be true or false: {value!r}")
    try:
        result = kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} from {source} must be a {kind.__name__}: {value!r}") from exc
    if kind in (int, float) and (result < 0 or (result == 0 and key not in _ZERO_ALLOWED)):
        raise ConfigError(f"{key} from {source} must be positive: {value!r}")
    return result


def resolve(env: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings: ``overrides`` (flags) > ``env`` > config file > defaults."""
    home = default_home(env)
    path = config_file_path(env)
    values: dict[str, Any] = {}
    data = _read_file(path, home / "cache")
    if any(section in data for section in SINK_SECTIONS):
        values["sinks"] = parse_sinks(data, str(path), path, None)
    if "agents" in data:
        values["agent_args"] = _agent_args(data["agents"], path)
    for key, value in data.items():
        if key not in SINK_SECTIONS and key != "agents":
            values[key] = _coerce(key, value, str(path))
    for key, (var, _kind) in _KEYS.items():
        if env.get(var):
            values[key] = _coerce(key, env[var], var)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, "the command line")
    database_url = values.pop("database_url", None) or f"sqlite:///{home / 'orch.db'}"
    worktree_root = Path(values.pop("worktree_root", None) or home / "worktrees").expanduser()
    validate_branch_prefix(values.get("branch_prefix", "orch"))
    size = values.get("port_block_size", 100)
    base = values.get("port_base", 20000)
    # the default slots too: a small port_block_size must still hold every slot
    check_slots_fit(values.get("port_slots", _DEFAULT_SLOTS), size, "port_slots")
    if not 1024 <= base < values.get("port_limit", 60999) <= 65535:
        raise ConfigError("ports: need 1024 <= port_base < port_limit <= 65535")
    if "sqlite_synchronous" in values:
        values["sqlite_synchronous"] = str(values["sqlite_synchronous"]).upper()
        if values["sqlite_synchronous"] not in ("FULL", "NORMAL"):
            raise ConfigError("sqlite_synchronous must be FULL or NORMAL")
    return Settings(
        home=home,
        database_url=database_url,
        # resolved: git names worktrees by their real path, and orch compares the two
        worktree_root=worktree_root.resolve(),
        config_file=path if path.exists() else None,
        **values,
    )


def read_toml(path: Path, what: str = "", kept_in: Path | None = None) -> dict[str, Any]:
    """A TOML file's tables; FileNotFoundError when there is none. The parser is imported
    only when there is a file to parse (most commands start without one). With
    ``kept_in`` (the orch home's cache), the tables are kept there by the file's stat and
    read back while it stays the same (``_kept``)."""
    if kept_in is not None:
        return _kept(path, what, kept_in)
    try:
        with path.open("rb") as fh:
            import tomllib

            try:
                return tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"cannot read {what}{path}: {exc}") from exc
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read {what}{path}: {exc}") from exc


# -- config files kept parsed ----------------------------------------------------------------
#
# Importing tomllib costs about 2 ms (its regular expressions compile at import), more than
# parsing a config file; a command that changes an attempt reads the user config, and with
# sinks the changed repository's orch.toml too. Their tables are kept in the orch home
# (marshal: no import) under the file's stat, and read back while that stat is unchanged.

_KEPT_FORMAT = 1
# a file changed this recently may change again within one tick of the file system's clock
# with the same size: it is not kept until it has been left alone this long (racy git)
_SETTLED_NS = 2_000_000_000


def _kept(path: Path, what: str, kept_in: Path) -> dict[str, Any]:
    import marshal
    import time

    try:
        st = path.stat()
    except FileNotFoundError:
        raise
    except OSError:
        return read_toml(path, what)  # which says why
    stamp = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    name = str(path).replace("%", "%25").replace("/", "%2F")
    copy = kept_in / f"{name}.marshal"
    if len(copy.name) > 200:
        return read_toml(path, what)
    try:
        fd = os.open(copy, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        pass
    else:
        try:
            own = os.fstat(fd)
            # only a copy this user wrote and nobody else can touch
            if own.st_uid == os.getuid() and not own.st_mode & 0o077:
                format_, kept_stamp, data = marshal.loads(os.read(fd, own.st_size + 1))
                if format_ == _KEPT_FORMAT and tuple(kept_stamp) == stamp:
                    return dict(data)
        except (OSError, ValueError, EOFError, TypeError):
            pass  # unreadable or not ours: parsed again, and written anew below
        finally:
            os.close(fd)
    data = read_toml(path, what)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
        _keep(copy, marshal, (_KEPT_FORMAT, stamp, data))
    return data


def _keep(copy: Path, marshal: Any, record: tuple[Any, ...]) -> None:
    """Write the copy (a temporary file renamed over it); nothing when it cannot be
    (tables marshal cannot hold, such as TOML dates; a home not made yet; no space)."""
    if not copy.parent.parent.is_dir():
        return  # the orch home itself is made by the first command that writes there
    try:
        body = marshal.dumps(record)
    except ValueError:
        return
    from orch import private

    tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
    try:
        private.make_dir(copy.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp, copy)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
