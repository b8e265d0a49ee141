"""The CLI's tables pad by terminal cells: task keys in CJK or with emoji line up."""

from __future__ import annotations

import datetime as dt

from orch.cli.render import _clip, attempts_table, display_width, pad, table
from orch.models import Attempt
from tests.support.records import an_attempt

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_display_width_counts_terminal_cells() -> None:
    assert display_width("retries") == 7
    assert display_width("修复登录") == 8  # wide: two cells each
    assert display_width("\uff46\uff55\uff4c\uff4c") == 8  # full-width Latin "full"
    assert display_width("fix-🚀") == 6  # a wide emoji
    assert display_width("cafe\u0301") == 4  # a combining accent takes no cell
    assert display_width("❤\ufe0f") == 1  # a variation selector takes none of its own
    assert pad("修复", 6) == "修复  "


def test_a_table_of_mixed_scripts_lines_up_on_screen() -> None:
    rows = [("KEY", "STATE"), ("修复登录", "queued"), ("fix-🚀", "running"), ("plain", "failed")]
    lines = table(rows).splitlines()
    # the second column starts at the same terminal cell on every line
    starts = {
        display_width(line[: line.index(state)])
        for line, (_, state) in zip(lines, rows, strict=True)
    }
    assert starts == {10}


def test_clip_cuts_by_cells() -> None:
    assert _clip("修复登录问题", 7) == "修复登…"
    assert display_width(_clip("修复登录问题", 7)) == 7
    assert _clip("short", 7) == "short"


def attempt(number: int, task_key: str) -> Attempt:
    return an_attempt(
        id=f"0000000{number}",
        task_key=task_key,
        repository="/r",
        base_commit=None,
        branch_name=f"orch/t-0000000{number}",
        worktree_path=None,
        payload_path=None,
        prompt="",
        created_at=NOW,
        updated_at=NOW,
    )


def test_orch_list_aligns_task_keys_in_any_script() -> None:
    keys = ["add-retries", "修复登录", "🚀-launch"]
    attempts = [attempt(i, key) for i, key in enumerate(keys)]
    lines = attempts_table(attempts, NOW).splitlines()
    columns = {display_width(line[: line.index("queued")]) for line in lines[1:]}
    assert len(columns) == 1 and columns == {display_width(lines[0][: lines[0].index("STATE")])}
