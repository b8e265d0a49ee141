"""The CI and review loop: what an attempt's open pull request says goes back to its agent.

Each look at a pull request (``gh pr view``) may do, in this order:

- merged: the attempt is recorded as landed (the land records of ``orch land``, strategy
  ``pull-request``) with ``pr_merged`` and ``landed`` events; closed: a ``pr_closed``
  event. Either ends the watch.
- a check that failed on the pull request's head commit and was not forwarded yet: one
  follow-up naming each such check and carrying the tail of its failed log (``gh run
  view --log-failed``), through the ``orch send`` path (so one worker per worktree still
  holds). A check that still fails after the agent's next push (a new head commit) fires
  again, but not before the back-off (``ci_followup_backoff``, doubling) has passed, and
  at most ``max_ci_followups`` times; then a ``ci_needs_attention`` event, and the
  dashboard lists the attempt. Checks all passing on a head reset the count.
- review comments and reviews not forwarded yet: one follow-up carrying them all.

What was forwarded (check keys ``<head>:<name>``, comment ids, the count, the time the
next CI follow-up may go) is recorded with its event before the follow-up is sent
(``orch.store.pull_requests``), so a restarted loop never sends one twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.attempts.lifecycle import send
from orch.config import Settings
from orch.errors import OrchError
from orch.git import Git
from orch.models import Attempt, Landed
from orch.record import record
from orch.system.gh import Gh, run_id

if TYPE_CHECKING:
    from orch.store import Store

LOG_TAIL_LINES = 40
# a check run's conclusions and a status context's states that mean it failed
_FAILED = frozenset(
    {"FAILURE", "ERROR", "TIMED_OUT", "CANCELLED", "ACTION_REQUIRED", "STARTUP_FAILURE"}
)
_PASSED = frozenset({"SUCCESS", "NEUTRAL", "SKIPPED"})


@record
class Check:
    name: str
    result: str  # FAILURE, SUCCESS, … or PENDING while it runs
    url: str | None

    @property
    def failed(self) -> bool:
        return self.result in _FAILED

    @property
    def passed(self) -> bool:
        return self.result in _PASSED


def checks_of(view: dict[str, Any]) -> list[Check]:
    """The pull request's checks from gh's ``statusCheckRollup`` (check runs and commit
    statuses alike)."""
    found = []
    for item in view.get("statusCheckRollup") or []:
        if item.get("__typename") == "StatusContext":
            found.append(
                Check(str(item.get("context")), str(item.get("state")), item.get("targetUrl"))
            )
            continue
        name = str(item.get("name"))
        if item.get("workflowName"):
            name = f"{item['workflowName']} / {name}"
        done = str(item.get("status")) == "COMPLETED"
        result = str(item.get("conclusion") or "") if done else "PENDING"
        found.append(Check(name, result, item.get("detailsUrl")))
    return found


def comments_of(view: dict[str, Any]) -> list[dict[str, str]]:
    """Review comments and reviews with a body, oldest first: id, author, text."""
    found = []
    for item in [*(view.get("reviews") or []), *(view.get("comments") or [])]:
        body = str(item.get("body") or "").strip()
        if not body or not item.get("id"):
            continue
        author = (item.get("author") or {}).get("login") or "someone"
        when = str(item.get("submittedAt") or item.get("createdAt") or "")
        kind = f"review ({str(item['state']).lower()})" if item.get("state") else "comment"
        found.append(
            {"id": str(item["id"]), "author": author, "kind": kind, "when": when, "body": body}
        )
    return sorted(found, key=lambda c: c["when"])


def recipient(store: Store, attempt: Attempt) -> Attempt:
    """Whom a follow-up goes to: the live attempt working in the worktree now (a
    continuation, ``orch send``), else the newest attempt of the task that used it."""
    if not attempt.worktree_path:
        return attempt
    same = [
        a
        for a in store.attempts_using_worktree(attempt.worktree_path)
        if a.task_key == attempt.task_key and a.repository == attempt.repository
    ]
    live = [a for a in same if not a.terminal]
    return max(live or same or [attempt], key=lambda a: a.attempt_number)


@dataclasses.dataclass
class Watcher:
    """Looks at each open pull request at most every ``pr_poll_interval`` seconds."""

    store: Store
    settings: Settings
    git: Git
    actor: str
    gh: Gh = dataclasses.field(default_factory=Gh)
    looked: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)

    def cycle(self) -> list[str]:
        """Look at every open pull request that is due; what happened, in words."""
        now = self.store.clock()
        said: list[str] = []
        for attempt, seen in self.store.open_pull_requests():
            last = self.looked.get(attempt.id)
            if last is not None and (now - last).total_seconds() < self.settings.pr_poll_interval:
                continue
            self.looked[attempt.id] = now
            try:
                said += self.look(attempt, seen, now)
            except OrchError as exc:  # gh or GitHub down: the next look tries again
                said.append(f"{attempt.id}: pull request #{attempt.pr_number}: {exc.message}")
        return said

    def look(self, attempt: Attempt, seen: dict[str, Any], now: dt.datetime) -> list[str]:
        root = self.git.discover(Path(attempt.repository)).root
        assert attempt.pr_number is not None
        view = self.gh.view(root, attempt.pr_number)
        state = str(view.get("state", "")).upper()
        if state == "MERGED":
            head = str(view.get("headRefOid") or "")
            merged = (view.get("mergeCommit") or {}).get("oid") or head
            landed = Landed(
                commit=str(merged),
                tip=head,
                into=str(view.get("baseRefName") or ""),
                strategy="pull-request",
                by=f"pull request #{attempt.pr_number}",
            )
            self.store.end_pull_request(attempt.id, "merged", self.actor, landed)
            return [f"{attempt.id}: pull request #{attempt.pr_number} merged: landed"]
        if state == "CLOSED":
            self.store.end_pull_request(attempt.id, "closed", self.actor)
            return [f"{attempt.id}: pull request #{attempt.pr_number} closed"]
        return self._forward(attempt, seen, view, root, now)

    def _forward(
        self,
        attempt: Attempt,
        seen: dict[str, Any],
        view: dict[str, Any],
        root: Path,
        now: dt.datetime,
    ) -> list[str]:
        after = dict(seen)
        events: list[tuple[str, dict[str, Any]]] = []
        messages: list[str] = []
        head = str(view.get("headRefOid") or "")
        checks = checks_of(view)
        sent = set(seen.get("checks_sent", []))
        fresh = [c for c in checks if c.failed and f"{head}:{c.name}" not in sent]
        count = int(seen.get("ci_followups", 0))
        if checks and all(c.passed for c in checks) and count:
            after.update(ci_followups=0, next_ci_at=None, ci_attention=False)
            events.append(("ci_passed", {"head": head}))
        elif fresh and count >= self.settings.max_ci_followups:
            if not seen.get("ci_attention"):
                after["ci_attention"] = True
                events.append(
                    (
                        "ci_needs_attention",
                        {"head": head, "checks": [c.name for c in fresh], "followups": count},
                    )
                )
        elif fresh and _due(seen.get("next_ci_at"), now):
            wait = self.settings.ci_followup_backoff * 2**count
            after.update(
                checks_sent=[*seen.get("checks_sent", []), *(f"{head}:{c.name}" for c in fresh)],
                ci_followups=count + 1,
                next_ci_at=(now + dt.timedelta(seconds=wait)).isoformat(),
            )
            events.append(
                (
                    "ci_failed",
                    {"head": head, "checks": [c.name for c in fresh], "followup": count + 1},
                )
            )
            messages.append(self._ci_message(attempt, fresh, head, root))
        forwarded = set(seen.get("comments_sent", []))
        new = [c for c in comments_of(view) if c["id"] not in forwarded]
        if new:
            after["comments_sent"] = [*seen.get("comments_sent", []), *(c["id"] for c in new)]
            events.append(("review_comments", {"ids": [c["id"] for c in new], "count": len(new)}))
            messages.append(_review_message(attempt, new))
        if not events:
            return []
        if not self.store.save_pr_watch(attempt.id, seen, after, self.actor, events):
            return []  # another loop recorded this look first: it sends
        to = recipient(self.store, attempt)
        for body in messages:
            try:
                send(self.store, to.id, body, self.actor, self.settings)
            except OrchError as exc:  # its worktree is gone, a worker is busy in it, …
                self.store.record_event(
                    attempt.id, "pr_followup_failed", self.actor, error=exc.message, to=to.id
                )
        return [f"{attempt.id}: {kind}" for kind, _ in events]

    def _ci_message(self, attempt: Attempt, failed: list[Check], head: str, root: Path) -> str:
        parts = [
            f"CI failed on pull request #{attempt.pr_number} ({attempt.pr_url}) at commit "
            f"{head[:12]}: {', '.join(c.name for c in failed)}. Fix it and push again.",
        ]
        logs: dict[str, str] = {}
        for check in failed:
            run = run_id(check.url)
            tail = ""
            if run is not None:
                if run not in logs:
                    try:
                        logs[run] = self.gh.failed_log(root, run)
                    except OrchError as exc:
                        logs[run] = f"(its log could not be read: {exc.message})"
                tail = "\n".join(logs[run].rstrip().splitlines()[-LOG_TAIL_LINES:])
            where = f" ({check.url})" if check.url else ""
            parts.append(f"\n## {check.name}: {check.result.lower()}{where}")
            if tail:
                parts.append(f"The end of its failed log:\n\n```\n{tail}\n```")
        return "\n".join(parts) + "\n"


def _due(next_at: str | None, now: dt.datetime) -> bool:
    return next_at is None or now >= dt.datetime.fromisoformat(next_at)


def _review_message(attempt: Attempt, comments: list[dict[str, str]]) -> str:
    parts = [f"New review comments on pull request #{attempt.pr_number} ({attempt.pr_url}):"]
    for c in comments:
        parts.append(f"\n## {c['kind']} by {c['author']}\n\n{c['body']}")
    parts.append("\nAddress them and push again.")
    return "\n".join(parts) + "\n"
