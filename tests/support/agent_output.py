"""Recorded machine-readable output of the coding agents, as their documentation and
their own type definitions give it, for the usage reader's tests (unit and through
``orch work``): Claude Code's stream-json (system init, assistant, result with ``usage``,
``modelUsage`` and ``total_cost_usd``), Codex ``exec --json`` (thread, turn and item
events), Gemini CLI's stream-json (init, message, tool and result events) and json (one
pretty-printed object).
"""

from __future__ import annotations

import json

CLAUDE = [
    json.dumps(
        {
            "type": "system",
            "subtype": "init",
            "cwd": "/w/a1",
            "session_id": "5d4c0c1e",
            "tools": ["Bash", "Edit", "Read"],
            "model": "claude-sonnet-4-5-20250929",
            "permissionMode": "acceptEdits",
        }
    ),
    json.dumps(
        {
            "type": "assistant",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": "Adding the retry."}],
                "usage": {"input_tokens": 4, "output_tokens": 1, "cache_read_input_tokens": 9},
            },
            "session_id": "5d4c0c1e",
        }
    ),
    json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "duration_ms": 25741,
            "duration_api_ms": 24110,
            "num_turns": 6,
            "result": "Added retries to the HTTP client.\nTests pass.",
            "session_id": "5d4c0c1e",
            "total_cost_usd": 0.0842,
            # the last turn's numbers: modelUsage is the run's
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 1500,
                "cache_read_input_tokens": 30000,
                "output_tokens": 900,
            },
            "modelUsage": {
                "claude-3-5-haiku-20241022": {
                    "inputTokens": 800,
                    "outputTokens": 40,
                    "cacheReadInputTokens": 0,
                    "cacheCreationInputTokens": 0,
                    "webSearchRequests": 0,
                    "costUSD": 0.0008,
                },
                "claude-sonnet-4-5-20250929": {
                    "inputTokens": 60,
                    "outputTokens": 2100,
                    "cacheReadInputTokens": 120000,
                    "cacheCreationInputTokens": 9000,
                    "webSearchRequests": 0,
                    "costUSD": 0.0834,
                },
            },
            "permission_denials": [],
        }
    ),
]

CODEX = [
    '{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}',
    '{"type":"turn.started"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"Reading"}}',
    '{"type":"item.completed","item":{"id":"item_1","type":"command_execution",'
    '"command":"bash -lc ls","aggregated_output":"docs\\nsrc\\n","exit_code":0,'
    '"status":"completed"}}',
    '{"type":"item.completed","item":{"id":"item_3","type":"agent_message",'
    '"text":"Repo contains docs and src."}}',
    '{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,'
    '"output_tokens":122}}',
]

GEMINI_STREAM = [
    '{"type":"init","timestamp":"2026-12-07T03:00:00.000Z","session_id":"abc123",'
    '"model":"gemini-2.5-pro"}',
    '{"type":"message","timestamp":"2026-12-07T03:00:00.100Z","role":"user",'
    '"content":"add retries"}',
    '{"type":"tool_use","timestamp":"2026-12-07T03:00:01.000Z","tool_name":"read_file",'
    '"tool_id":"t1","parameters":{"path":"http.py"}}',
    '{"type":"tool_result","timestamp":"2026-12-07T03:00:01.200Z","tool_id":"t1",'
    '"status":"success","output":"..."}',
    '{"type":"message","timestamp":"2026-12-07T03:00:02.000Z","role":"assistant",'
    '"content":"Retries ","delta":true}',
    '{"type":"message","timestamp":"2026-12-07T03:00:02.100Z","role":"assistant",'
    '"content":"added.","delta":true}',
    '{"type":"result","timestamp":"2026-12-07T03:00:03.000Z","status":"success",'
    '"stats":{"total_tokens":25113,"input_tokens":24939,"output_tokens":20,"cached":21263,'
    '"input":3676,"duration_ms":3000,"tool_calls":1}}',
]

GEMINI_JSON = json.dumps(
    {
        "session_id": "abc123",
        "response": "Retries added.",
        "stats": {
            "models": {
                "gemini-2.5-pro": {
                    "api": {"totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 5053},
                    "tokens": {
                        "input": 3676,
                        "prompt": 24939,
                        "candidates": 20,
                        "total": 25113,
                        "cached": 21263,
                        "thoughts": 154,
                        "tool": 0,
                    },
                },
                "gemini-2.5-flash": {
                    "api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 800},
                    "tokens": {
                        "input": 900,
                        "prompt": 900,
                        "candidates": 30,
                        "total": 950,
                        "cached": 0,
                        "thoughts": 20,
                        "tool": 0,
                    },
                },
            },
            "tools": {"totalCalls": 1},
            "files": {"totalLinesAdded": 3, "totalLinesRemoved": 0},
        },
    },
    indent=2,
).splitlines()
