"""Reading an agent's usage report and last word from a run's output (orch.attempts.usage).

The samples (tests/support/agent_output.py) are the agents' machine-readable output as
their documentation and type definitions give it; the ``orch-usage:`` line is orch's own.
"""

from __future__ import annotations

import json

import pytest

from orch.attempts.usage import read_report
from orch.models import Usage
from tests.support.agent_output import CLAUDE, CODEX, GEMINI_JSON, GEMINI_STREAM


def test_claude_stream_json_counts_every_model_of_the_run_and_its_cost() -> None:
    report = read_report(CLAUDE)
    assert report.usage == Usage(
        input_tokens=800 + 60 + 120000 + 9000,
        output_tokens=40 + 2100,
        cached_tokens=120000,
        cost_usd=0.0842,
        model="claude-sonnet-4-5-20250929, claude-3-5-haiku-20241022",
    )
    assert report.message == "Added retries to the HTTP client.\nTests pass."
    assert report.unreadable == 0


def test_claude_json_without_model_usage_reads_usage_with_its_cache() -> None:
    result = json.loads(CLAUDE[-1])
    del result["modelUsage"]
    report = read_report([json.dumps(result)])
    assert report.usage == Usage(
        input_tokens=12 + 1500 + 30000, output_tokens=900, cached_tokens=30000, cost_usd=0.0842
    )


def test_claude_not_logged_in_is_its_last_word() -> None:
    line = json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "duration_ms": 210,
            "num_turns": 1,
            "result": "Invalid API key · Please run /login",
            "session_id": "e1",
            "total_cost_usd": 0,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
    )
    report = read_report(["stderr noise", line])
    assert report.message == "Invalid API key · Please run /login"
    # the agent said 0: reported, so recorded as it said
    assert report.usage == Usage(input_tokens=0, output_tokens=0, cost_usd=0.0)


def test_codex_exec_json_reads_turn_completed_and_the_agent_message() -> None:
    report = read_report(CODEX)
    assert report.usage == Usage(input_tokens=24763, output_tokens=122, cached_tokens=24448)
    assert report.message == "Repo contains docs and src."


def test_codex_turn_failed_is_its_last_word() -> None:
    failed = '{"type":"turn.failed","error":{"message":"stream disconnected before completion"}}'
    report = read_report([*CODEX[:2], '{"type":"error","message":"reconnecting 1/5"}', failed])
    assert report.usage is None
    assert report.message == "stream disconnected before completion"


def test_gemini_stream_json_reads_the_result_stats_and_the_answer() -> None:
    report = read_report(GEMINI_STREAM)
    assert report.usage == Usage(
        input_tokens=24939, output_tokens=20, cached_tokens=21263, model="gemini-2.5-pro"
    )
    assert report.message == "Retries added."


def test_gemini_stream_json_error_result_is_its_last_word() -> None:
    error = (
        '{"type":"result","timestamp":"t","status":"error",'
        '"error":{"type":"FatalAuthenticationError","message":"Please set an Auth method"}}'
    )
    report = read_report([GEMINI_STREAM[0], error])
    assert report.usage is None
    assert report.message == "Please set an Auth method"


def test_gemini_json_is_read_across_its_lines() -> None:
    report = read_report(["Loaded cached credentials.", *GEMINI_JSON])
    assert report.usage == Usage(
        input_tokens=24939 + 900,
        output_tokens=20 + 30,
        cached_tokens=21263,
        model="gemini-2.5-pro, gemini-2.5-flash",
    )
    assert report.message == "Retries added."


def test_an_orch_usage_line_reports_for_any_command() -> None:
    line = (
        'orch-usage: {"input_tokens": 1200, "output_tokens": 300, "cached_tokens": 1000,'
        ' "cost_usd": 0.002, "model": "local-llm"}'
    )
    report = read_report(["working", line, "done"])
    assert report.usage == Usage(1200, 300, 1000, 0.002, "local-llm")
    # keys are optional: what is not given stays unknown, never 0
    partial = read_report(['orch-usage: {"output_tokens": 7}'])
    assert partial.usage == Usage(output_tokens=7)


def test_the_last_report_of_a_run_wins() -> None:
    report = read_report([*CODEX, 'orch-usage: {"input_tokens": 5}'])
    assert report.usage == Usage(input_tokens=5)


@pytest.mark.parametrize(
    "line",
    [
        'orch-usage: {"input_tokens": 12',  # truncated
        "orch-usage: not json",
        "orch-usage: [1, 2]",
        'orch-usage: {"input_tokens": -1}',
        'orch-usage: {"input_tokens": "12"}',
        'orch-usage: {"cost_usd": true}',
        '{"type":"turn.completed","usage":{"input_tokens":24',  # a JSON line cut short
    ],
)
def test_a_report_that_cannot_be_read_is_counted_and_changes_nothing(line: str) -> None:
    report = read_report([*CODEX, line])
    assert report.unreadable == 1
    assert report.usage == Usage(input_tokens=24763, output_tokens=122, cached_tokens=24448)


def test_output_with_no_report_leaves_usage_unknown_not_zero() -> None:
    report = read_report(["hello", "{not json either", "", "} {", "orch-usage"])
    assert report == type(report)(usage=None, message=None, unreadable=0)
    assert read_report([]).usage is None


def test_a_pretty_printed_object_cut_short_is_counted() -> None:
    report = read_report(GEMINI_JSON[:10])
    assert report.usage is None
    assert report.unreadable == 1


def test_totals_add_what_is_known_and_keep_unknown_unknown() -> None:
    total = Usage.total(
        [
            Usage(input_tokens=10, output_tokens=2, model="a"),
            None,
            Usage(),
            Usage(input_tokens=5, cost_usd=0.5, model="b, a"),
        ]
    )
    assert total == Usage(input_tokens=15, output_tokens=2, cost_usd=0.5, model="a, b")
    assert Usage.total([None, Usage()]) is None
