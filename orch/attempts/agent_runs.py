"""The agent's runs in one claimed attempt: the run loop of ``orch work``.

Starts the agent in the attempt's locked worktree (its own process group, holding the
lock's file descriptor, its output appended to ``$ORCH_HOME/logs/<attempt>.log``), records
the run, supervises it until it exits or must be stopped, records the branch's changes,
then delivers the follow-ups queued meanwhile (``orch send``) as a further run in the same
worktree (the agent's resume command, or the prompt history), until none are left. After
each run it reads the agent's usage report and last word from the run's output
(``orch.attempts.usage``) into the run's record.

The worker (``orch.attempts.worker``) claims, locks the worktree, heartbeats and finishes
the attempt; this module never finishes an attempt nor releases its lease, and says how
the last run ended (``summary``) for the worker's finish.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from orch.attempts.agent_command import agent_environment, render, with_history
from orch.attempts.lifecycle import rewrite_payload
from orch.attempts.queries import prompt_history
from orch.attempts.usage import read_report
from orch.config import Settings
from orch.errors import LeaseLost, OrchError
from orch.fslock import HeldLock
from orch.models import Attempt, Lease
from orch.system import processes

if TYPE_CHECKING:
    from orch.store import Store

_T = TypeVar("_T")


class Patiently(Protocol):
    """A store call run through the worker's ride-out of an outage (``WorkerRuntime``)."""

    def __call__(self, what: str, call: Callable[..., _T], *args: Any) -> _T: ...


@dataclasses.dataclass
class AgentRuns:
    """The runs of one attempt, made by the worker for each attempt it works on."""

    store: Store
    settings: Settings
    command: tuple[str, ...]
    # the command for a follow-up run, when the agent can resume its session (None: the
    # command itself, given the prompt history)
    resume_command: tuple[str, ...] | None
    environ: Mapping[str, str]
    stop_now: threading.Event  # the worker was told to stop at once: stop the agent
    patiently: Patiently
    progress: Callable[[str], None]  # a line per run's end
    after_run: Callable[[Attempt, int], None]  # records the branch's changes (lease token)
    cannot_start: str | None = None  # why the agent never started, when it did not
    last_word: str | None = None  # the last run's answer or error, as its agent said it

    def run(
        self, lease: Lease, worktree: Path, lock: HeldLock, lost: threading.Event
    ) -> int | None:
        """Run the agent, then each batch of follow-ups; the last run's exit code (None
        when the lease was lost before the first run was recorded)."""
        attempt = lease.attempt
        log_path = self.settings.logs_dir / f"{attempt.id}.log"
        prompt, run, code = attempt.prompt, 0, None
        self.cannot_start = self.last_word = None
        history = self.patiently("reading the prompt history", prompt_history, self.store, attempt)
        while True:
            run += 1
            command, given = self.command, prompt
            if len(history) > 1:  # a follow-up, or a continuation of an ended attempt
                if self.resume_command is not None:
                    command = self.resume_command
                else:
                    given = with_history(history)
            values = {
                "prompt": given,
                "payload": attempt.payload_path or "",
                "worktree": str(worktree),
                "attempt": attempt.id,
                "branch": attempt.branch_name or "",
                "base_commit": attempt.base_commit or "",
                "task_key": attempt.task_key,
            }
            argv = render(command, values)
            processes.append_log(
                log_path, f"=== orch run {run} of attempt {attempt.id}: {argv[0]}\n"
            )
            env = agent_environment(attempt, given, run, self.environ, history)
            output_at = processes.log_size(log_path)  # this run's output starts here
            try:
                agent = processes.AgentProcess(argv, worktree, env, log_path, pass_fds=[lock.fd])
            except OSError as exc:
                self.cannot_start = (
                    f"cannot start {argv[0]}: {processes.start_failure(argv[0], exc)}"
                )
                processes.append_log(log_path, f"=== orch: {self.cannot_start} ({exc})\n")
                return 127
            try:
                started = self.store.start_run(
                    attempt.id,
                    lease.token,
                    prompt,
                    argv,
                    str(log_path),
                    agent.pid,
                    agent.started_at,
                )
            except BaseException as exc:
                # the store does not know this agent: never leave it running unsupervised
                agent.stop(self.settings.cancel_grace)
                if isinstance(exc, LeaseLost):
                    lost.set()
                    return None
                raise
            code = self._supervise(agent, lost)
            # the store's number: a check run (or an earlier worker's run) may come first
            number = started.number
            self.patiently("recording the run's end", self.store.end_run, attempt.id, number, code)
            self._record_usage(attempt.id, number, log_path, output_at)
            self.progress(f"orch work: {attempt.id} run {run} exited with {code}")
            processes.append_log(log_path, f"=== orch run {run} exited with {code}\n")
            self.after_run(attempt, lease.token)
            if lost.is_set() or self.stop_now.is_set():
                return code
            try:
                messages = self.patiently(
                    "reading follow-ups",
                    self.store.take_messages,
                    attempt.id,
                    lease.token,
                    number + 1,
                )
            except LeaseLost:
                lost.set()
                return code
            if not messages:
                return code
            prompt = "\n\n".join(m.body for m in messages)
            history.append(prompt)
            with contextlib.suppress(OrchError):  # the payload is a copy: the store has it
                rewrite_payload(attempt, self.settings, self.store, history)

    def summary(self, attempt: Attempt, code: int | None) -> str:
        """How the last run ended, for the attempt's finish: the exit code and the agent's
        last word (or the log's last line of the agent's own, or why it never started)."""
        if self.cannot_start is not None:
            # the log's last line is the set-up hook's, not why the agent never ran
            return f"exit code {code}: {self.cannot_start}"
        # the agent's own last word when its output is machine-readable (the JSON's tail
        # is no sentence), else the log's last line
        said = self.last_word.splitlines() if self.last_word else None
        tail = [
            ln
            for ln in said or processes.log_tail(self.settings.logs_dir / f"{attempt.id}.log", 10)
            if ln.strip() and not ln.startswith("=== orch")
        ]
        last = tail[-1].strip()[:200] if tail else ""
        return f"exit code {code}" + (f": {last}" if last else "")

    def _record_usage(self, attempt_id: str, number: int, log_path: Path, output_at: int) -> None:
        """Read what the agent said it consumed, and its last word, from the run's output
        in the log (``orch.attempts.usage``); the output itself is left as it is. Nothing
        here can fail the run: unreadable output is unknown usage, a store error is lost."""
        report = read_report(processes.log_lines_from(log_path, output_at))
        self.last_word = report.message
        if report.usage is not None or report.unreadable:
            with contextlib.suppress(OrchError):
                self.store.record_usage(attempt_id, number, report.usage, report.unreadable)

    def _supervise(self, agent: processes.AgentProcess, lost: threading.Event) -> int:
        while True:
            code = agent.wait(0.1)
            if code is not None:
                agent.close()
                return code
            if lost.is_set() or self.stop_now.is_set():
                return agent.stop(self.settings.cancel_grace)
