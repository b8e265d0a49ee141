"""``orch compare TASK``: the attempts of one task side by side, and the files more than
one of them changed (where their results will collide when both are taken).

Each row is read from the store: the agent's runs (with the tokens and cost each
reported), the newest check run, and the recorded summary of the attempt's committed
changes. git is asked once per repository for the tips of every attempt's branch (a
summary whose tip moved is counted again and recorded), then once per attempt that
changed anything for the paths it changed. What is compared is committed work against
each attempt's own ``base_commit``: what landing would take. Nothing here changes a ref
or a worktree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.attempts.queries import with_usage
from orch.errors import GitError, NotFound
from orch.git import Git
from orch.models import Attempt, ChangeSummary, Run, RunKind, Usage
from orch.record import record

if TYPE_CHECKING:
    from orch.store import Store


@record
class CompareRow:
    attempt: Attempt
    changes: ChangeSummary | None  # None: no branch (never made, or deleted) to count
    runs: tuple[Run, ...]  # the agent's runs, each with the usage its agent reported
    check: Run | None  # the newest check run
    paths: tuple[str, ...]  # the paths its committed work changed
    note: str | None = None  # why there is nothing to count, when there is not

    @property
    def duration(self) -> float | None:
        """Seconds from the agent's first run's start to its last run's end."""
        if not self.runs or self.runs[-1].ended_at is None:
            return None
        return (self.runs[-1].ended_at - self.runs[0].started_at).total_seconds()

    @property
    def usage(self) -> Usage | None:
        """What the agent's runs reported they consumed, summed; None: nothing known."""
        return Usage.total(r.usage for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        a = self.attempt
        return {
            "id": a.id,
            "attempt_number": a.attempt_number,
            "repository": a.repository,
            "worker": a.worker_label,
            "state": str(a.state),
            "landed": (
                {
                    "commit": a.landed_commit,
                    "into": a.landed_into,
                    "strategy": a.landed_strategy,
                    "by": a.landed_by,
                    "at": a.landed_at.isoformat() if a.landed_at else None,
                }
                if a.landed
                else None
            ),
            "exit_code": a.exit_code,
            "duration": self.duration,
            "runs": len(self.runs),
            "base_commit": a.base_commit,
            "branch_name": a.branch_name,
            "changes": None if self.changes is None else self.changes.to_dict(),
            "check": None if self.check is None else self.check.to_dict(),
            "files": list(self.paths),
            "note": self.note,
            "usage": None if self.usage is None else self.usage.to_dict(),
        }


@record
class TaskComparison:
    task_key: str
    rows: tuple[CompareRow, ...]
    collisions: tuple[tuple[str, tuple[str, ...]], ...]  # (path, ids of attempts), by path

    @property
    def usage(self) -> Usage | None:
        """The task's attempts' usage, summed."""
        return Usage.total(row.usage for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """The body of ``orch compare TASK --json``, which the dashboard serves too."""
        return {
            "task_key": self.task_key,
            "attempts": [row.to_dict() for row in self.rows],
            "collisions": [{"path": path, "attempts": list(ids)} for path, ids in self.collisions],
            "usage": None if self.usage is None else self.usage.to_dict(),
        }


def compare_task(store: Store, git: Git, task_key: str) -> TaskComparison:
    attempts = sorted(
        store.list_attempts(task_key=task_key), key=lambda a: (a.repository, a.attempt_number)
    )
    if not attempts:
        raise NotFound(f"no attempts of task {task_key!r} in the store")
    ids = [a.id for a in attempts]
    runs = store.runs_of(ids)
    usage = store.usage_of(ids)
    tips = _tips(git, attempts)
    rows = []
    for attempt in attempts:
        agent_runs = with_usage(
            (r for r in runs[attempt.id] if r.kind == RunKind.AGENT), usage.get(attempt.id, {})
        )
        checks = [r for r in runs[attempt.id] if r.kind == RunKind.CHECK]
        changes, paths, note = _changes(store, git, attempt, tips.get(attempt.id))
        rows.append(
            CompareRow(attempt, changes, agent_runs, checks[-1] if checks else None, paths, note)
        )
    return TaskComparison(task_key, tuple(rows), _collisions(rows))


def _tips(git: Git, attempts: list[Attempt]) -> dict[str, str]:
    """Attempt id -> its branch's tip: one ``for-each-ref`` per repository."""
    found: dict[str, str] = {}
    by_repository: dict[str, list[Attempt]] = {}
    for a in attempts:
        if a.branch_name and a.base_commit:
            by_repository.setdefault(a.repository, []).append(a)
    for repository, group in by_repository.items():
        if not Path(repository).is_dir():
            continue
        try:
            tips = git.branch_tips(Path(repository), [a.branch_name or "" for a in group])
        except GitError:
            continue
        for a in group:
            if (a.branch_name or "") in tips:
                found[a.id] = tips[a.branch_name or ""]
    return found


def _changes(
    store: Store, git: Git, attempt: Attempt, tip: str | None
) -> tuple[ChangeSummary | None, tuple[str, ...], str | None]:
    where = Path(attempt.repository)
    if tip is None or not attempt.base_commit:
        if not attempt.branch_name or not attempt.base_commit:
            why = "it has no branch (its workspace was never made)"
        elif not where.is_dir():
            why = f"its repository {where} is not on this machine"
        else:
            why = f"its branch {attempt.branch_name} is gone"
        if attempt.changes is not None:
            why += " (the numbers are the last recorded)"
        return attempt.changes, (), why
    changes = attempt.changes
    try:
        if changes is None or changes.tip != tip:
            changes = git.change_summary(where, attempt.base_commit, tip)
            store.record_changes(attempt.id, changes)
        paths = git.changed_paths(where, attempt.base_commit, tip) if changes.files_changed else []
    except GitError as exc:  # its base_commit pruned, a damaged repository: say so, go on
        return attempt.changes, (), f"git cannot count it: {exc.message}"
    return changes, tuple(paths), None


def _collisions(rows: list[CompareRow]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The paths that attempts of one repository both changed."""
    touched: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        for path in row.paths:
            touched.setdefault((row.attempt.repository, path), []).append(row.attempt.id)
    return tuple(
        (path, tuple(ids)) for (_repo, path), ids in sorted(touched.items()) if len(ids) > 1
    )
