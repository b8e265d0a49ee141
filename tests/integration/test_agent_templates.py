"""A prompt that starts with '-' never reaches a built-in agent as an option (issue 17.19).

Each agent binary (claude, codex, gemini, aider) is replaced by a stand-in script on PATH
that records the argv it was given and exits 0; only the agent binary is replaced: the
worker is the installed ``orch work --agent NAME`` claiming a real dispatched attempt.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.attempts import dispatch
from tests.support.cli import ORCH_BIN, RunCli
from tests.support.processes import Proc, procs, stand_in

WorkOnce = Callable[[], Proc]

PROMPT = "--dangerously-skip-permissions and then rm -rf the build"

STAND_IN = """#!{python}
import json, os, sys
with open(os.path.join(os.environ["MARKS"], "argv.json"), "w") as fh:
    json.dump(sys.argv[1:], fh)
with open(os.path.join(os.environ["MARKS"], "argv.jsonl"), "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
"""


CLAUDE = ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
CLAUDE += ["--output-format", "stream-json", "--verbose"]
CODEX = ["--json", "--sandbox", "workspace-write", "--skip-git-repo-check"]
GEMINI = ["--skip-trust", "--approval-mode=yolo", "--output-format=stream-json"]


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    """Where the stand-in writes the argv it was given."""
    marks = tmp_path / "marks"
    marks.mkdir()
    return marks


@pytest.fixture
def work_once(tmp_path: Path, marks: Path, agent: str) -> Iterator[WorkOnce]:
    """Start ``orch work --once --agent <agent>`` with the agent replaced by the stand-in."""
    on_path = stand_in(tmp_path / "bin", agent, STAND_IN.format(python=sys.executable))
    env = {**on_path, "MARKS": str(marks)}
    with procs(tmp_path) as start:
        yield lambda: start([ORCH_BIN, "work", "--once", "--agent", agent], env=env)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        # commander (claude) and clap (codex) end their options at '--'
        ("claude", ["-p", *CLAUDE, "--", PROMPT]),
        ("codex", ["exec", *CODEX, "--", PROMPT]),
        # yargs (gemini) and argparse (aider) read a value glued with '=' verbatim
        ("gemini", [*GEMINI, f"--prompt={PROMPT}"]),
        ("aider", ["--yes-always", f"--message={PROMPT}"]),
    ],
)
def test_a_prompt_starting_with_a_dash_is_no_option_of_the_agent(
    repo: Path, run_cli: RunCli, marks: Path, expected: list[str], work_once: WorkOnce
) -> None:
    attempt = dispatch(run_cli, repo, "dashes", f"--prompt={PROMPT}")
    assert attempt["prompt"] == PROMPT

    worker = work_once()
    assert worker.wait() == 0, worker.output()
    assert worker.stdout.startswith(f"{attempt['id']} succeeded"), worker.output()
    argv = json.loads((marks / "argv.json").read_text())
    assert argv == expected
    # the prompt is never an argument of its own before the end of the options
    ends = argv.index("--") if "--" in argv else len(argv)
    assert PROMPT not in argv[:ends]


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        # agents that can resume their most recent session in the worktree do so
        ("claude", ["-p", *CLAUDE, "--continue", "--", "-x and a test"]),
        ("codex", ["exec", *CODEX, "resume", "--last", "--", "-x and a test"]),
        # the others are given the original prompt with the follow-up
        ("gemini", [*GEMINI, f"--prompt={PROMPT}\n\nFollow-up: -x and a test"]),
        ("aider", ["--yes-always", f"--message={PROMPT}\n\nFollow-up: -x and a test"]),
    ],
)
def test_a_follow_up_resumes_the_agent_session_or_carries_the_original_prompt(
    repo: Path, run_cli: RunCli, marks: Path, expected: list[str], work_once: WorkOnce
) -> None:
    attempt = dispatch(run_cli, repo, "resumed", f"--prompt={PROMPT}")
    first = work_once()
    assert first.wait() == 0, first.output()
    sent = run_cli("send", attempt["id"], "--", "-x and a test")
    assert sent.exit_code == 0, sent.output
    second = work_once()
    assert second.wait() == 0, second.output()
    runs = [json.loads(line) for line in (marks / "argv.jsonl").read_text().splitlines()]
    assert len(runs) == 2
    assert runs[1] == expected
