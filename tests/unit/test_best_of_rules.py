"""The pure rules of a best-of-N dispatch and of the prompt, without git or a store:
which worker each attempt goes to (``spread_workers``) and what counts as no prompt
(``orch.prompt``)."""

from __future__ import annotations

import pytest

from orch.attempts.dispatch import spread_workers
from orch.errors import InvalidInput
from orch.prompt import require_prompt


@pytest.mark.parametrize(
    ("workers", "attempts", "expected"),
    [
        ((), None, (None,)),
        ((), 3, (None, None, None)),
        (("claude",), None, ("claude",)),
        (("claude",), 3, ("claude", "claude", "claude")),
        (("claude", "codex"), None, ("claude", "codex")),
        (("claude", "codex"), 4, ("claude", "codex", "claude", "codex")),
        (("claude", "codex"), 3, ("claude", "codex", "claude")),
        (("a", "b", "c"), 3, ("a", "b", "c")),
    ],
)
def test_workers_are_spread_in_turn(
    workers: tuple[str, ...], attempts: int | None, expected: tuple[str | None, ...]
) -> None:
    assert spread_workers(workers, attempts) == expected


@pytest.mark.parametrize(
    ("workers", "attempts", "message"),
    [
        (("a", "b", "c"), 2, "3 workers named for 2 attempts"),
        (("a", "b"), 1, "2 workers named for 1 attempt:"),
        ((), 0, "--attempts must be at least 1"),
        ((), -2, "--attempts must be at least 1"),
        (("a", ""), 2, "--worker must not be empty"),
        ((), 101, "--attempts 101: at most 100 attempts are made at once"),
        ((), 3_000_000_000, "at most 100 attempts"),
        (("a", "w" * 129), 2, "--worker is 129 characters long, at most 128 are allowed"),
    ],
)
def test_spreading_refuses(workers: tuple[str, ...], attempts: int, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        spread_workers(workers, attempts)
    assert message in caught.value.message


@pytest.mark.parametrize("prompt", ["do it", " x ", "-x", "\n\tfix it\n"])
def test_a_prompt_with_something_in_it_is_kept_as_is(prompt: str) -> None:
    assert require_prompt(prompt) == prompt


@pytest.mark.parametrize(
    ("prompt", "what"), [("", "empty"), (" ", "only whitespace"), ("\n\t \r\n", "only whitespace")]
)
def test_no_prompt_is_refused_unless_allowed(prompt: str, what: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        require_prompt(prompt)
    assert caught.value.message.startswith(f"the prompt is {what}: ")
    assert caught.value.exit_code == 2
    assert require_prompt(prompt, allow_empty=True) == prompt


@pytest.mark.parametrize(
    ("text", "number"),
    [("0", 0), ("42", 42), ("007", 7), ("", None), ("-1", None), ("1.5", None), ("²", None),
     ("٣", None), (" 4", None)],
)  # fmt: skip
def test_a_whole_number_is_ascii_digits_only(text: str, number: int | None) -> None:
    from orch.naming import whole_number

    assert whole_number(text) == number
