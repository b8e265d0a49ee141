"""Read-only use cases: find an attempt by id or payload path, list, show, its ports."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.errors import AttemptNotFound, NotFound
from orch.models import (
    COUNT_CAP,
    Attempt,
    AttemptEvent,
    ChangeSummary,
    Message,
    PortBundle,
    Run,
    RunKind,
    State,
    Usage,
    capped,
)
from orch.record import record
from orch.system import inbox

if TYPE_CHECKING:
    from orch.store import Store


@record
class AttemptDetail:
    """An attempt with its events, runs and messages (``orch show``)."""

    attempt: Attempt
    events: tuple[AttemptEvent, ...]
    runs: tuple[Run, ...] = ()
    messages: tuple[Message, ...] = ()
    ports: PortBundle | None = None  # the port bundle the attempt holds, if any
    # the worktree as it is now (uncommitted and untracked work included), counted by
    # ``orch show`` when the worktree is on this machine; the recorded summary is on
    # ``attempt`` (committed work at ``changes_tip``)
    live_changes: ChangeSummary | None = None
    # what every attempt of the task (in its repository) reported it consumed, summed
    task_usage: Usage | None = None

    @property
    def check(self) -> Run | None:
        """The newest run of the repository's check command, if any."""
        checks = [r for r in self.runs if r.kind == RunKind.CHECK]
        return checks[-1] if checks else None

    @property
    def dropped_messages(self) -> tuple[Message, ...]:
        """Follow-ups that will never run: still undelivered when the attempt ended."""
        if not self.attempt.terminal:
            return ()
        return tuple(m for m in self.messages if m.delivered_at is None)

    @property
    def usage(self) -> Usage | None:
        """What the attempt's runs reported they consumed, summed (None: nothing known)."""
        return Usage.total(r.usage for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        """The body of ``orch show --json`` (and of the dashboard's attempt endpoint)."""
        bundle = self.ports
        recorded = self.attempt.changes
        return {
            "attempt": self.attempt.to_dict(),
            "changes": {
                "recorded": recorded.to_dict() if recorded is not None else None,
                "recorded_at": (
                    self.attempt.changes_at.isoformat() if self.attempt.changes_at else None
                ),
                "live": self.live_changes.to_dict() if self.live_changes is not None else None,
            },
            "check": self.check.to_dict() if self.check is not None else None,
            "events": [e.to_dict() for e in self.events],
            "runs": [r.to_dict() for r in self.runs],
            "usage": _usage_dict(self.usage),
            "task_usage": _usage_dict(self.task_usage),
            "messages": [
                {**m.to_dict(), "dropped": m in self.dropped_messages} for m in self.messages
            ],
            "ports": (
                {"start": bundle.start, "size": bundle.size, "ports": bundle.ports}
                if bundle is not None
                else None
            ),
        }


def _usage_dict(usage: Usage | None) -> dict[str, Any] | None:
    return usage.to_dict() if usage is not None else None


def with_usage(runs: Iterable[Run], usage: Mapping[int, Usage]) -> tuple[Run, ...]:
    """The runs, each with the usage its agent reported (``Store.usage_of``)."""
    return tuple(
        dataclasses.replace(r, usage=usage[r.number]) if r.number in usage else r for r in runs
    )


def looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.endswith(".json") or ref.startswith(".")


def find_attempt(store: Store, ref: str) -> Attempt:
    """``ref`` is an attempt id (or unique prefix) or the path of its payload."""
    if looks_like_path(ref):
        payload = inbox.read_payload(Path(ref))
        attempt_id = str(payload["attempt_id"])
        try:
            return store.get(attempt_id)
        except AttemptNotFound:
            raise AttemptNotFound(
                f"the payload {ref} names attempt {attempt_id}, which is not in this store"
            ) from None
    return store.get(ref)


def worktree_of(store: Store, ref: str) -> Path:
    """The attempt's worktree (``orch path``, ``orch open``); one that is gone is refused."""
    return existing_worktree(find_attempt(store, ref))


def existing_worktree(attempt: Attempt, purpose: str = "") -> Path:
    """The attempt's worktree on this disk, or ``NotFound`` saying why not (and where the
    archive is, if its work was saved); ``purpose`` ends the "no worktree" line."""
    if not attempt.worktree_path:
        raise NotFound(
            f"attempt {attempt.id} has no worktree (workspace_status "
            f"{attempt.workspace_status}){purpose}"
        )
    path = Path(attempt.worktree_path)
    if not path.is_dir():
        saved = (
            f"; its work was saved to {attempt.archive_path}: 'orch restore {attempt.id}' "
            "brings it back"
            if attempt.archive_path
            else ""
        )
        raise NotFound(
            f"the worktree of attempt {attempt.id} is gone: {path} "
            f"(workspace_status {attempt.workspace_status}){saved}"
        )
    return path


CONTINUES = "continues"  # the event a continuation attempt records: which attempt it goes on


def prompt_history(store: Store, attempt: Attempt) -> list[str]:
    """The prompts this attempt's agent has been given, oldest first: those of the attempt
    it continues (``orch send`` to an ended attempt), its own prompt, then the follow-ups
    its runs were given (one entry per run)."""
    before: list[str] = []
    for event in store.events(attempt.id):
        if event.kind == CONTINUES and isinstance(event.detail.get("attempt"), str):
            with contextlib.suppress(AttemptNotFound):
                before = prompt_history(store, store.get(event.detail["attempt"]))
    # the agent's runs only: a check run is given no prompt
    runs = [r for r in store.runs(attempt.id) if r.kind == RunKind.AGENT]
    return [*before, attempt.prompt, *(run.prompt for run in runs[1:])]


def show(store: Store, ref: str) -> AttemptDetail:
    attempt = find_attempt(store, ref)
    task = store.list_attempts(task_key=attempt.task_key, repository=attempt.repository)
    usage = store.usage_of([attempt.id, *(a.id for a in task)])
    return AttemptDetail(
        attempt=attempt,
        events=tuple(store.events(attempt.id)),
        runs=with_usage(store.runs(attempt.id), usage.get(attempt.id, {})),
        task_usage=Usage.total(u for runs in usage.values() for u in runs.values()),
        messages=tuple(store.messages(attempt.id)),
        ports=store.port_bundle(attempt.id),
    )


def attempt_ports(store: Store, ref: str) -> tuple[Attempt, PortBundle]:
    """The attempt and the port bundle it holds (``orch ports``); none held is NotFound."""
    attempt = find_attempt(store, ref)
    bundle = store.port_bundle(attempt.id)
    if bundle is None:
        raise NotFound(f"attempt {attempt.id} holds no port bundle")
    return attempt, bundle


@record
class Listing:
    """What ``orch list`` shows: the attempts, the newest check of those that have one,
    and, when a limit cut the list short, how many more there are (``more_capped``: at
    least ``more``, the count stopped at ``COUNT_CAP``)."""

    attempts: tuple[Attempt, ...]
    checks: dict[str, Run]
    more: int = 0
    usage: dict[str, Usage] = dataclasses.field(default_factory=dict)  # per attempt, summed
    more_capped: bool = False

    @property
    def task_usage(self) -> dict[str, Usage]:
        """Per task key, the usage of the listed attempts of that task, summed."""
        keys: dict[str, list[Usage]] = {}
        for attempt in self.attempts:
            if attempt.id in self.usage:
                keys.setdefault(attempt.task_key, []).append(self.usage[attempt.id])
        return {
            key: total for key, found in keys.items() if (total := Usage.total(found)) is not None
        }

    def to_dict(self) -> dict[str, Any]:
        """The body of ``orch list --json`` (and of the dashboard's attempts endpoint): the
        checks beside the records, so an attempt's record is the same in every command."""
        body: dict[str, Any] = {
            "attempts": [a.to_dict() for a in self.attempts],
            "checks": {i: run.to_dict() for i, run in self.checks.items()},
            "usage": {i: u.to_dict() for i, u in self.usage.items()},
            "task_usage": {key: u.to_dict() for key, u in self.task_usage.items()},
        }
        if self.more:
            body["more"] = self.more
        if self.more_capped:
            body["more_capped"] = True
        return body


def listing(
    store: Store,
    states: tuple[State, ...] = (),
    task_key: str | None = None,
    limit: int | None = None,
    before: str | None = None,
    usage: bool = True,
) -> Listing:
    """A listing, newest first; ``limit``: a page of at most that many, with the count of
    the rest; ``before`` (an attempt id or prefix): the page after that attempt; ``usage``:
    read the tokens and cost the agents reported (one query more; the table shows none)."""
    # a page cursor is an attempt id (or prefix), never a payload path to read
    after = store.get(before) if before is not None else None
    probe = None if limit is None else limit + 1  # one more says whether there are more
    found = store.list_attempts(states=states, task_key=task_key, limit=probe, before=after)
    more, more_capped = 0, False
    if limit is not None and len(found) > limit:
        found = found[:limit]
        # those after the last shown, counted up to the cap: the same cost with a year of
        # history as with a day's
        rest = store.count_attempts(states, task_key, before=found[-1], at_most=COUNT_CAP)
        more, more_capped = capped(rest)
    ids = [a.id for a in found]
    totals = {
        i: total
        for i, runs in (store.usage_of(ids) if usage else {}).items()
        if (total := Usage.total(runs.values())) is not None
    }
    return Listing(tuple(found), store.latest_checks(ids), more, totals, more_capped)


def list_attempts(
    store: Store,
    states: tuple[State, ...] = (),
    task_key: str | None = None,
    limit: int | None = None,
) -> list[Attempt]:
    return store.list_attempts(states=states, task_key=task_key, limit=limit)
