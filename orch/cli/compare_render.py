"""The text of ``orch compare TASK`` (its JSON is ``TaskComparison.to_dict``, which the
dashboard serves too), ``orch check``'s JSON, and the words for a change summary and a
check result that ``orch list``/``orch show`` share (no click, no I/O)."""

from __future__ import annotations

from typing import Any

from orch.attempts.compare import TaskComparison
from orch.cli.render import cost, seconds, state_words, tokens, usage_words
from orch.models import ChangeSummary, Run, Usage

_SHOWN_PATHS = 50  # collisions listed in the text form; the JSON has them all


def lines(changes: ChangeSummary | None) -> str:
    return "-" if changes is None else f"+{changes.lines_added}/-{changes.lines_removed}"


def check_words(run: Run | None) -> str:
    """``passed 14s``, ``failed (exit 1) 3.2s``, ``timed out 10m00s``, ``-`` (none)."""
    if run is None:
        return "-"
    if run.result == "failed":
        return f"failed (exit {run.exit_code}) {seconds(run.duration)}"
    if run.result == "unfinished":
        return "unfinished"
    return f"{run.result} {seconds(run.duration)}"


def check_dict(run: Run | None) -> dict[str, Any] | None:
    """A check run as every command's JSON gives it (``Run.to_dict``), or None."""
    return None if run is None else run.to_dict()


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def comparison_text(found: TaskComparison) -> str:
    header = (
        "ATTEMPT",
        "#",
        "WORKER",
        "STATE",
        "EXIT",
        "DURATION",
        "AHEAD",
        "FILES",
        "+/-",
        "CHECK",
    )
    # tokens and cost only when some attempt's agent reported them
    used = found.usage is not None
    rows: list[tuple[str, ...]] = [(*header, "TOKENS", "COST") if used else header]
    for row in found.rows:
        a = row.attempt
        usage = _usage_cells(row.usage) if used else ()
        rows.append(
            (
                a.id,
                str(a.attempt_number),
                a.worker_label,
                state_words(a),
                "-" if a.exit_code is None else str(a.exit_code),
                seconds(row.duration),
                _number(row.changes, "commits_ahead"),
                _number(row.changes, "files_changed"),
                lines(row.changes),
                check_words(row.check),
                *usage,
            )
        )
    count = len(found.rows)
    out = [
        f"task {found.task_key}: {count} attempt{'s' if count != 1 else ''} "
        "(committed work against each attempt's base_commit)",
        table(rows),
    ]
    if found.usage is not None:
        out.append(f"usage the agents reported, all attempts: {usage_words(found.usage)}")
    notes = [f"  {r.attempt.id}: {r.note}" for r in found.rows if r.note]
    if notes:
        out += ["", "not counted:", *notes]
    out.append("")
    if not found.collisions:
        out.append("no file was changed by more than one attempt")
    else:
        out.append(f"files changed by more than one attempt ({len(found.collisions)}):")
        for path, ids in found.collisions[:_SHOWN_PATHS]:
            out.append(f"  {path}  {', '.join(ids)}")
        if len(found.collisions) > _SHOWN_PATHS:
            out.append(f"  … and {len(found.collisions) - _SHOWN_PATHS} more (--json lists all)")
    return "\n".join(out)


def _number(changes: ChangeSummary | None, field: str) -> str:
    return "-" if changes is None else str(getattr(changes, field))


def _usage_cells(usage: Usage | None) -> tuple[str, str]:
    """``12.3k/1.2k`` (in/out) and the cost; ``-`` for an attempt that reported nothing."""
    if usage is None:
        return "-", "-"
    return f"{tokens(usage.input_tokens)}/{tokens(usage.output_tokens)}", cost(usage.cost_usd)
