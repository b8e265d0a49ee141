"""The event sinks a user configures: ``[[hooks]]``, ``[[webhooks]]`` and ``[notify]``.

Read from the user config (every repository's events) or a repository's ``orch.toml``
(that repository's events only), validated here with unknown keys refused, each sink
named (its ``name``, else one derived from its command or URL: the name is half of every
delivery's idempotency key, so it must not change while the sink does not). Standard
library only; what a sink does with an event is ``orch.system.sinks``, which events it is
given is ``orch.attempts.events``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orch.errors import ConfigError
from orch.record import record

SECTIONS = ("hooks", "webhooks", "notify")
EVERY_EVENT = "*"
# what [notify] tells about when it names nothing: the ends of an attempt
NOTIFY_DEFAULT_ON = ("succeeded", "failed", "timed_out", "worker_gone")
_TIMEOUTS = {"hook": 30.0, "webhook": 10.0, "notify": 10.0}
_KEYS = {
    "hook": {"name", "command", "on", "timeout"},
    "webhook": {"name", "url", "secret", "secret_env", "on", "timeout"},
    "notify": {"name", "on", "timeout"},
}
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SINK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@record
class Sink:
    """Where events of the kinds in ``on`` go: a command, a webhook or a notification."""

    name: str
    kind: str  # hook | webhook | notify
    on: frozenset[str]
    timeout: float
    source: Path | None = None  # the config file: a sink gets the events made after it changed
    scope: str | None = None  # the repository whose events it gets (None: every repository)
    command: str | None = None
    url: str | None = None
    secret: str | None = None
    secret_env: str | None = None

    def subscribes(self, kinds: frozenset[str]) -> bool:
        return EVERY_EVENT in self.on or bool(self.on & kinds)

    @property
    def target(self) -> str:
        """What it delivers to, in a user's words."""
        if self.kind == "hook":
            return f"command {self.command!r}"
        if self.kind == "webhook":
            return f"POST {self.url}"
        return "desktop notification"


def parse_sinks(
    data: Mapping[str, Any], where: str, source: Path | None, scope: str | None
) -> tuple[Sink, ...]:
    """The sinks of one config file's tables (``data``); ``ConfigError`` on a bad one."""
    sinks: list[Sink] = []
    for section, kind in (("hooks", "hook"), ("webhooks", "webhook")):
        tables = data.get(section, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError(f"{section} in {where} must be tables: write [[{section}]]")
        for number, table in enumerate(tables, 1):
            sinks.append(_sink(kind, table, f"[[{section}]] #{number} in {where}", source, scope))
    notify = data.get("notify")
    if notify is not None:
        if not isinstance(notify, dict):
            raise ConfigError(f"notify in {where} must be a table: write [notify]")
        sinks.append(_sink("notify", notify, f"[notify] in {where}", source, scope))
    names = [s.name for s in sinks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"sink name(s) used twice in {where}: {', '.join(twice)}")
    return tuple(sinks)


def _sink(
    kind: str, table: Mapping[str, Any], where: str, source: Path | None, scope: str | None
) -> Sink:
    unknown = sorted(set(table) - _KEYS[kind])
    if unknown:
        known = ", ".join(sorted(_KEYS[kind]))
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)} (known: {known})")
    command = _text(table, "command", where) if kind == "hook" else None
    url = _text(table, "url", where) if kind == "webhook" else None
    if kind == "hook" and command is None:
        raise ConfigError(f'{where} needs command = "..."')
    if kind == "webhook" and (url is None or not url.startswith(("http://", "https://"))):
        raise ConfigError(f'{where} needs url = "http(s)://..."')
    secret, secret_env = _text(table, "secret", where), _text(table, "secret_env", where)
    if secret is not None and secret_env is not None:
        raise ConfigError(f"{where}: give secret or secret_env, not both")
    if secret_env is not None and not _ENV_NAME.match(secret_env):
        raise ConfigError(f"{where}: secret_env must name an environment variable")
    on = _on(table, kind, where)
    name = _text(table, "name", where) or _derived_name(kind, command or url or "")
    if not _SINK_NAME.match(name):
        raise ConfigError(
            f"{where}: name {name!r} may hold letters, digits and - _ . (at most 100)"
        )
    return Sink(
        name=name,
        kind=kind,
        on=on,
        timeout=_timeout(table.get("timeout", _TIMEOUTS[kind]), where),
        source=source,
        scope=scope,
        command=command,
        url=url,
        secret=secret,
        secret_env=secret_env,
    )


def _derived_name(kind: str, what: str) -> str:
    if kind == "notify":
        return "notify"
    return f"{kind}-{hashlib.sha256(what.encode()).hexdigest()[:10]}"


def _text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _on(table: Mapping[str, Any], kind: str, where: str) -> frozenset[str]:
    value = table.get("on", list(NOTIFY_DEFAULT_ON) if kind == "notify" else None)
    if value is None:
        raise ConfigError(f'{where} needs on = ["succeeded", "failed", ...] (or ["*"])')
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: on must be a non-empty list of event kinds")
    bad = [v for v in value if v != EVERY_EVENT and not _EVENT_NAME.match(v)]
    if bad:
        raise ConfigError(
            f"{where}: {', '.join(map(repr, bad))} is no event kind (an attempt state such "
            "as 'succeeded', an event name such as 'cancelled', or '*')"
        )
    return frozenset(value)


def _timeout(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: timeout must be a number of seconds: {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: timeout must be positive: {value!r}")
    return float(value)


def merge(*groups: tuple[Sink, ...]) -> tuple[Sink, ...]:
    """Sinks from several files, one per name: the first group's wins (the user config's,
    whose scope is every repository, over a repository's sink of the same name)."""
    seen: dict[str, Sink] = {}
    for group in groups:
        for sink in group:
            seen.setdefault(sink.name, sink)
    return tuple(seen.values())
