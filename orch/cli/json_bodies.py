"""The bodies of the operator commands' ``--json`` documents (no click, no I/O).

``orch.cli.render.to_json`` wraps a body in the versioned envelope. The command line and
the MCP server (orch.cli.mcp_server) both build their answers here, so that a tool's
result is the very document the command prints. ``orch compare A B``'s body is in
orch.cli.review_render; the bodies the dashboard serves too are below the interfaces:
``orch diff``'s is ``orch.attempts.review.diff_body``, ``orch compare TASK``'s
``TaskComparison.to_dict``, ``orch list``'s and ``orch show``'s the ``to_dict`` of their
queries' results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orch.attempts.dispatch import DispatchResult, ManyResult
    from orch.attempts.lifecycle import CancelOutcome, SendOutcome, WaitOutcome
    from orch.models import Attempt, PortBundle, Run


def dispatch_body(result: DispatchResult) -> dict[str, Any]:
    """``orch dispatch --json``: the new attempt's record and the warnings."""
    return {"attempt": result.attempt.to_dict(), "warnings": list(result.warnings)}


def dispatch_many_body(result: ManyResult) -> dict[str, Any]:
    """``orch dispatch --attempts N --json``: the records made, in order, and the attempts
    that failed to provision (their id when their intent was recorded, else null)."""
    return {
        "attempts": [a.to_dict() for a in result.made],
        "failed": [
            {"attempt": f.attempt_id, "number": f.number, "reason": f.reason} for f in result.failed
        ],
        "warnings": list(result.warnings),
    }


def check_body(run: Run) -> dict[str, Any]:
    """``orch check --json``: the check's run (its result says whether it passed)."""
    from orch.cli.compare_render import check_dict

    return {"attempt": run.attempt_id, "check": check_dict(run)}


def wait_body(outcome: WaitOutcome) -> dict[str, Any]:
    """``orch wait --json``: the records as they ended (or stood when the time ran out)."""
    return {
        "attempts": [a.to_dict() for a in outcome.attempts],
        "timed_out": outcome.timed_out,
        "all_succeeded": outcome.all_succeeded,
    }


def cancel_body(outcomes: Sequence[CancelOutcome]) -> dict[str, Any]:
    """``orch cancel --json``: per attempt, its record, whether this call ended it
    (``changed`` is false for one that had already ended), what became of a local agent
    (``signalled``) and the follow-ups it dropped, never run (``dropped``)."""
    return {
        "cancelled": [
            {
                "attempt": o.attempt.to_dict(),
                "changed": o.changed,
                "signalled": o.signalled,
                "dropped": [m.to_dict() for m in o.dropped],
            }
            for o in outcomes
        ]
    }


def send_body(outcome: SendOutcome) -> dict[str, Any]:
    """``orch send --json``: the queued message (a live attempt), or the continuation
    attempt (one that had ended); the other is null."""
    return {
        "message": outcome.message.to_dict() if outcome.message is not None else None,
        "continuation": (
            outcome.continuation.to_dict() if outcome.continuation is not None else None
        ),
    }


def ports_body(attempt: Attempt, bundle: PortBundle) -> dict[str, Any]:
    """``orch ports --json``."""
    return {
        "attempt": attempt.id,
        "start": bundle.start,
        "size": bundle.size,
        "ports": bundle.ports,
    }
