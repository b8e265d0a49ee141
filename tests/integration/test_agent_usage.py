"""Tokens and cost per run (issue 21.4), through the real ``orch work`` path.

Each agent binary is a stand-in on PATH that prints recorded machine-readable output of
that agent (tests/support/agent_output.py) and exits as told; the worker is the
installed ``orch work --agent NAME`` claiming a real dispatched attempt, so the output
goes through the log and the parser as it would from the real CLI. ``orch show``,
``orch list`` and ``orch compare`` then read the store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.agent_output import CLAUDE, CODEX, GEMINI_STREAM
from tests.support.attempts import dispatch, show
from tests.support.cli import RunCli, RunOrch, json_out
from tests.support.processes import stand_in

# prints the file $OUTPUT verbatim, then exits with $EXIT
STAND_IN = """#!{python}
import os, sys
sys.stdout.write(open(os.environ["OUTPUT"]).read())
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def _agent(tmp_path: Path, name: str, lines: list[str], code: int = 0) -> dict[str, str]:
    """Put a stand-in ``name`` on PATH printing ``lines``; the environment to run it with."""
    output = tmp_path / f"{name}.out"
    output.write_text("".join(line + "\n" for line in lines))
    on_path = stand_in(tmp_path / "bin", name, STAND_IN.format(python=sys.executable))
    return {**on_path, "OUTPUT": str(output), "EXIT": str(code)}


@pytest.mark.parametrize(
    ("agent", "lines", "usage", "said"),
    [
        (
            "claude",
            CLAUDE,
            {
                "input_tokens": 129860,
                "output_tokens": 2140,
                "cached_tokens": 120000,
                "cost_usd": 0.0842,
                "model": "claude-sonnet-4-5-20250929, claude-3-5-haiku-20241022",
            },
            "Tests pass.",
        ),
        (
            "codex",
            CODEX,
            {
                "input_tokens": 24763,
                "output_tokens": 122,
                "cached_tokens": 24448,
                "cost_usd": None,
                "model": None,
            },
            "Repo contains docs and src.",
        ),
        (
            "gemini",
            GEMINI_STREAM,
            {
                "input_tokens": 24939,
                "output_tokens": 20,
                "cached_tokens": 21263,
                "cost_usd": None,
                "model": "gemini-2.5-pro",
            },
            "Retries added.",
        ),
    ],
)
def test_a_run_records_the_usage_its_agent_reported(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    tmp_path: Path,
    agent: str,
    lines: list[str],
    usage: dict[str, object],
    said: str,
) -> None:
    attempt = dispatch(run_cli, repo, f"usage-{agent}")
    env = _agent(tmp_path, agent, lines)
    worker = run_orch("work", "--once", "--agent", agent, cwd=repo, env=env)
    assert worker.returncode == 0, worker.stderr
    # the summary is the agent's last word, not the tail of its JSON
    assert worker.stdout.strip() == f"{attempt['id']} succeeded exit code 0: {said}"

    shown = show(run_cli, attempt["id"], cwd=repo)
    assert shown["runs"][0]["usage"] == usage
    assert shown["usage"] == usage
    assert shown["task_usage"] == usage
    # the output went to the log unchanged
    log = Path(shown["runs"][0]["log_path"]).read_text()
    assert "".join(line + "\n" for line in lines) in log

    listed = json_out(run_cli("list", "--json", cwd=repo))
    assert listed["usage"][attempt["id"]] == usage
    assert listed["task_usage"][f"usage-{agent}"] == usage
    text = run_cli("show", attempt["id"], cwd=repo).stdout
    assert "usage " in text and " out" in text


def test_a_script_reports_usage_and_unreadable_lines_are_counted_not_fatal(
    store_url: str, repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = dispatch(run_cli, repo, "scripted")
    script = (
        'echo \'orch-usage: {"input_tokens": 1000, "output_tokens": 50\' && '  # cut short
        'echo \'orch-usage: {"input_tokens": 1200, "output_tokens": 60, "cost_usd": 0.5}\''
        " && echo 'orch-usage: not json' && echo all done"
    )
    worker = run_orch("work", "--once", "--", "sh", "-c", script, cwd=repo)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.strip() == f"{attempt['id']} succeeded exit code 0: all done"
    shown = show(run_cli, attempt["id"], cwd=repo)
    assert shown["usage"] == {
        "input_tokens": 1200,
        "output_tokens": 60,
        "cached_tokens": None,
        "cost_usd": 0.5,
        "model": None,
    }
    [counted] = [e for e in shown["events"] if e["kind"] == "usage_unreadable"]
    assert counted["detail"] == {"run": 1, "lines": 2}
    assert "could not be read (ignored): 2" in run_cli("show", attempt["id"], cwd=repo).stdout


def test_an_agent_that_reports_nothing_leaves_usage_empty_never_zero(
    repo: Path, run_cli: RunCli, run_orch: RunOrch
) -> None:
    attempt = dispatch(run_cli, repo, "silent")
    worker = run_orch("work", "--once", "--", "sh", "-c", "echo plain words", cwd=repo)
    assert worker.returncode == 0, worker.stderr
    shown = show(run_cli, attempt["id"], cwd=repo)
    assert shown["runs"][0]["usage"] is None
    assert shown["usage"] is None and shown["task_usage"] is None
    assert attempt["id"] not in json_out(run_cli("list", "--json", cwd=repo))["usage"]
    compared = run_cli("compare", "silent", cwd=repo)
    assert "TOKENS" not in compared.stdout


def test_an_agent_error_becomes_the_reason_and_compare_sums_the_task(
    store_url: str, repo: Path, run_cli: RunCli, run_orch: RunOrch, tmp_path: Path
) -> None:
    first = dispatch(run_cli, repo, "pair")
    env = _agent(tmp_path, "codex", CODEX)
    assert run_orch("work", "--once", "--agent", "codex", cwd=repo, env=env).returncode == 0
    second = dispatch(run_cli, repo, "pair")
    failed = '{"type":"turn.failed","error":{"message":"401 Unauthorized: not logged in"}}'
    env = _agent(tmp_path, "codex", [*CODEX[:2], failed], code=1)
    worker = run_orch("work", "--once", "--agent", "codex", cwd=repo, env=env)
    assert worker.stdout.strip() == (
        f"{second['id']} failed exit code 1: 401 Unauthorized: not logged in"
    )

    compared = json_out(run_cli("compare", "pair", "--json", cwd=repo))
    rows = {row["id"]: row for row in compared["attempts"]}
    assert rows[first["id"]]["usage"]["output_tokens"] == 122
    assert rows[second["id"]]["usage"] is None
    assert compared["usage"]["input_tokens"] == 24763
    text = run_cli("compare", "pair", cwd=repo).stdout
    header = text.splitlines()[1]
    assert header.split()[-2:] == ["TOKENS", "COST"]
    assert "24.8k/122" in text
    shown = show(run_cli, second["id"], cwd=repo)
    assert shown["usage"] is None
    assert shown["task_usage"]["input_tokens"] == 24763
    assert json.dumps(shown)  # the document stays JSON
