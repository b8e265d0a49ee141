"""What ran in an attempt's worktree: its runs (the agent's and the checks'), the usage
its agent reported, and the follow-up messages that become runs.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from orch.models.serial import plain
from orch.record import record


@record
class Message:
    """A follow-up instruction queued for an attempt."""

    id: int
    attempt_id: str
    body: str
    actor: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    run_number: int | None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@record
class Usage:
    """What a run's agent says it consumed, as the agent itself reported it. A field the
    agent did not report is None, never 0: unknown is not free.

    ``input_tokens`` counts every token the model read, cached ones included;
    ``cached_tokens`` is the part of them read from the provider's cache; ``output_tokens``
    includes reasoning. ``model``: the model names, most used first, comma-separated."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None

    @property
    def known(self) -> bool:
        """Whether the agent reported anything at all."""
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    @classmethod
    def total(cls, usages: Iterable[Usage | None]) -> Usage | None:
        """The sum of what is known (a field nobody reported stays None); the models named
        once each, in order of first mention. None when nothing was reported."""
        known = [u for u in usages if u is not None and u.known]
        if not known:
            return None

        def add(values: list[Any]) -> Any:
            present = [v for v in values if v is not None]
            return sum(present) if present else None

        models = list(
            dict.fromkeys(m.strip() for u in known for m in (u.model or "").split(",") if m.strip())
        )
        return cls(
            input_tokens=add([u.input_tokens for u in known]),
            output_tokens=add([u.output_tokens for u in known]),
            cached_tokens=add([u.cached_tokens for u in known]),
            cost_usd=add([u.cost_usd for u in known]),
            model=", ".join(models) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RunKind(enum.StrEnum):
    AGENT = "agent"  # the agent's command (the first run, or a follow-up)
    CHECK = "check"  # the repository's check command (``[review] check``)


@record
class Run:
    """One process run inside an attempt's worktree: the agent (the first run, or a
    follow-up), or the repository's check command."""

    attempt_id: str
    number: int
    prompt: str
    command: tuple[str, ...]
    log_path: str | None
    pid: int | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    exit_code: int | None
    kind: RunKind = RunKind.AGENT
    timed_out: bool = False  # killed by its timeout (a check's ``check_timeout``)
    # what the agent reported it consumed (``orch.attempts.usage``); None: nothing known
    usage: Usage | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while it runs (or if its end was never heard)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def result(self) -> str:
        """``passed``, ``failed``, ``timed out``, ``interrupted`` (whoever waited for it
        was stopped), or ``unfinished`` (still running, or its end was never heard)."""
        if self.timed_out:
            return "timed out"
        if self.ended_at is None:
            return "unfinished"
        if self.exit_code is None:
            return "interrupted"
        return "passed" if self.exit_code == 0 else "failed"

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        out["command"] = list(self.command)
        out["kind"] = str(self.kind)
        out["duration"] = self.duration
        out["result"] = self.result
        return out
