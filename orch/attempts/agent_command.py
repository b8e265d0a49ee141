"""The agent's command line and environment: the built-in templates, the placeholders a
command may use, and the variables every agent run gets. Pure: runs nothing, reads only
the attempt's payload for its port bundle.

A prompt is data, never an option: every built-in template ends the agent's options
before the prompt (or glues it to its option), and ``sh -c`` commands are steered to
``"$ORCH_PROMPT"`` instead of ``{prompt}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from orch.errors import InvalidInput, OrchError
from orch.models import Attempt
from orch.record import record
from orch.system import inbox


@record
class Template:
    """A built-in agent: its program and mode (``head``), the options it runs with
    (``options``: unattended, confined to its worktree, usage in machine-readable output;
    what ``[agents.NAME] args`` in the config file replaces) and where the prompt goes.
    ``resume``, when the agent can go on in its most recent session in the worktree,
    comes between the options and the prompt."""

    head: tuple[str, ...]
    options: tuple[str, ...]
    prompt: tuple[str, ...]
    resume: tuple[str, ...] | None = None

    def command(self, options: Sequence[str] | None = None) -> tuple[str, ...]:
        return (*self.head, *(self.options if options is None else options), *self.prompt)

    def resume_command(self, options: Sequence[str] | None = None) -> tuple[str, ...] | None:
        if self.resume is None:
            return None
        given = self.options if options is None else options
        return (*self.head, *given, *self.resume, *self.prompt)


# A prompt may start with '-': it must never reach an agent as an option. claude (commander)
# and codex (clap) end their options at '--'; gemini (yargs) and aider (argparse) take the
# prompt glued to its option ('--prompt=-x' is the value '-x' to both).
TEMPLATES: dict[str, Template] = {
    # print mode; file edits inside the working directory accepted, shell commands allowed
    # (nothing else: a tool that would ask is refused, there is no one to answer); the
    # stream of JSON lines ends with a result carrying usage and cost (``--verbose`` is
    # required with stream-json in print mode)
    "claude": Template(
        head=("claude", "-p"),
        options=(
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "Bash",
            "--output-format",
            "stream-json",
            "--verbose",
        ),
        prompt=("--", "{prompt}"),
        resume=("--continue",),
    ),
    # exec never asks for approval; its sandbox lets commands write the working directory
    # (and temporary files) only; --json: JSON lines, turn.completed carries usage; an
    # attempt outside any repository (skipped-not-git) must not be refused
    "codex": Template(
        head=("codex", "exec"),
        options=("--json", "--sandbox", "workspace-write", "--skip-git-repo-check"),
        prompt=("--", "{prompt}"),
        resume=("resume", "--last"),
    ),
    # yolo: every tool runs without asking (non-interactive mode has no one to ask); a
    # new worktree is a folder Gemini has never trusted, where it would turn yolo back
    # into "default" (asking): --skip-trust trusts it for this run only; stream-json: JSON
    # lines, the result event carries the usage
    "gemini": Template(
        head=("gemini",),
        options=("--skip-trust", "--approval-mode=yolo", "--output-format=stream-json"),
        prompt=("--prompt={prompt}",),
    ),
    "aider": Template(head=("aider",), options=("--yes-always",), prompt=("--message={prompt}",)),
}
# the command lines as the templates give them, for whoever reads them (docs, tests)
AGENT_TEMPLATES: dict[str, tuple[str, ...]] = {n: t.command() for n, t in TEMPLATES.items()}
# A follow-up goes on in the agent's own session where the agent can resume it (the most
# recent session in the worktree): the follow-up alone is then its prompt. Any other
# command is given the original prompt with the follow-ups appended (``with_history``).
RESUME_TEMPLATES: dict[str, tuple[str, ...]] = {
    n: c for n, t in TEMPLATES.items() if (c := t.resume_command()) is not None
}
PLACEHOLDERS = ("prompt", "payload", "worktree", "attempt", "branch", "base_commit", "task_key")


def agent_command(
    template: str | None,
    argv: Sequence[str],
    agent_args: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The command ``orch work`` runs: a built-in template (with the options the config
    file gives it, if any) or the command after '--'."""
    if template and argv:
        raise InvalidInput("give either --agent or a command after '--', not both")
    if template:
        if template not in TEMPLATES:
            known = ", ".join(sorted(TEMPLATES))
            raise InvalidInput(f"unknown agent {template!r} (known: {known})")
        return TEMPLATES[template].command((agent_args or {}).get(template))
    if not argv:
        raise InvalidInput("name an agent with --agent, or a command after '--'")
    return tuple(argv)


def resume_command(
    template: str | None, agent_args: Mapping[str, Sequence[str]] | None = None
) -> tuple[str, ...] | None:
    if not template or template not in TEMPLATES:
        return None
    return TEMPLATES[template].resume_command((agent_args or {}).get(template))


def with_history(history: Sequence[str]) -> str:
    """The original prompt with every follow-up appended, for an agent that cannot resume."""
    first, *later = history
    return "\n\n".join([first, *(f"Follow-up: {text}" for text in later)])


def render(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Substitute ``{prompt}``-style placeholders; other braces are left alone."""
    out = []
    for arg in command:
        for key in PLACEHOLDERS:
            arg = arg.replace("{" + key + "}", values.get(key, ""))
        out.append(arg)
    return out


def agent_environment(
    attempt: Attempt,
    prompt: str,
    run: int,
    base: Mapping[str, str],
    history: Sequence[str] = (),
) -> dict[str, str]:
    """``prompt``: what this run's agent is given; ``history``: every prompt so far."""
    env = dict(base)
    ports: dict[str, int] = {}
    if attempt.payload_path:
        try:
            ports = dict(inbox.read_payload(Path(attempt.payload_path)).get("ports", {}))
        except OrchError:
            ports = {}
    env.update(
        {
            "ORCH_ATTEMPT_ID": attempt.id,
            "ORCH_TASK_KEY": attempt.task_key,
            "ORCH_PAYLOAD": attempt.payload_path or "",
            "ORCH_WORKTREE": attempt.worktree_path or "",
            "ORCH_BRANCH": attempt.branch_name or "",
            "ORCH_BASE_REF": attempt.base_ref,
            "ORCH_BASE_COMMIT": attempt.base_commit or "",
            "ORCH_PROMPT": prompt,
            "ORCH_PROMPT_HISTORY": json.dumps(list(history or [prompt])),
            "ORCH_FOLLOW_UP": history[-1] if len(history) > 1 else "",
            "ORCH_RUN": str(run),
            "ORCH_PORTS": json.dumps(ports),
        }
    )
    for name, port in ports.items():
        env[f"ORCH_PORT_{name.upper()}"] = str(port)
    return env
