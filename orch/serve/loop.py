"""The heartbeat loop: each cycle ends lost workers' attempts, retries them per policy,
dispatches queued tasks, lands the land queue in order (orch.attempts.land.queue),
records the changes of attempts whose branch moved, writes a status snapshot, and looks
at the attempts' open pull requests, forwarding failing checks and review comments to
their agents (``orch.attempts.pr_watch``).

Events are delivered to the configured sinks by a thread of the loop's own, which holds
the deliver lock so that commands start no deliverer of theirs while the loop runs
(``orch.attempts.events``).

Dispatching and retrying run ``orch dispatch`` / ``orch retry`` in a child process (the
same code an operator runs) bounded by ``dispatch_timeout``: a hung git or set-up hook
is killed and leaves what ``orch doctor --fix`` repairs, and the loop moves on. At most
``dispatch_per_cycle`` of them run per cycle, so status updates never starve.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orch.attempts.changes import record_moved
from orch.attempts.events.deliverer import deliver_forever, deliver_once
from orch.attempts.lifecycle import reap
from orch.attempts.pr_watch import Watcher
from orch.attempts.retry import RetryPolicy, exhausted, refusal
from orch.config import Settings
from orch.errors import (
    InvalidInput,
    LockBusy,
    NotFound,
    OrchError,
    RetryRefused,
    StoreError,
    describe_os_error,
)
from orch.git import Git
from orch.models import (
    HOLDS_WORKTREE,
    LIVE_STATES,
    Attempt,
    LandQueueState,
    QueuedTask,
    State,
    TaskState,
)
from orch.prompt import ALLOW_FLAG
from orch.record import record
from orch.serve import runtime
from orch.serve.snapshot import build_snapshot
from orch.system import processes

if TYPE_CHECKING:
    from orch.store import Store


@record
class Launched:
    """What a dispatch or retry child process made: the attempts it made (best-of-N: each,
    in order) and, when it failed or made only some of them, one error line."""

    attempt_ids: tuple[str, ...] = ()
    error: str | None = None
    exit_code: int | None = None

    @property
    def attempt_id(self) -> str | None:
        """The first attempt made (None: none was)."""
        return self.attempt_ids[0] if self.attempt_ids else None


def made_ids(stdout: str) -> tuple[str, ...]:
    """The attempts an ``orch dispatch`` / ``orch retry`` printed with ``--json`` (one
    record, or best-of-N's list; nothing for an error document or unreadable output)."""
    try:
        body = json.loads(stdout)
        if "attempts" in body:
            return tuple(str(a["id"]) for a in body["attempts"])
        return (str(body["attempt"]["id"]),)
    except (ValueError, KeyError, TypeError):
        return ()


Launcher = Callable[[Sequence[str], str], Launched]
# a dispatch that exited with these was refused by its surroundings (a busy lock, an
# unreachable store), not by the task: the task is tried again, cooldown permitting
_TRANSIENT_EXITS = (StoreError.exit_code, LockBusy.exit_code)


def orch_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orch", *args]


def launch_with_timeout(settings: Settings) -> Launcher:
    """Run an ``orch`` command that prints ``--json``, killed after ``dispatch_timeout``."""

    def _launch(args: Sequence[str], stdin: str) -> Launched:
        try:
            done = processes.run_bounded(
                orch_argv(*args), stdin, os.environ, settings.dispatch_timeout
            )
        except OSError as exc:
            return Launched((), f"cannot start orch: {describe_os_error(exc)}")
        if done is None:
            return Launched(
                (),
                f"did not finish within {settings.dispatch_timeout:g}s and was killed "
                "('orch doctor --fix' repairs what it left)",
            )
        made = made_ids(done.stdout)
        if done.returncode != 0:  # best-of-N (exit 14): some made, the others failed
            lines = [ln for ln in done.stderr.splitlines() if ln.startswith("Error: ")]
            line = lines[-1][len("Error: ") :] if lines else done.stderr.strip()[-300:]
            return Launched(made, line or f"exit {done.returncode}", done.returncode)
        if not made:
            return Launched((), f"unreadable output: {done.stdout[:200]!r}")
        return Launched(made)

    return _launch


@dataclasses.dataclass
class CycleReport:
    gone: list[str] = dataclasses.field(default_factory=list)
    dispatched: list[str] = dataclasses.field(default_factory=list)
    retried: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    changes_recorded: list[str] = dataclasses.field(default_factory=list)
    landed: list[str] = dataclasses.field(default_factory=list)
    pull_requests: list[str] = dataclasses.field(default_factory=list)


class Loop:
    def __init__(
        self, store: Store, settings: Settings, actor: str, launch: Launcher | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.actor = actor
        self.launch = launch or launch_with_timeout(settings)
        self.policy = RetryPolicy(settings.retry_cooldown, settings.max_attempts)
        self.cycles = 0
        self.watcher = Watcher(store, settings, Git(settings.git_lock_timeout), actor)

    def cycle(self) -> CycleReport:
        report = CycleReport()
        report.gone = [a.id for a in reap(self.store, self.actor, host=self.settings.host_name)]
        self._recover_dispatching()
        budget = [self.settings.dispatch_per_cycle]
        self._follow_dispatched(report, budget)
        self._dispatch_ready(report, budget)
        self._land_queued(report)
        report.changes_recorded = self._record_moved_branches()
        report.pull_requests = self.watcher.cycle()
        self.cycles += 1
        snapshot = build_snapshot(self.store, self.settings, self.store.clock())
        snapshot["loop"] = {"pid": os.getpid(), "cycles": self.cycles}
        runtime.write_json(runtime.serve_dir(self.settings.home) / "status.json", snapshot)
        return report

    def _land_queued(self, report: CycleReport) -> None:
        """Land the land queue in order, with ``orch land``'s use case (in this process:
        a land holds its target's lock and records an intent, so a loop killed meanwhile
        leaves what ``orch doctor --fix`` completes, and the entry is taken up again)."""
        waiting = [LandQueueState.QUEUED, LandQueueState.LANDING]
        if not self.store.queued_lands(waiting, host=self.settings.host_name):
            return
        from orch.attempts.land.queue import land_queue  # only when there is work for it

        git = Git(self.settings.git_lock_timeout)
        for entry in land_queue(self.store, self.settings, git, self.actor, os.environ):
            if entry.state == LandQueueState.DONE:
                report.landed.append(f"{entry.attempt_id} as {(entry.landed_commit or '')[:12]}")
            else:
                report.failed.append(f"land of {entry.attempt_id}: {entry.result}: {entry.reason}")

    def _record_moved_branches(self) -> list[str]:
        """Record what each attempt that holds a worktree changed, when its branch moved
        since the last record (a commit by its agent, or by a person in its worktree)."""
        holding = self.store.list_attempts(workspaces=HOLDS_WORKTREE)
        return record_moved(self.store, Git(self.settings.git_lock_timeout), holding)

    def _latest(self, task: QueuedTask) -> Attempt | None:
        found = self.store.latest_attempt(task.task_key, task.repository)
        return found[0] if found else None

    def _made_since(self, task: QueuedTask) -> tuple[str, ...]:
        """The attempts of a ``dispatching`` task created since it became so, oldest first:
        what its dispatch made although the loop never heard (the loop died, or the
        dispatch was killed or failed after making some)."""
        newest = self.store.list_attempts(
            task_key=task.task_key, repository=task.repository, limit=task.attempts
        )
        return tuple(a.id for a in reversed(newest) if a.created_at >= task.updated_at)

    def _mark_dispatched(
        self, task: QueuedTask, made: tuple[str, ...], reason: str | None = None
    ) -> None:
        """``dispatching`` -> ``dispatched``, following what was made (best-of-N: all)."""
        self.store.move_task(
            task.id,
            TaskState.DISPATCHING,
            TaskState.DISPATCHED,
            made[0],
            reason=reason,
            attempt_ids=made if task.attempts > 1 else None,
        )

    def _recover_dispatching(self) -> None:
        """A task left ``dispatching`` by a loop that died mid-way: find what it made,
        once its dispatch can no longer be running. The dead loop's ``orch dispatch``
        runs in a session of its own, which nobody kills now; until ``dispatch_timeout``
        has passed since it began (the bound the loop would have held it to, and far
        more than a dispatch takes), it may still be making attempts: taking up the task
        before would follow only some of them, or dispatch it a second time."""
        settled = self.store.clock() - dt.timedelta(seconds=self.settings.dispatch_timeout)
        for task in self.store.queued_tasks([TaskState.DISPATCHING]):
            if task.updated_at > settled:
                continue
            made = self._made_since(task)
            if made:
                self._mark_dispatched(task, made)
            else:
                self.store.move_task(task.id, TaskState.DISPATCHING, TaskState.READY)

    def _may_try_again(
        self, task: QueuedTask, latest: Attempt, current: TaskState, out_of_attempts: TaskState
    ) -> bool:
        """Whether the task may have another attempt now (retry's own rules); a task that
        has had every attempt it may have is moved to ``out_of_attempts``."""
        why = refusal(latest, self.policy, self.store.clock())
        if why is not None and latest.terminal and exhausted(latest, self.policy):
            self.store.move_task(task.id, current, out_of_attempts, reason=why)
        return why is None

    def _follow_dispatched(self, report: CycleReport, budget: list[int]) -> None:
        """A dispatched task whose worker is gone gets a retry (cooldown, max attempts);
        one whose attempt ended otherwise is done. A best-of-N task is done when all its
        attempts have ended: its other attempts stand in for a lost one (which ``orch
        retry`` takes up again by hand)."""
        for task in self.store.queued_tasks([TaskState.DISPATCHED]):
            if task.attempts > 1:
                self._follow_best_of_n(task)
                continue
            latest = self._latest(task)
            if latest is None or not latest.terminal:
                continue
            if latest.state != State.WORKER_GONE:
                self.store.move_task(
                    task.id, TaskState.DISPATCHED, TaskState.DONE, reason=f"{latest.state}"
                )
                continue
            if budget[0] <= 0 or not self._may_try_again(
                task, latest, TaskState.DISPATCHED, TaskState.DONE
            ):
                continue
            budget[0] -= 1
            made = self.launch(
                [
                    "retry",
                    "--json",
                    "--cooldown",
                    f"{self.policy.cooldown:g}",
                    "--max-attempts",
                    str(self.policy.max_attempts),
                    latest.id,
                ],
                "",
            )
            if made.attempt_id is not None:
                self.store.move_task(
                    task.id, TaskState.DISPATCHED, TaskState.DISPATCHED, made.attempt_id
                )
                report.retried.append(made.attempt_id)
            elif made.exit_code == RetryRefused.exit_code:
                # refused for now (another retry won the race, a cooldown): a later cycle
                report.failed.append(f"{task.task_key}: {made.error} (will try again)")
            else:
                self.store.move_task(
                    task.id, TaskState.DISPATCHED, TaskState.FAILED, reason=f"retry: {made.error}"
                )
                report.failed.append(f"{task.task_key}: {made.error}")

    def _follow_best_of_n(self, task: QueuedTask) -> None:
        """Done when every attempt its dispatch made has ended (one pruned from the store
        by ``orch db prune`` ended long ago)."""
        made: list[Attempt] = []
        for attempt_id in task.made:
            try:
                made.append(self.store.get(attempt_id))
            except (NotFound, InvalidInput):
                continue
        if any(not a.terminal for a in made):
            return
        ended = sorted(str(a.state) for a in made)
        tally = ", ".join(f"{state} {ended.count(state)}" for state in dict.fromkeys(ended))
        self.store.move_task(
            task.id, TaskState.DISPATCHED, TaskState.DONE, reason=f"{len(made)} ended: {tally}"
        )

    def _dispatch_ready(self, report: CycleReport, budget: list[int]) -> None:
        for task in self.store.queued_tasks([TaskState.READY]):
            if budget[0] <= 0:
                return
            if self.store.list_attempts(
                LIVE_STATES, task_key=task.task_key, repository=task.repository, limit=1
            ):
                continue  # never a second live attempt of one task (best-of-N: any of them)
            latest = self._latest(task)
            # max attempts and cooldown as retry
            if latest is not None and not self._may_try_again(
                task, latest, TaskState.READY, TaskState.FAILED
            ):
                continue
            moved = self.store.move_task(task.id, TaskState.READY, TaskState.DISPATCHING)
            if moved is None:
                continue
            task = moved  # since when it is dispatching: what ``_made_since`` looks after
            budget[0] -= 1
            args = ["dispatch", "--json", "--repo", task.repository, "--prompt-file", "-"]
            if task.base_ref is not None:
                args += ["--base-ref", task.base_ref]
            for worker in task.workers:
                args += ["--worker", worker]
            if task.attempts > 1:
                args += ["--attempts", str(task.attempts)]
            if not task.prompt.strip():
                args.append(ALLOW_FLAG)  # allowed when it was submitted (orch.serve.queue)
            made = self.launch([*args, "--", task.task_key], task.prompt)
            ids = made.attempt_ids
            if not ids and made.exit_code is None:
                # killed after its timeout, or its answer unreadable: it may have made some
                ids = self._made_since(task)
            if ids:
                # best-of-N: the ones made stand, those that failed are recorded as failed;
                # a dispatch killed after making some keeps its one line as the reason
                self._mark_dispatched(task, ids, None if made.attempt_ids else made.error)
                report.dispatched.extend(ids)
                if made.error is not None:
                    report.failed.append(f"{task.task_key}: {made.error}")
            elif made.exit_code in _TRANSIENT_EXITS:
                # a busy lock or an unreachable store: try again in a later cycle
                self.store.move_task(task.id, TaskState.DISPATCHING, TaskState.READY)
                report.failed.append(f"{task.task_key}: {made.error} (will try again)")
            else:
                self.store.move_task(
                    task.id, TaskState.DISPATCHING, TaskState.FAILED, reason=made.error
                )
                report.failed.append(f"{task.task_key}: {made.error}")


def run(
    store: Store,
    settings: Settings,
    actor: str,
    once: bool = False,
    log: Callable[[str], None] = print,
) -> bool:
    """Run the loop until SIGTERM or SIGINT (or one cycle with ``once``).

    Returns False without running when another loop already runs for this orch home."""
    held = runtime.take(settings.home, runtime.LOOP)
    if held is None:
        return False
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    delivering = threading.Thread(
        target=deliver_forever, args=(store, settings, log, stop), name="orch-events", daemon=True
    )
    try:
        runtime.publish(settings.home, runtime.LOOP, interval=settings.serve_interval)
        loop = Loop(store, settings, actor)
        log(f"orch loop pid {os.getpid()}: a cycle every {settings.serve_interval:g}s")
        if not once:
            delivering.start()
        while not stop.is_set():
            try:
                report = loop.cycle()
            except OrchError as exc:  # an outage of the store: say so and try again
                log(f"cycle {loop.cycles + 1} failed: {exc.message}")
            else:
                for what, ids in dataclasses.asdict(report).items():
                    if ids:
                        log(f"cycle {loop.cycles}: {what} {', '.join(ids)}")
            if once:
                try:
                    deliver_once(store, settings, log)
                except OrchError as exc:
                    log(f"event delivery: {exc.message}")
                break
            stop.wait(settings.serve_interval)
    finally:
        stop.set()
        if delivering.is_alive():
            delivering.join(timeout=settings.cancel_grace)
        runtime.withdraw(settings.home, runtime.LOOP)
        held.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return True
