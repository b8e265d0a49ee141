"""Running the repository's check command on an attempt (``orch check``, and ``orch work``
after an agent run that exited 0 when ``[review] check_after_agent`` says so).

The check is ``[review] check`` from the repository's ``orch.toml`` (the main worktree's,
never the attempt's own copy, which its agent may have changed), run like the set-up hook:
``sh -c`` in the attempt's worktree, its port bundle in the environment, its output
appended to the attempt's log, killed with its process group after ``check_timeout``.
It runs only while holding the worktree's lock (the one an agent holds while it runs,
handed to the check's process too), so a check never runs beside an agent or another
check. Its exit code, duration and whether it timed out are recorded as a run of kind
``check`` with a ``check_finished`` event; ``check_logs`` reads them back with the tail
of each one's output (the dashboard's check view). This module never decides an
attempt's state.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orch.attempts.changes import record_changes
from orch.attempts.occupant import worktree_lock_path
from orch.attempts.queries import existing_worktree, find_attempt
from orch.config import Settings
from orch.errors import ConfigError, OrchError, WorktreeBusy
from orch.fslock import HeldLock, lock_owner, try_lock
from orch.git import Git
from orch.models import Attempt, PortBundle, Run, RunKind
from orch.record import record
from orch.repo_config import RepoConfig, load_repo_config
from orch.system import ports, processes

if TYPE_CHECKING:
    from orch.store import Store


def check_config(attempt: Attempt) -> RepoConfig:
    """The repository's config with its check command; refused when none is configured."""
    root = Path(attempt.repository)
    config = load_repo_config(root) if root.is_dir() else RepoConfig()
    if not config.check:
        raise ConfigError(
            f'no check configured for {root}: add [review] check = "<command>" to '
            f"{root / 'orch.toml'}"
        )
    return config


def check_attempt(
    store: Store,
    settings: Settings,
    ref: str,
    actor: str,
    environ: Mapping[str, str],
) -> Run:
    """``orch check``: run the check in the attempt's worktree now, or refuse at once
    when another process works there."""
    attempt = find_attempt(store, ref)
    worktree = _worktree(attempt)
    config = check_config(attempt)
    path = worktree_lock_path(worktree, settings)
    lock = try_lock(path, f"{actor} check of attempt {attempt.id}")
    if lock is None:
        holder = lock_owner(path) or "another process"
        raise WorktreeBusy(
            f"the worktree of attempt {attempt.id} is in use by {holder}: a check never "
            "runs while an agent or another check runs there; try again when it has ended"
        )
    try:
        for gone in abandoned_checks(store, settings, [attempt.id]):
            end_abandoned(store, gone, actor)  # the record says so before a new one starts
        run = run_check(store, settings, attempt, worktree, config, lock, actor, environ)
    finally:
        lock.release()
    # the check may have been the first to see the branch move
    # (a failure here leaves the check's result standing; the next look records them)
    with contextlib.suppress(OrchError):
        record_changes(store, Git(settings.git_lock_timeout), attempt)
    return run


def run_check(
    store: Store,
    settings: Settings,
    attempt: Attempt,
    worktree: Path,
    config: RepoConfig,
    lock: HeldLock | None,
    actor: str,
    environ: Mapping[str, str],
    *,
    bundle: PortBundle | None = None,
) -> Run:
    """Run the check under ``lock`` (held by the caller, inherited by the check's
    process; None: ``worktree`` is a scratch one nobody else uses) and record it; an
    interruption still records the run's end. ``bundle``: the port bundle to run it with
    (None: the attempt's own)."""
    assert config.check is not None
    log_path = settings.logs_dir / f"{attempt.id}.log"
    if bundle is None:
        bundle = store.port_bundle(attempt.id)
    env = {
        **environ,
        **(ports.environment(bundle) if bundle is not None else {}),
        "ORCH_ATTEMPT_ID": attempt.id,
        "ORCH_TASK_KEY": attempt.task_key,
        "ORCH_WORKTREE": str(worktree),
        "ORCH_BRANCH": attempt.branch_name or "",
        "ORCH_BASE_COMMIT": attempt.base_commit or "",
    }
    run = store.start_check(attempt.id, config.check, str(log_path), actor, runner(settings))
    code: int | None = None
    finished = False
    try:
        code = processes.run_hook(
            config.check,
            worktree,
            env,
            log_path,
            config.check_timeout,
            label=_label(run.number),
            pass_fds=[lock.fd] if lock is not None else [],
        )
        finished = True
    finally:
        ended = store.end_check(attempt.id, run.number, code, finished and code is None, actor)
    return ended


def check_after_agent(
    store: Store,
    settings: Settings,
    attempt: Attempt,
    worktree: Path,
    lock: HeldLock,
    actor: str,
    environ: Mapping[str, str],
) -> Run | None:
    """``orch work``, after an agent run that exited 0, still holding the worktree's lock:
    the check, when ``[review] check_after_agent`` asks for it (None when it does not).
    Its result never changes the attempt's state: that is the agent's."""
    config = load_repo_config(Path(attempt.repository))
    if not config.check or not config.check_after_agent:
        return None
    return run_check(store, settings, attempt, worktree, config, lock, actor, environ)


def runner(settings: Settings) -> dict[str, Any]:
    """This process, which waits for a check and records its end: kept with the run."""
    pid = os.getpid()
    return {"host": settings.host_name, "pid": pid, "pid_started": processes.start_time(pid)}


def abandoned_checks(store: Store, settings: Settings, attempt_ids: Iterable[str]) -> list[Run]:
    """The check runs of ``attempt_ids`` whose end was never recorded and whose process,
    on this host, is gone (killed with -9, or its machine restarted): their end will never
    be heard. A run whose process is on another host, or that recorded none (before
    orch recorded it), is left to that host (or shown as unfinished)."""
    found = []
    for attempt_id, runs in store.runs_of(attempt_ids).items():
        open_runs = [r for r in runs if r.kind == RunKind.CHECK and r.ended_at is None]
        if not open_runs:
            continue
        started = {
            e.detail.get("run"): e.detail
            for e in store.events(attempt_id)
            if e.kind == "check_started"
        }
        for run in open_runs:
            detail = started.get(run.number, {})
            pid, pid_started = detail.get("pid"), detail.get("pid_started")
            if (
                detail.get("host") == settings.host_name
                and isinstance(pid, int)
                and not processes.is_alive(
                    pid, float(pid_started) if isinstance(pid_started, (int, float)) else None
                )
            ):
                found.append(run)
    return found


def end_abandoned(store: Store, run: Run, actor: str) -> Run:
    """Record an abandoned check run as interrupted: it ended without a result."""
    return store.end_check(
        run.attempt_id,
        run.number,
        None,
        False,
        actor,
        reason=f"its process (pid {run.pid}) ended without recording the check's end",
    )


def _worktree(attempt: Attempt) -> Path:
    return existing_worktree(attempt, ": nothing to check")


@record
class CheckLog:
    """One check run and the last lines of its output in the attempt's log."""

    run: Run
    log_path: str
    lines: tuple[str, ...] | None  # None: the log (on this machine) holds no output of it

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "log": {
                "path": self.log_path,
                "found": self.lines is not None,
                "lines": list(self.lines or ()),
            },
        }


def check_logs(
    store: Store, settings: Settings, ref: str, lines: int = 40
) -> tuple[Attempt, list[CheckLog]]:
    """The attempt's check runs, newest first, each with the last ``lines`` lines it
    wrote to the attempt's log (read from this machine's log directory)."""
    attempt = find_attempt(store, ref)
    log_path = settings.logs_dir / f"{attempt.id}.log"
    runs = [r for r in store.runs_of([attempt.id])[attempt.id] if r.kind == RunKind.CHECK]
    found = []
    for run in reversed(runs):
        tail = processes.hook_output_tail(log_path, _label(run.number), lines)
        found.append(CheckLog(run, str(log_path), None if tail is None else tuple(tail)))
    return attempt, found


def _label(number: int) -> str:
    """What the check's banners in the log call run ``number``."""
    return f"check (run {number})"
