"""Text and JSON rendering of attempts for the terminal (no click, no I/O).

Columns are padded by display width, not by code points: a CJK character or an emoji
takes two terminal cells and a combining mark none, so task keys in any script line up.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Sequence
from typing import Any

from orch.attempts.queries import AttemptDetail
from orch.models import Attempt, ChangeSummary, Run, RunKind, Usage

JSON_VERSION = 1


def to_json(**body: Any) -> str:
    return json.dumps({"version": JSON_VERSION, **body}, indent=2, ensure_ascii=False)


def error_json(code: int, name: str, message: str) -> str:
    """A failure as ``--json`` reports it on standard output (the schema is
    ``orch/schemas/error-v1.schema.json``); the one line stays on standard error."""
    return to_json(error={"code": code, "name": name, "message": message})


def age(when: dt.datetime, now: dt.datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def attempts_table(attempts: list[Attempt], now: dt.datetime) -> str:
    if not attempts:
        return "no attempts"
    header = ("ID", "TASK", "#", "STATE", "WORKSPACE", "BRANCH", "AHEAD", "FILES", "+/-", "AGE")
    rows = [header] + [
        (
            a.id,
            _clip(a.task_key, 32),
            str(a.attempt_number),
            state_words(a),
            str(a.workspace_status),
            a.branch_name or "-",
            *_changes_cells(a.changes),
            age(a.created_at, now),
        )
        for a in attempts
    ]
    return table(rows)


def state_words(attempt: Attempt) -> str:
    """The state, and ``(landed)`` once its work was landed (landing is no state)."""
    return f"{attempt.state} (landed)" if attempt.landed else str(attempt.state)


def landed_words(attempt: Attempt) -> str | None:
    """Where its work landed (``orch show``), or that a land is in progress."""
    if attempt.landed_commit:
        when = _when(attempt.landed_at)
        return (
            f"{attempt.landed_commit[:12]} into {attempt.landed_into} "
            f"({attempt.landed_strategy}) by {attempt.landed_by} at {when}"
        )
    if attempt.landing_commit:
        into = (attempt.landing or {}).get("into")
        return (
            f"in progress into {into} ({attempt.landing_commit[:12]}); if no orch land "
            "runs, 'orch doctor --fix' completes it"
        )
    return None


def display_width(text: str) -> int:
    """The terminal cells ``text`` takes: wide and full-width characters (CJK, most emoji)
    two, combining marks and invisible format characters (joiners, variation selectors)
    none, everything else one."""
    if text.isascii():  # one cell per character; nearly every cell (ids, states, counts)
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` terminal cells (``str.ljust`` by cells)."""
    return text + " " * max(0, width - display_width(text))


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, each as wide as its widest cell on screen."""
    cells = [[(cell, display_width(cell)) for cell in r] for r in rows]
    widths = [max(r[i][1] for r in cells) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell + " " * (w - cw) for (cell, cw), w in zip(r, widths, strict=True)).rstrip()
        for r in cells
    )


def seconds(value: float | None) -> str:
    """A duration in the fewest units that read well: 850ms, 14s, 2m10s, 1h05m."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    whole = int(value)
    if whole < 60:
        return f"{value:.1f}s" if value < 10 else f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _changes_cells(changes: ChangeSummary | None) -> tuple[str, str, str]:
    if changes is None:
        return ("-", "-", "-")
    return (
        str(changes.commits_ahead),
        str(changes.files_changed),
        f"+{changes.lines_added}/-{changes.lines_removed}",
    )


def _changes_words(changes: ChangeSummary) -> str:
    commits = "commit" if changes.commits_ahead == 1 else "commits"
    files = "file" if changes.files_changed == 1 else "files"
    return (
        f"{changes.commits_ahead} {commits} ahead, {changes.files_changed} {files}, "
        f"+{changes.lines_added}/-{changes.lines_removed}"
    )


def _changes_fields(detail: AttemptDetail) -> list[tuple[str, str]]:
    """The recorded summary (committed work at a tip) and the live count, saying which."""
    fields = []
    recorded = detail.attempt.changes
    if recorded is not None:
        fields.append(
            (
                "changes",
                f"{_changes_words(recorded)} (committed, recorded at {recorded.tip[:12]} "
                f"{_when(detail.attempt.changes_at)})",
            )
        )
    if detail.live_changes is not None:
        fields.append(
            (
                "changes_live",
                f"{_changes_words(detail.live_changes)} (the worktree now: uncommitted "
                "and untracked files included)",
            )
        )
    if not fields:
        fields.append(("changes", "- (none recorded yet)"))
    return fields


def _run_line(run: Run) -> str:
    when = run.started_at.isoformat(timespec="seconds")
    if run.kind == RunKind.CHECK:
        exit_code = run.exit_code if run.exit_code is not None else "-"
        return (
            f"  {run.number}  {when}  exit {exit_code}  check {run.result} "
            f"in {seconds(run.duration)}"
        )
    used = f"  [{usage_words(run.usage)}]" if run.usage is not None else ""
    return (
        f"  {run.number}  {when}  "
        f"exit {run.exit_code if run.exit_code is not None else '-'}  "
        f"{_first_line(run.prompt)}{used}"
    )


def tokens(count: int | None) -> str:
    """``812``, ``12.3k``, ``4.56M``; ``?`` when not reported."""
    if count is None:
        return "?"
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def cost(usd: float | None) -> str:
    return "?" if usd is None else f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def usage_words(usage: Usage | None, model: bool = True) -> str:
    """``12.3k in (10.1k cached), 1.2k out, $0.0421, claude-sonnet-4-5``; ``-`` when the
    agent reported nothing; a figure it did not report is ``?``, never 0."""
    if usage is None:
        return "-"
    cached = f" ({tokens(usage.cached_tokens)} cached)" if usage.cached_tokens is not None else ""
    words = f"{tokens(usage.input_tokens)} in{cached}, {tokens(usage.output_tokens)} out"
    if usage.cost_usd is not None:
        words += f", {cost(usage.cost_usd)}"
    if model and usage.model:
        words += f", {usage.model}"
    return words


def attempt_detail(detail: AttemptDetail) -> str:
    attempt = detail.attempt
    fields = [
        ("attempt", attempt.id),
        ("task_key", attempt.task_key),
        ("attempt_number", str(attempt.attempt_number)),
        ("state", str(attempt.state)),
        ("workspace_status", str(attempt.workspace_status)),
        ("repository", attempt.repository),
        ("base_ref", attempt.base_ref),
        ("base_commit", attempt.base_commit or "-"),
        ("branch_name", attempt.branch_name or "-"),
        ("worktree_path", attempt.worktree_path or "-"),
        ("worker", attempt.worker_label),
        ("phase", attempt.phase or "-"),
        ("payload", attempt.payload_path or "-"),
        ("created_at", attempt.created_at.isoformat(timespec="seconds")),
        ("updated_at", attempt.updated_at.isoformat(timespec="seconds")),
    ]
    if detail.ports is not None:
        bundle = detail.ports
        slots = " ".join(f"{name}={port}" for name, port in bundle.ports.items())
        fields.append(("ports", f"{bundle.start}-{bundle.end} {slots}"))
    if attempt.sparse_paths:
        fields.append(("sparse_paths", " ".join(attempt.sparse_paths)))
    if attempt.submodules is not None:
        fields.append(("submodules", "initialised" if attempt.submodules else "not initialised"))
    if attempt.lfs_skip_smudge:
        fields.append(("lfs", "smudge skipped (files are pointers)"))
    if attempt.lease_holder:
        where = f" on {attempt.worker_host}" if attempt.worker_host else ""
        pid = f" pid {attempt.worker_pid}" if attempt.worker_pid else ""
        fields.append(("lease_holder", f"{attempt.lease_holder}{where}{pid}"))
    if attempt.state == "running":
        fields.append(("lease", f"{attempt.lease_token} until {_when(attempt.lease_expires_at)}"))
        fields.append(("heartbeat_at", _when(attempt.heartbeat_at)))
    if attempt.exit_code is not None:
        fields.append(("exit_code", str(attempt.exit_code)))
    if attempt.summary:
        fields.append(("summary", _clip(attempt.summary, 100)))
    if attempt.archive_path:
        fields.append(("archive", f"{attempt.archive_path} (see manifest.json to restore)"))
    if attempt.reason:
        fields.append(("reason", attempt.reason))
    landed = landed_words(attempt)
    if landed:
        fields.append(("landed", landed))
    if attempt.pr_url:
        fields.append(
            ("pull request", f"#{attempt.pr_number} {attempt.pr_url} ({attempt.pr_state})")
        )
    fields += _changes_fields(detail)
    check = detail.check
    if check is not None:
        exit_code = check.exit_code if check.exit_code is not None else "-"
        fields.append(
            (
                "check",
                f"{check.result} (exit {exit_code}, {seconds(check.duration)}; run {check.number})",
            )
        )
    if detail.usage is not None:
        fields.append(("usage", usage_words(detail.usage)))
    if detail.task_usage is not None and detail.task_usage != detail.usage:
        fields.append(("task_usage", f"{usage_words(detail.task_usage)} (every attempt)"))
    width = max(len(k) for k, _ in fields)
    lines = [f"{k.ljust(width)}  {v}" for k, v in fields]
    lines.append(f"prompt{' ' * (width - 6)}  {_first_line(attempt.prompt)}")
    if detail.runs:
        lines += ["", "runs:"]
        for run in detail.runs:
            lines.append(_run_line(run))
    unreadable = sum(
        e.detail.get("lines", 0) for e in detail.events if e.kind == "usage_unreadable"
    )
    if unreadable:
        lines += ["", f"usage report lines that could not be read (ignored): {unreadable}"]
    escapes = [e for e in detail.events if e.kind == "escape_warning"]
    if escapes:
        lines += ["", "warnings:"]
        for ev in escapes:
            shown = ", ".join(ev.detail.get("changed", []))
            lines.append(
                f"  files changed outside the attempt's worktree while its agent ran: "
                f"{ev.detail.get('worktree')} ({ev.detail.get('count')}: {shown})"
            )
    dropped = detail.dropped_messages
    pending = [m for m in detail.messages if m.delivered_at is None and m not in dropped]
    if pending:
        lines += ["", f"follow-ups waiting: {len(pending)}"]
    if dropped:
        lines += ["", f"follow-ups dropped (the attempt ended before they ran): {len(dropped)}"]
        lines += [f"  {m.id}  {_first_line(m.body)}" for m in dropped]
    lines.append("")
    lines.append("events:")
    for ev in detail.events:
        lines.append(f"  {ev.created_at.isoformat(timespec='seconds')}  {ev.kind:<20} {ev.actor}")
    return "\n".join(lines)


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _first_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "(none)"
    return _clip(first, 100)


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal cells, an ellipsis marking the cut."""
    if display_width(text) <= width:
        return text
    kept, used = [], 0
    for ch in text:
        cells = display_width(ch)
        if used + cells > width - 1:
            break
        kept.append(ch)
        used += cells
    return "".join(kept) + "…"
