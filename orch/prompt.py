"""The one rule on what an attempt may be given as its prompt, shared by ``orch dispatch``
and ``orch submit`` (and whatever else starts a task).

An empty prompt reaches the agent as an empty ``{prompt}``: an agent that runs with
nothing to do, silently. It is refused unless the operator says the attempt needs none
(a phase whose agent takes no instructions). Imports nothing but orch.errors.
"""

from __future__ import annotations

from orch.errors import InvalidInput

ALLOW_FLAG = "--allow-empty-prompt"


def require_prompt(prompt: str, allow_empty: bool = False) -> str:
    """Return ``prompt`` unchanged; raise ``InvalidInput`` when it is empty or only
    whitespace and ``allow_empty`` is not set."""
    if prompt.strip() or allow_empty:
        return prompt
    what = "empty" if not prompt else "only whitespace"
    raise InvalidInput(
        f"the prompt is {what}: give the agent something to do with --prompt or "
        f"--prompt-file ({ALLOW_FLAG} for an attempt that needs none)"
    )
