"""What ``orch dispatch``, ``orch list`` and ``orch show`` print, as text and as JSON."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.attempts import attempts_of, dispatch, show
from tests.support.cli import RunCli, assert_failed_cleanly, json_out
from tests.support.history import history_id, seed
from tests.support.repos import head
from tests.support.store import new_attempt

RunOrch = Callable[..., Any]
ATTEMPT_ID = re.compile(r"^[0-9a-f]{8}$")
UNICODE_KEY = "Fix lógin \u2013 ünïcode 修复"  # with an en dash


def test_dispatch_prints_the_attempt_id(repo: Path, run_cli: RunCli, store_url: str) -> None:
    result = run_cli("dispatch", "--prompt", "p", "add-retries", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    attempt_id = result.stdout.strip()
    assert ATTEMPT_ID.match(attempt_id)
    [attempt] = attempts_of(run_cli, repo)
    assert attempt["id"] == attempt_id


def test_dispatch_json_is_a_versioned_envelope(repo: Path, run_cli: RunCli, store_url: str) -> None:
    data = json_out(run_cli("dispatch", "add-retries", "--prompt", "p", "--json", cwd=repo))
    assert set(data) == {"version", "attempt", "warnings"}
    attempt = data["attempt"]
    assert ATTEMPT_ID.match(attempt["id"])
    assert attempt["base_commit"] == head(repo)
    for stamp in ("created_at", "updated_at"):
        assert dt.datetime.fromisoformat(attempt[stamp]).tzinfo is not None


def test_list_json_newest_first_with_filters(repo: Path, run_cli: RunCli, store_url: str) -> None:
    older = dispatch(run_cli, repo, "older")
    newer = dispatch(run_cli, repo, "newer")
    assert attempts_of(run_cli, repo) == [newer, older]

    def ids(*args: str) -> list[str]:
        attempts = json_out(run_cli("list", "--json", *args, cwd=repo))["attempts"]
        return [a["id"] for a in attempts if a["repository"] == str(repo.resolve())]

    assert ids("--task", "older") == [older["id"]]
    assert ids("--state", "queued") == [newer["id"], older["id"]]
    assert ids("--state", "failed", "--state", "succeeded") == []
    assert ids("--limit", "1") == [newer["id"]]


def test_list_text_table(repo: Path, run_cli: RunCli, store_url: str) -> None:
    attempt = dispatch(run_cli, repo, UNICODE_KEY)
    result = run_cli("list", cwd=repo)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "TASK", "#", "STATE", "WORKSPACE", "BRANCH", "AHEAD", "FILES", "+/-", "AGE"
    ]  # fmt: skip
    [row] = [line for line in lines if line.startswith(attempt["id"])]
    assert UNICODE_KEY in row
    assert row.split()[-8:-4] == ["1", "queued", "ready", attempt["branch_name"]]
    assert row.split()[-4:-1] == ["-", "-", "-"]  # nothing recorded before a worker ran


def test_list_of_an_empty_store(run_cli: RunCli, tmp_path: Path) -> None:
    # the default embedded store under this test's own ORCH_HOME, created on first use
    result = run_cli("list", cwd=tmp_path)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "no attempts\n", "")
    assert json_out(run_cli("list", "--json", cwd=tmp_path)) == {
        "version": 1,
        "attempts": [],
        "checks": {},
        "usage": {},
        "task_usage": {},
    }


def _seeded(store_url: str, isolated_env: Path, task_key: str, count: int) -> list[str]:
    """``count`` attempts of ``task_key`` created at one instant (ties broken by id), the
    ids in the order orch lists them."""
    from orch.store import open_store

    instant = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with open_store(store_url, isolated_env / "locks", clock=lambda: instant) as store:
        ids = [
            store.create_attempt(new_attempt("/repos/paged", task_key), "seed").id
            for _ in range(count)
        ]
    return sorted(ids)


def test_list_shows_a_page_and_says_how_many_more(
    run_cli: RunCli, store_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    key = "paged-" + secrets.token_hex(3)
    ids = _seeded(store_url, isolated_env, key, 103)
    table = run_cli("list", "--task", key, cwd=tmp_path)
    assert table.exit_code == 0, table.output
    rows = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert rows == ids[:100]
    assert table.stderr == f"3 older attempts not shown: orch list --before {ids[99]} (or --all)\n"
    everything = run_cli("list", "--task", key, "--all", cwd=tmp_path)
    assert [line.split()[0] for line in everything.stdout.splitlines()[1:]] == ids
    assert everything.stderr == ""
    # JSON is whole unless asked for a page: a script must not act on a list cut short
    assert [a["id"] for a in json_out(run_cli("list", "--task", key, "--json"))["attempts"]] == ids


def test_list_pages_through_ties_without_a_gap_or_a_repeat(
    run_cli: RunCli, store_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    key = "ties-" + secrets.token_hex(3)
    ids = _seeded(store_url, isolated_env, key, 7)
    seen: list[str] = []
    before: list[str] = []
    while True:
        page = json_out(run_cli("list", "--task", key, "--limit", "3", *before, "--json"))
        seen += [a["id"] for a in page["attempts"]]
        if "more" not in page:
            break
        assert page["more"] == len(ids) - len(seen)
        before = ["--before", seen[-1]]
    assert seen == ids


def test_list_says_at_least_when_the_rest_is_past_the_count_cap(
    run_cli: RunCli, store_url: str, isolated_env: Path, tmp_path: Path
) -> None:
    """The count of the rest stops at 1,000 (it would cost more the longer the history):
    past it, the table says "1,000+" and the JSON says ``more_capped``."""
    from orch.store import open_store

    with open_store(store_url, isolated_env / "locks") as store:
        seed(store, 1200)  # h0000000 is the newest
    table = run_cli("list", cwd=tmp_path)
    assert table.exit_code == 0, table.output
    assert table.stderr == (
        "1,000+ older attempts not shown: orch list --before h0000099 (or --all)\n"
    )
    page = json_out(run_cli("list", "--limit", "5", "--json"))
    assert (page["more"], page["more_capped"]) == (1000, True)
    # near the end the count is exact
    tail = json_out(run_cli("list", "--limit", "50", "--before", history_id(1099), "--json"))
    assert [a["id"] for a in tail["attempts"]] == [history_id(n) for n in range(1100, 1150)]
    assert tail["more"] == 50 and "more_capped" not in tail


def test_list_paging_refuses_bad_input(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    both = assert_failed_cleanly(run_cli("list", "--all", "--limit", "3", cwd=tmp_path), 2)
    assert "--all and --limit" in both
    unknown = assert_failed_cleanly(run_cli("list", "--before", "ffffffff", cwd=tmp_path), 8)
    assert "no attempt 'ffffffff'" in unknown


def test_show_json_has_attempt_and_events(repo: Path, run_cli: RunCli, store_url: str) -> None:
    attempt = dispatch(run_cli, repo, "add-retries")
    data = show(run_cli, attempt["id"], cwd=repo)
    assert {"version", "attempt", "events"} <= set(data)
    assert data["attempt"] == attempt
    created, leased, provisioned = data["events"]
    kinds = (created["kind"], leased["kind"], provisioned["kind"])
    assert kinds == ("created", "ports_leased", "provisioned")
    for event in (created, leased, provisioned):
        assert event["attempt_id"] == attempt["id"]
        assert "pid " in event["actor"]
        assert dt.datetime.fromisoformat(event["created_at"]).tzinfo is not None
    assert provisioned["detail"]["workspace_status"] == "ready"
    assert provisioned["detail"]["payload_path"] == attempt["payload_path"]


def test_show_text(repo: Path, run_cli: RunCli, store_url: str) -> None:
    attempt = dispatch(run_cli, repo, "add-retries", "--prompt", "Add retries\nmore detail")
    result = run_cli("show", attempt["id"], cwd=repo)
    assert result.exit_code == 0, result.output
    fields = {}
    for line in result.stdout.split("\n\nevents:\n")[0].splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    for key in (
        "task_key",
        "state",
        "workspace_status",
        "repository",
        "base_ref",
        "base_commit",
        "branch_name",
        "worktree_path",
    ):
        assert fields[key] == str(attempt[key]), key
    assert fields["attempt"] == attempt["id"]
    assert fields["attempt_number"] == "1"
    assert fields["payload"] == attempt["payload_path"]
    assert fields["worker"] == "(any)"
    assert fields["prompt"] == "Add retries"  # the first line only
    events = result.stdout.split("\n\nevents:\n")[1].splitlines()
    assert [line.split()[1] for line in events] == ["created", "ports_leased", "provisioned"]


def test_show_text_of_a_failed_attempt_gives_the_reason(
    repo: Path, run_cli: RunCli, store_url: str
) -> None:
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    assert run_cli("dispatch", "--prompt", "p", "t", cwd=repo).exit_code == 7
    [attempt] = attempts_of(run_cli, repo)
    result = run_cli("show", attempt["id"], cwd=repo)
    assert result.exit_code == 0, result.output
    assert re.search(r"^reason +git hook run failed: hook says no$", result.stdout, re.M)
    assert re.search(r"^state +failed$", result.stdout, re.M)
    assert re.search(r"^payload +-$", result.stdout, re.M)


def test_list_and_show_through_the_entry_point(
    repo: Path, run_cli: RunCli, run_orch: RunOrch, store_url: str
) -> None:
    attempt = dispatch(run_cli, repo, "add-retries")
    listed = run_orch("list", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert attempt in json.loads(listed.stdout)["attempts"]
    shown = run_orch("show", attempt["payload_path"], "--json", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["attempt"] == attempt


# -- show failing --------------------------------------------------------------------------


def test_show_unknown_attempt(repo: Path, run_cli: RunCli, store_url: str) -> None:
    line = assert_failed_cleanly(run_cli("show", "ffffffff", cwd=repo), 8)
    assert line == "Error: no attempt 'ffffffff' in the store"


def test_show_unknown_attempt_through_the_entry_point(
    repo: Path, run_orch: RunOrch, store_url: str
) -> None:
    line = assert_failed_cleanly(run_orch("show", "nope", cwd=repo), 8)
    assert line == "Error: no attempt 'nope' in the store"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no payload at {path}"),
        (
            "{not json",
            "corrupt payload {path}: not JSON (Expecting property name enclosed in "
            "double quotes at line 1)",
        ),
        ('{"attempt_id": "deadbeef"}', "corrupt payload {path}: no integer schema_version"),
        (
            '{"schema_version": 99}',
            "payload {path} has schema version 99; this orch reads up to 1: upgrade orch",
        ),
    ],
    ids=["missing", "not-json", "no-version", "future-version"],
)
def test_show_unreadable_payload(
    run_cli: RunCli, store_url: str, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "payload.json"
    if content is not None:
        path.write_text(content)
    line = assert_failed_cleanly(run_cli("show", str(path), cwd=tmp_path), 9)
    assert line == "Error: " + message.format(path=path)


def test_show_payload_that_fails_the_schema(
    repo: Path, run_cli: RunCli, store_url: str, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "t")
    payload = json.loads(Path(attempt["payload_path"]).read_text())
    del payload["branch_name"]
    (tmp_path / "p.json").write_text(json.dumps(payload))
    line = assert_failed_cleanly(run_cli("show", str(tmp_path / "p.json"), cwd=tmp_path), 9)
    assert line.startswith(f"Error: invalid payload {tmp_path / 'p.json'}: ")
    assert "'branch_name' is a required property" in line


def test_show_payload_of_an_attempt_in_another_store(
    repo: Path, run_cli: RunCli, store_url: str, tmp_path: Path
) -> None:
    attempt = dispatch(run_cli, repo, "t")
    payload = json.loads(Path(attempt["payload_path"]).read_text())
    payload["attempt_id"] = "0badcafe"
    (tmp_path / "p.json").write_text(json.dumps(payload))
    line = assert_failed_cleanly(run_cli("show", str(tmp_path / "p.json"), cwd=tmp_path), 8)
    assert line == (
        f"Error: the payload {tmp_path / 'p.json'} names attempt 0badcafe, which is not in "
        "this store"
    )
