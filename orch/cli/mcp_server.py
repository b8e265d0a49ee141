"""``orch mcp``: orch's operator commands as tools of a Model Context Protocol server on
standard input and output, built with the official ``mcp`` SDK (the ``mcp`` extra).

Each tool calls the use case its command calls (orch.attempts) and answers with the very
document the command prints with ``--json`` (orch.cli.json_bodies, orch.cli.review_render,
orch.cli.render.to_json), as text and as structured content. An ``OrchError`` is a tool
error carrying the ``--json`` error envelope (its exit code, the code's name, the
message); any other exception is a bug, which the SDK logs with its traceback on standard
error and answers as a tool error, and the server keeps serving. Arguments the tool's
input schema refuses are answered by the SDK before a tool runs.

Only this module imports the SDK, and only orch.cli.mcp_commands imports this module,
once the SDK is known to be there. Never writes to standard output: the SDK owns it (it
moves file descriptor 1 to standard error while it serves, so that a child process's output
cannot garble the protocol). Tools run in the SDK's worker threads, so a ``wait`` never
stops the others.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from orch import __version__
from orch.attempts.events.kick import Kicker
from orch.cli.render import error_json, to_json
from orch.errors import InvalidInput, OrchError
from orch.models import State

if TYPE_CHECKING:
    from orch.config import Settings
    from orch.git import Git
    from orch.store import Store

WAIT_DEFAULT = 60.0  # seconds: a call that holds a client's request open stays short
WAIT_MAX = 600.0

INSTRUCTIONS = (
    "orch runs many coding-agent attempts of a task on one git repository: each attempt "
    "has a committed base, its own branch and worktree, and a record in orch's store. "
    "dispatch makes attempts, list/show read them, diff/compare review what they changed, "
    "check runs the repository's check on one, send gives one a follow-up, wait blocks "
    "until they end, cancel ends them, land takes the chosen one into its branch (a dry run "
    "unless dry_run is false), pr opens a pull request for one with gh, ports names their "
    "port bundle. Every result is the "
    "JSON of the matching `orch ... --json` command; an error carries orch's exit code and "
    "its name (NotFound, InvalidInput...)."
)

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class Orch:
    """What every tool call shares: the settings, resolved once when the server starts,
    and the store, opened by the first call that needs it and kept (a store that cannot
    be opened is that call's tool error, and the next call tries again)."""

    def __init__(self, settings: Settings, git: Git, actor: str, cwd: Path) -> None:
        self.settings = settings
        self.git = git
        self.actor = actor
        self.cwd = cwd  # where relative repository paths start: where the agent started orch
        self._store: Store | None = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                from orch.store import open_store

                settings = self.settings
                self._store = open_store(
                    settings.database_url,
                    settings.locks_dir,
                    synchronous=settings.sqlite_synchronous,
                )
                # events go out as from the CLI (at most DELAY seconds after the change)
                self._store.on_events = Kicker(self._store, settings, os.environ)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                if isinstance(self._store.on_events, Kicker):
                    self._store.on_events.flush()
                self._store.close()
                self._store = None

    def reap(self) -> Store:
        """The store, once the attempts whose worker is gone have been ended (as the
        commands that read attempts do first)."""
        from orch.attempts.lifecycle import reap

        store = self.store()
        reap(store, self.actor, host=self.settings.host_name)
        return store


def answer(work: Callable[[], dict[str, Any]]) -> CallToolResult:
    """The tool's result: the command's ``--json`` document, or its error envelope."""
    try:
        body = work()
    except OrchError as exc:
        text = error_json(exc.exit_code, exc.code_name, exc.message)
        return _result(text, is_error=True)
    return _result(to_json(**body), is_error=False)


def _result(text: str, *, is_error: bool) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=json.loads(text),
        is_error=is_error,
    )


def build_server(orch: Orch) -> MCPServer[Any]:
    """The server and its tools; the tools' docstrings and signatures are what an agent
    sees (descriptions and input schemas)."""
    server: MCPServer[Any] = MCPServer(
        name="orch", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @server.tool()
    def dispatch(
        task_key: str,
        prompt: str,
        repo: str | None = None,
        base_ref: str | None = None,
        strict: bool = False,
        attempts: Annotated[int, Field(ge=1)] | None = None,
        workers: list[str] | None = None,
        phase: str | None = None,
        reuse_workspace: bool = False,
        host: str | None = None,
        sparse: list[str] | None = None,
        allow_empty_prompt: bool = False,
    ) -> CallToolResult:
        """Create an attempt of task_key: a committed base, its own branch and worktree, a
        store record and a payload for a worker (orch dispatch --json). repo: the
        repository (default: where orch mcp was started); base_ref: branch, tag or SHA to
        start from (default HEAD); strict: refuse uncommitted changes unless base_ref is
        given; attempts: best-of-N, N attempts from one base commit, each with its own
        branch, worktree and ports (the result lists those made and those that failed);
        workers: the workers or worker kinds to take them, in turn; sparse: check out only
        these directories."""

        def work() -> dict[str, Any]:
            import os

            from orch.attempts.dispatch import DispatchRequest, spread_workers
            from orch.faults import checkpoint_from_env

            named = tuple(workers or ())
            per_attempt = spread_workers(named, attempts)
            request = DispatchRequest(
                task_key=task_key,
                repo_path=orch.cwd / Path(repo).expanduser() if repo else orch.cwd,
                base_ref=base_ref,
                strict=strict,
                prompt=prompt,
                worker=per_attempt[0],
                phase=phase,
                reuse_workspace=reuse_workspace,
                host=host,
                sparse=tuple(sparse or ()),
                allow_empty_prompt=allow_empty_prompt,
            )
            checkpoint = checkpoint_from_env(os.environ)
            if attempts is not None or len(named) > 1:
                from orch.attempts.dispatch import dispatch_many
                from orch.cli.json_bodies import dispatch_many_body

                # attempts that failed to provision are listed in the result, beside
                # those made (the command's --json document, with its exit 14)
                made = dispatch_many(
                    request,
                    per_attempt,
                    orch.settings,
                    orch.git,
                    orch.store,
                    orch.actor,
                    checkpoint,
                )
                return dispatch_many_body(made)
            from orch.attempts.dispatch import dispatch as run_dispatch
            from orch.cli.json_bodies import dispatch_body

            result = run_dispatch(
                request, orch.settings, orch.git, orch.store, orch.actor, checkpoint
            )
            return dispatch_body(result)

        return answer(work)

    @server.tool(name="list", annotations=_READ_ONLY)
    def list_attempts(
        states: list[State] | None = None,
        task_key: str | None = None,
        limit: Annotated[int, Field(ge=1)] | None = None,
    ) -> CallToolResult:
        """List attempts, newest first, optionally only those in the given states or of
        one task, with the newest check of each that has one (orch list --json)."""

        def work() -> dict[str, Any]:
            from orch.attempts.queries import listing

            return listing(orch.reap(), tuple(states or ()), task_key, limit).to_dict()

        return answer(work)

    @server.tool(annotations=_READ_ONLY)
    def show(attempt: str) -> CallToolResult:
        """One attempt with its events, runs, follow-up messages and port bundle (orch
        show --json). attempt: an id, a unique prefix of 4+ characters, or a payload
        path."""

        def work() -> dict[str, Any]:
            from orch.attempts.changes import show as run_show

            return run_show(orch.reap(), orch.git, attempt).to_dict()

        return answer(work)

    @server.tool(annotations=_READ_ONLY)
    def diff(attempt: str, committed: bool = False) -> CallToolResult:
        """What an attempt changed against its recorded base_commit: the files (status,
        additions, deletions), the commits and the totals (orch diff --json). Its
        worktree's uncommitted and untracked files count too unless committed is true."""

        def work() -> dict[str, Any]:
            from orch.attempts.review import changes, diff_body, locate

            found = locate(orch.store(), orch.git, attempt, committed=committed)
            return diff_body(found, changes(orch.git, found), committed=committed)

        return answer(work)

    @server.tool(annotations=_READ_ONLY)
    def compare(first: str, second: str | None = None, worktree: bool = False) -> CallToolResult:
        """Compare the attempts of a task, or the results of two attempts (orch compare
        --json). first alone, a task key: per attempt its worker, state, duration, commits,
        files and lines changed against its own base_commit and its newest check, then the
        files more than one attempt changed. first and second, two attempts: the files
        changed from first's tip to second's; with worktree, each side as its worktree is
        now, uncommitted and untracked files too."""

        def work() -> dict[str, Any]:
            if second is None:
                from orch.attempts.compare import compare_task

                if worktree:
                    raise InvalidInput("worktree compares two attempts (first and second)")
                found = compare_task(orch.store(), orch.git, first)
                return found.to_dict()
            from orch.attempts.review import comparison
            from orch.cli.review_render import comparison_body

            pair = comparison(orch.store(), orch.git, first, second, worktree=worktree)
            return comparison_body(pair, orch.git.changed_files(pair.range), worktree)

        return answer(work)

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    def check(attempt: str) -> CallToolResult:
        """Run the repository's check command ([review] check in its orch.toml) in the
        attempt's worktree and record the result (orch check --json): result says whether
        it passed; it may take up to [review] check_timeout seconds (default 600)."""

        def work() -> dict[str, Any]:
            import os

            from orch.attempts.check import check_attempt
            from orch.cli.json_bodies import check_body

            run = check_attempt(orch.store(), orch.settings, attempt, orch.actor, os.environ)
            return check_body(run)

        return answer(work)

    @server.tool()
    def send(attempt: str, message: str) -> CallToolResult:
        """Send an attempt a follow-up message, run in the same worktree (orch send
        --json): a live attempt gets it queued for its worker; one that has ended gets a
        continuation attempt that reuses its worktree and branch."""

        def work() -> dict[str, Any]:
            from orch.attempts.lifecycle import send as run_send
            from orch.cli.json_bodies import send_body

            outcome = run_send(orch.store(), attempt, message, orch.actor, orch.settings)
            return send_body(outcome)

        return answer(work)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    def submit(
        task_key: str,
        prompt: str,
        repo: str | None = None,
        base_ref: str | None = None,
        attempts: Annotated[int, Field(ge=1)] | None = None,
        workers: list[str] | None = None,
        allow_empty_prompt: bool = False,
    ) -> CallToolResult:
        """Queue task_key for the loop of orch serve to dispatch; nothing is provisioned
        now (orch submit --json). The loop dispatches it when the task has no live
        attempt, its cooldown is over and it has fewer than max_attempts attempts;
        attempts: best-of-N, made by one dispatch from one base commit; workers: the
        workers or worker kinds to take them, in turn."""

        def work() -> dict[str, Any]:
            from orch.serve.queue import submit as run_submit

            task = run_submit(
                orch.store(),
                orch.git,
                task_key,
                orch.cwd / Path(repo).expanduser() if repo else orch.cwd,
                prompt,
                orch.actor,
                base_ref=base_ref,
                workers=tuple(workers or ()),
                attempts=attempts,
                allow_empty_prompt=allow_empty_prompt,
            )
            return {"task": task.to_dict()}

        return answer(work)

    @server.tool(annotations=_READ_ONLY)
    def wait(
        attempts: Annotated[list[str], Field(min_length=1)],
        timeout: Annotated[float, Field(ge=0, le=WAIT_MAX)] = WAIT_DEFAULT,
    ) -> CallToolResult:
        """Block until every attempt has ended, or timeout seconds (at most 600) have
        passed; call it again to keep waiting (orch wait --json). The result says how it
        ended: timed_out, and all_succeeded (the command's exit codes 15 and 14)."""

        def work() -> dict[str, Any]:
            from orch.attempts.lifecycle import wait as run_wait
            from orch.cli.json_bodies import wait_body

            host = orch.settings.host_name
            outcome = run_wait(orch.store(), attempts, timeout, orch.actor, host=host)
            return wait_body(outcome)

        return answer(work)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    def cancel(
        attempts: Annotated[list[str], Field(min_length=1)], reason: str | None = None
    ) -> CallToolResult:
        """End attempts as cancelled and stop a running local agent (orch cancel --json);
        one that has already ended is left as it is (changed: false)."""

        def work() -> dict[str, Any]:
            from orch.attempts.lifecycle import cancel as run_cancel
            from orch.cli.json_bodies import cancel_body

            store, settings = orch.store(), orch.settings
            outcomes = [
                run_cancel(
                    store, ref, orch.actor, settings.cancel_grace, reason, settings.host_name
                )
                for ref in attempts
            ]
            return cancel_body(outcomes)

        return answer(work)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    def land(
        attempts: Annotated[list[str], Field(min_length=1)],
        dry_run: bool = True,
        into: str | None = None,
        strategy: Literal["squash", "rebase", "merge", "ff-only"] = "squash",
        message: str | None = None,
        check: bool = True,
        resolve: bool = False,
        keep: bool = False,
        force: bool = False,
        strict: bool = False,
        repo: str | None = None,
    ) -> CallToolResult:
        """Land attempts' committed work into their target branch, in order (orch land
        --json). dry_run (the default): only say whether each would land cleanly and its
        diffstat, changing nothing; set it to false to land. into: the target branch
        (default: the branch the attempt's base_ref named, else the main worktree's);
        check: run [review] check on the merged result first; resolve: on a conflict,
        send the attempt's agent a follow-up to rebase; keep: keep the worktree and branch
        after landing; force: land a live attempt's committed work. The result lists
        every attempt's outcome; it is an error when any did not land (or would not)."""

        def work() -> tuple[dict[str, Any], bool]:
            from orch.attempts.land import LandRequest, Strategy
            from orch.attempts.land import land as run_land
            from orch.faults import checkpoint_from_env

            repository = None
            if repo is not None:
                where = orch.cwd / Path(repo).expanduser()
                repository = str(orch.git.discover(where.absolute()).root)
            request = LandRequest(
                refs=tuple(attempts),
                into=into,
                strategy=Strategy(strategy),
                message=message,
                check=check,
                resolve=resolve,
                keep=keep,
                dry_run=dry_run,
                force=force,
                strict=strict,
                repository=repository,
            )
            outcomes = run_land(
                orch.store(),
                orch.settings,
                orch.git,
                request,
                orch.actor,
                os.environ,
                checkpoint_from_env(os.environ),
            )
            body = {"outcomes": [o.to_dict() for o in outcomes]}
            return body, any(not o.ok for o in outcomes)

        try:
            body, failed = work()
        except OrchError as exc:
            return _result(error_json(exc.exit_code, exc.code_name, exc.message), is_error=True)
        # like orch land --json: the outcomes are worth more than an error document
        return _result(to_json(**body), is_error=failed)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=True))
    def pr(
        attempt: str,
        draft: bool = False,
        base: str | None = None,
        title: str | None = None,
        body: str | None = None,
    ) -> CallToolResult:
        """Push an attempt's branch to the repository's remote and open a pull request for
        it with gh, the GitHub CLI (orch pr --json); its URL and number are recorded on
        the attempt, and the loop of orch serve / orch loop forwards failing checks and
        review comments to its agent from then on. base: the branch to merge into
        (default: the repository's default branch on GitHub); title (default: the task
        key and the prompt's first line); body (default: the task, the attempt, its base
        commit, its prompt and its newest check result). Errors: 23 gh is missing or not
        logged in, no remote, or gh failed (nothing recorded); 12 it already has a pull
        request; 8 unknown attempt or its branch is gone; 7 the push failed."""

        def work() -> dict[str, Any]:
            from orch.attempts.pull_request import PrRequest, open_pull_request

            request = PrRequest(attempt=attempt, draft=draft, base=base, title=title, body=body)
            done = open_pull_request(orch.store(), orch.git, request, orch.actor)
            return {"attempt": done.to_dict()}

        return answer(work)

    @server.tool(annotations=_READ_ONLY)
    def ports(attempt: str) -> CallToolResult:
        """An attempt's port bundle: its block of ports and the named slots in it (orch
        ports --json)."""

        def work() -> dict[str, Any]:
            from orch.attempts.queries import attempt_ports
            from orch.cli.json_bodies import ports_body

            return ports_body(*attempt_ports(orch.store(), attempt))

        return answer(work)

    return server


def serve(orch: Orch) -> None:
    """Serve on standard input and output until the client closes them."""
    try:
        build_server(orch).run("stdio")
    finally:
        orch.close()
