"""The status snapshot: counts by state and the attempts that need an operator.

The counts stop at ``COUNT_CAP`` (``counts_capped`` and ``queue_capped`` name the states
whose count did: at least that many), so that writing the snapshot every cycle costs the
same with a year of ended attempts and finished tasks as with a day's.

An attempt needs attention when it is the newest of its task and ended ``worker_gone``
or ``failed`` (a retry makes it drop off), when its workspace is still ``provisioning``
long after dispatch (a dispatch that died: ``orch doctor --fix``), when it has escape
warnings, when it has been live longer than ``attempt_time_budget``, or when its pull
request's checks kept failing after ``max_ci_followups`` follow-ups (the CI loop).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from orch.models import CLEANED_UP, COUNT_CAP, Attempt, State, WorkspaceStatus, capped

if TYPE_CHECKING:
    from orch.config import Settings
    from orch.store import Store

STUCK_PROVISIONING = 600.0  # seconds a dispatch may keep a workspace provisioning


def attention(
    attempts: list[Attempt],
    newest: dict[tuple[str, str], int],
    escapes: dict[str, int],
    budget: float,
    now: dt.datetime,
    ci_stuck: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """``newest``: the highest attempt number of each (repository, task key)."""
    found = []
    for a in attempts:
        reasons = []
        age = (now - a.created_at).total_seconds()
        latest = newest.get((a.repository, a.task_key), 0) <= a.attempt_number
        if latest and not a.workspace_status.cleaned_up:
            if a.state == State.WORKER_GONE:
                reasons.append(f"worker gone: {a.reason or ''}".rstrip(": "))
            elif a.state == State.FAILED:
                reasons.append(f"failed: {a.reason or a.summary or 'no reason given'}")
        if a.workspace_status == WorkspaceStatus.PROVISIONING and age > STUCK_PROVISIONING:
            reasons.append(f"stuck provisioning for {age:.0f}s: 'orch doctor --fix' repairs it")
        if escapes.get(a.id) and not a.terminal:
            reasons.append(f"{escapes[a.id]} escape warning(s): files changed outside its worktree")
        if not a.terminal and age > budget:
            reasons.append(f"live for {age:.0f}s, over the time budget of {budget:g}s")
        if a.id in ci_stuck and a.pr_state == "open":
            reasons.append(
                f"pull request #{a.pr_number}: checks still fail after the last CI follow-up"
            )
        if reasons:
            found.append(
                {"attempt": a.id, "task_key": a.task_key, "state": str(a.state), "why": reasons}
            )
    return found


def build_snapshot(store: Store, settings: Settings, now: dt.datetime) -> dict[str, Any]:
    # an attempt whose workspace was cleaned up was seen to: only the others can need a look
    attempts = store.list_attempts(  # acknowledged
        workspaces=[w for w in WorkspaceStatus if w not in CLEANED_UP]
    )
    # each state's count stops at the cap (a year of history costs what a day's does):
    # "counts_capped" names those that did, which the page shows as "1,000+"
    counts = {str(st): capped(n) for st, n in store.count_by_state(COUNT_CAP).items()}
    queue = {str(st): capped(n) for st, n in store.count_tasks_by_state(COUNT_CAP).items()}
    escapes = store.attempts_with_event("escape_warning")
    return {
        "version": 1,
        "written_at": now.isoformat(),
        "counts": {st: n for st, (n, _) in counts.items()},
        "counts_capped": [st for st, (_, floor) in counts.items() if floor],
        "queue": {st: n for st, (n, _) in queue.items()},
        "queue_capped": [st for st, (_, floor) in queue.items() if floor],
        "attention": attention(
            attempts,
            store.newest_attempt_numbers(a.task_key for a in attempts),
            escapes,
            settings.attempt_time_budget,
            now,
            frozenset(store.attempts_with_event("ci_needs_attention")),
        ),
    }
