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
from orch.system import inbox

# A prompt may start with '-': it must never reach an agent as an option. claude (commander)
# and codex (clap) end their options at '--'; gemini (yargs) and aider (argparse) take the
# prompt glued to its option ('--prompt=-x' is the value '-x' to both).
AGENT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "claude": ("claude", "-p", "--", "{prompt}"),
    "codex": ("codex", "exec", "--", "{prompt}"),
    "gemini": ("gemini", "--prompt={prompt}"),
    "aider": ("aider", "--yes-always", "--message={prompt}"),
}
# A follow-up goes on in the agent's own session where the agent can resume it (the most
# recent session in the worktree): the follow-up alone is then its prompt. Any other
# command is given the original prompt with the follow-ups appended (``with_history``).
RESUME_TEMPLATES: dict[str, tuple[str, ...]] = {
    "claude": ("claude", "-p", "--continue", "--", "{prompt}"),
    "codex": ("codex", "exec", "resume", "--last", "--", "{prompt}"),
}
PLACEHOLDERS = ("prompt", "payload", "worktree", "attempt", "branch", "base_commit", "task_key")


def agent_command(template: str | None, argv: Sequence[str]) -> tuple[str, ...]:
    if template and argv:
        raise InvalidInput("give either --agent or a command after '--', not both")
    if template:
        if template not in AGENT_TEMPLATES:
            known = ", ".join(sorted(AGENT_TEMPLATES))
            raise InvalidInput(f"unknown agent {template!r} (known: {known})")
        return AGENT_TEMPLATES[template]
    if not argv:
        raise InvalidInput("name an agent with --agent, or a command after '--'")
    return tuple(argv)


def resume_command(template: str | None) -> tuple[str, ...] | None:
    return RESUME_TEMPLATES.get(template) if template else None


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
