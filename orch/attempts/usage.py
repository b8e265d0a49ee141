"""What an agent says a run consumed (tokens, cost, model) and its last word, read from
the run's output. Pure: it is given the output's lines, reads no file, and never fails:
output it cannot read leaves the usage unknown (None), never zero.

The formats, each as its CLI prints it in machine-readable mode:

- Claude Code, ``-p --output-format stream-json`` (JSON lines) or ``json`` (one line):
  the ``{"type": "result"}`` message carries ``usage`` (``input_tokens``,
  ``cache_read_input_tokens``, ``cache_creation_input_tokens``, ``output_tokens``),
  ``total_cost_usd``, ``modelUsage`` (per model: ``inputTokens``, ``outputTokens``,
  ``cacheReadInputTokens``, ``cacheCreationInputTokens``, ``costUSD``), ``result`` (the
  answer or the error) and ``is_error``.
- Codex, ``exec --json`` (JSON lines): ``turn.completed`` carries ``usage``
  (``input_tokens``, ``cached_input_tokens``, ``output_tokens``); ``turn.failed`` and
  ``error`` carry the error, the ``agent_message`` item the answer.
- Gemini CLI, ``--output-format stream-json`` (JSON lines): ``init`` names the model,
  ``message`` events carry the answer, the ``result`` event carries ``stats``
  (``input_tokens``, ``output_tokens``, ``cached``; newer versions add ``models``) and
  ``error``; ``--output-format json``: one pretty-printed object with ``response``,
  ``error`` and ``stats.models.<name>.tokens`` (``prompt``, ``candidates``, ``cached``),
  added up as Gemini adds them for its stream.
- Any command: a line ``orch-usage: {"input_tokens": …, "output_tokens": …,
  "cached_tokens": …, "cost_usd": …, "model": …}`` (every key optional).

The last report in a run's output is the run's usage. A line that is meant as a report
(an ``orch-usage:`` line, a JSON-lines event, a pretty-printed object) but cannot be read
is counted in ``unreadable`` and otherwise ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from orch.models import Usage
from orch.record import record

PREFIX = "orch-usage:"
# a pretty-printed object longer than this is not a usage report worth holding in memory
_MAX_BLOCK = 4 * 1024 * 1024


@record
class AgentReport:
    """What one run's output says: the usage, the agent's last word (its answer, or the
    error it stopped on) and how many report lines could not be read."""

    usage: Usage | None = None
    message: str | None = None
    unreadable: int = 0


def read_report(lines: Iterable[str]) -> AgentReport:
    reader = _Reader()
    for line in lines:
        reader.feed(line)
    return reader.report()


class _Reader:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.message: str | None = None
        self.unreadable = 0
        self._block: list[str] | None = None  # a pretty-printed object being gathered
        self._block_size = 0
        self._model: str | None = None  # as a stream's first event named it
        self._answer: list[str] = []  # the assistant's text since the last tool call

    def feed(self, line: str) -> None:
        text = line.strip()
        if self._block is not None:
            self._gather(line, text)
        elif text.startswith(PREFIX):
            self._orch_line(text[len(PREFIX) :])
        elif text == "{":
            self._block, self._block_size = [line], len(line)
        elif text.startswith("{"):
            try:
                event = json.loads(text)
            except ValueError:
                # a JSON-lines event cut short; other braces are just output
                self.unreadable += 1 if text.startswith('{"') else 0
                return
            if isinstance(event, dict):
                self._event(event)

    def report(self) -> AgentReport:
        if self._block is not None:  # the output ended inside an object
            self.unreadable += 1
            self._block = None
        usage = self.usage if self.usage is not None and self.usage.known else None
        return AgentReport(usage, self.message, self.unreadable)

    def _gather(self, line: str, text: str) -> None:
        assert self._block is not None
        self._block.append(line)
        self._block_size += len(line)
        if self._block_size > _MAX_BLOCK:
            self._block = None
            self.unreadable += 1
        elif text == "}" and not line[:1].isspace():
            block, self._block = self._block, None
            try:
                event = json.loads("\n".join(block))
            except ValueError:
                self.unreadable += 1
                return
            if isinstance(event, dict):
                self._event(event)

    def _orch_line(self, rest: str) -> None:
        try:
            given = json.loads(rest)
            usage = _orch_usage(given)
        except (ValueError, TypeError):
            self.unreadable += 1
            return
        self.usage = usage

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "result" and ("stats" in event or "status" in event):
            self._gemini_result(event)
        elif kind == "result":
            self._claude_result(event)
        elif kind == "init":
            self._model = _text(event.get("model"))
        elif kind == "message":
            self._message(event)
        elif kind in ("tool_use", "tool_result"):
            self._answer = []
        elif kind == "turn.completed":
            usage = event.get("usage")
            if isinstance(usage, Mapping):
                self.usage = Usage(
                    input_tokens=_count(usage.get("input_tokens")),
                    output_tokens=_count(usage.get("output_tokens")),
                    cached_tokens=_count(usage.get("cached_input_tokens")),
                )
        elif kind == "turn.failed":
            self._say(_error_text(event.get("error")))
        elif kind == "error" and event.get("severity") != "warning":
            self._say(_error_text(event))
        elif kind == "item.completed":
            item = event.get("item")
            if isinstance(item, Mapping) and item.get("type") == "agent_message":
                self._say(item.get("text"))
        elif kind is None and ("stats" in event or "response" in event or "error" in event):
            self._gemini_json(event)

    def _say(self, text: object) -> None:
        if isinstance(text, str) and text.strip():
            self.message = text

    def _message(self, event: Mapping[str, Any]) -> None:
        content = event.get("content")
        if event.get("role") != "assistant" or not isinstance(content, str):
            self._answer = []
        elif event.get("delta"):
            self._answer.append(content)
        else:
            self._answer = [content]

    def _claude_result(self, event: Mapping[str, Any]) -> None:
        self._say(event.get("result"))
        if event.get("is_error") and not isinstance(event.get("result"), str):
            self._say(_error_text(event.get("errors")) or str(event.get("subtype") or ""))
        cost = _money(event.get("total_cost_usd"))
        per_model = event.get("modelUsage")
        usage = event.get("usage")
        if isinstance(per_model, Mapping) and per_model:
            models = [(str(name), m) for name, m in per_model.items() if isinstance(m, Mapping)]
            # most expensive first, then most written
            models.sort(
                key=lambda nm: (
                    -(_money(nm[1].get("costUSD")) or 0.0),
                    -(_count(nm[1].get("outputTokens")) or 0),
                )
            )
            self.usage = Usage(
                input_tokens=_add(
                    _count(m.get(key))
                    for _name, m in models
                    for key in ("inputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")
                ),
                output_tokens=_add(_count(m.get("outputTokens")) for _name, m in models),
                cached_tokens=_add(_count(m.get("cacheReadInputTokens")) for _name, m in models),
                cost_usd=cost,
                model=", ".join(name for name, _m in models) or None,
            )
        elif isinstance(usage, Mapping):
            self.usage = Usage(
                input_tokens=_add(
                    _count(usage.get(key))
                    for key in (
                        "input_tokens",
                        "cache_read_input_tokens",
                        "cache_creation_input_tokens",
                    )
                ),
                output_tokens=_count(usage.get("output_tokens")),
                cached_tokens=_count(usage.get("cache_read_input_tokens")),
                cost_usd=cost,
            )
        elif cost is not None:
            self.usage = Usage(cost_usd=cost)

    def _gemini_result(self, event: Mapping[str, Any]) -> None:
        self._say("".join(self._answer))
        self._say(_error_text(event.get("error")))
        stats = event.get("stats")
        if not isinstance(stats, Mapping):
            return
        names = _by_size(stats.get("models"), lambda m: _count(m.get("total_tokens")))
        self.usage = Usage(
            input_tokens=_count(stats.get("input_tokens")),
            output_tokens=_count(stats.get("output_tokens")),
            cached_tokens=_count(stats.get("cached")),
            model=", ".join(names) or self._model,
        )

    def _gemini_json(self, event: Mapping[str, Any]) -> None:
        self._say(event.get("response"))
        self._say(_error_text(event.get("error")))
        stats = event.get("stats")
        models = stats.get("models") if isinstance(stats, Mapping) else None
        if not isinstance(models, Mapping):
            return
        tokens = {
            str(name): m["tokens"]
            for name, m in models.items()
            if isinstance(m, Mapping) and isinstance(m.get("tokens"), Mapping)
        }
        if not tokens:
            return
        self.usage = Usage(
            input_tokens=_add(_count(t.get("prompt")) for t in tokens.values()),
            output_tokens=_add(_count(t.get("candidates")) for t in tokens.values()),
            cached_tokens=_add(_count(t.get("cached")) for t in tokens.values()),
            model=", ".join(_by_size(tokens, lambda t: _count(t.get("total")))) or None,
        )


def _orch_usage(given: object) -> Usage:
    """An ``orch-usage:`` line's object; a value of the wrong type refuses the whole line."""
    if not isinstance(given, dict):
        raise TypeError("not an object")
    usage = Usage(
        input_tokens=_strict_count(given.get("input_tokens")),
        output_tokens=_strict_count(given.get("output_tokens")),
        cached_tokens=_strict_count(given.get("cached_tokens")),
        cost_usd=_strict_money(given.get("cost_usd")),
        model=_strict_text(given.get("model")),
    )
    return usage


def _strict_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"not a count: {value!r}")
    return value


def _strict_money(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e12:
        raise TypeError(f"not an amount: {value!r}")
    return float(value)


def _strict_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"not a name: {value!r}")
    return value.strip()[:255] or None


def _text(value: object) -> str | None:
    try:
        return _strict_text(value)
    except TypeError:
        return None


def _count(value: object) -> int | None:
    try:
        return _strict_count(value)
    except TypeError:
        return None


def _money(value: object) -> float | None:
    try:
        return _strict_money(value)
    except TypeError:
        return None


def _add(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _by_size(models: object, size: Any) -> list[str]:
    """The names of a per-model mapping, the largest first."""
    if not isinstance(models, Mapping):
        return []
    named = [(str(n), m) for n, m in models.items() if isinstance(m, Mapping)]
    return [n for n, _m in sorted(named, key=lambda nm: -(size(nm[1]) or 0))]


def _error_text(error: object) -> str | None:
    """An error as the agents give it: a string, ``{"message": …}``, or a list of them."""
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        return _error_text(error.get("message"))
    if isinstance(error, list) and error:
        return "; ".join(t for t in (_error_text(e) for e in error) if t) or None
    return None
