"""The dashboard end to end in real headless Chromium: the printed URL lets the browser
in (its token traded for a cookie), a submitted task is dispatched by the loop, shows up
on the page with every column inside its panel at 1280 px, is cancelled from the page
once the operator confirms, and the page shows the new state. The review views (a task's
comparison, an attempt's diff with a 2,000-line patch, its check runs) show what a
hostile repository and agent wrote as text, never as markup. Screenshots are kept under
``test-artifacts/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them; the
``browser`` fixture is tests/support/browser.py's).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from orch.models import DeliveryState
from orch.store import Store
from orch.store.outbox import SinkScope
from tests.support.attempts import dispatch
from tests.support.browser import ARTIFACTS, fresh, inside_the_review, live
from tests.support.cli import ORCH_BIN
from tests.support.dashboard import (
    HOSTILE_LOG,
    HOSTILE_NAME,
    HOSTILE_SUBJECT,
    commit_hostile_work,
    serve_process,
    serving,
)
from tests.support.history import seed
from tests.support.processes import Proc, wait_for
from tests.support.repos import commit_all


@pytest.fixture
def dashboard(tmp_path: Path, isolated_env: Path) -> Iterator[str]:
    with serving(tmp_path / "out") as url:
        yield url


def test_dispatch_see_cancel_and_see_the_state_change_in_chromium(
    browser: Any,
    dashboard: str,
    repo: Path,
    run_cli: Callable[..., Result],
) -> None:
    from selenium.webdriver.common.by import By

    submitted = run_cli("submit", "add-retries", "--prompt", "Add retries", cwd=repo)
    assert submitted.exit_code == 0, submitted.stderr
    base = dashboard.partition("?")[0]
    browser.get(base)  # without the token: refused, and the page says how to get in
    assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(dashboard)
    assert browser.current_url == base  # the token was traded for a cookie and left the URL
    token = dashboard.partition("?token=")[2]
    assert token and token not in browser.page_source

    def row() -> Any:
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.attempt")
        return next((r for r in rows if "add-retries" in r.text), None)

    wait_for(lambda: fresh(row), "the loop's attempt to show up on the page")
    attempt_id, state = fresh(
        lambda: (row().get_attribute("data-attempt"), row().get_attribute("data-state"))
    )
    assert state == "queued"
    markup = '<img src=x onerror="window.orchPwned=1">'
    assert run_cli("send", attempt_id, markup).exit_code == 0
    fresh(lambda: row().click())
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#detail [data-field=branch]"),
        "the attempt's details",
    )
    wait_for(
        lambda: markup in fresh(lambda: browser.find_element(By.ID, "detail").text), "the follow-up"
    )
    detail = fresh(lambda: browser.find_element(By.ID, "detail").text)
    assert f"orch/add-retries-{attempt_id}" in detail and "web=" in detail
    # data is shown as text, never run as markup
    assert browser.execute_script("return window.orchPwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "#detail img")
    queue_headers = wait_for(
        lambda: fresh(
            lambda: [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#queue-table th")]
        ),
        "the queue table",
    )
    assert queue_headers == ["#", "task", "state", "attempts", "workers", "attempt", "reason", ""]
    queued = fresh(
        lambda: [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#queue-table td")]
    )
    assert queued[1:6] == ["add-retries", "dispatched", "1", "", attempt_id]
    # the same task again waits (its attempt lives): its entry has a Drop button, which
    # takes it out of the queue as 'orch submit --drop' does
    again = run_cli("submit", "add-retries", "--prompt", "again", "--json", cwd=repo)
    entry = json.loads(again.stdout)["task"]["id"]
    button = f"#queue-table button.drop-task[data-task='{entry}']"
    wait_for(lambda: fresh(lambda: browser.find_elements(By.CSS_SELECTOR, button)), "Drop")
    fresh(lambda: browser.find_element(By.CSS_SELECTOR, button).click())
    cells = f"#queue-table tr[data-task='{entry}'] td"
    wait_for(
        lambda: fresh(
            lambda: (
                [td.text for td in browser.find_elements(By.CSS_SELECTOR, cells)][2:3] == ["failed"]
            )
        ),
        "the dropped entry to show as failed",
    )
    assert not browser.find_elements(By.CSS_SELECTOR, button)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-before-cancel.png"))

    # every column, age and heartbeat included, lies inside the attempts panel
    overflow = browser.execute_script(
        """const panel = document.querySelector('#attempts').closest('section');
        const right = panel.getBoundingClientRect().right;
        return [...document.querySelectorAll('#attempts th, #attempts td')]
          .filter(c => c.getBoundingClientRect().right > right + 0.5)
          .map(c => c.textContent);"""
    )
    assert overflow == []
    headers = fresh(
        lambda: [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#attempts th")]
    )
    assert headers[-2:] == ["age", "heartbeat"]

    fresh(lambda: browser.find_element(By.ID, "cancel").click())
    browser.switch_to.alert.dismiss()  # a stray click: nothing happens
    time.sleep(0.5)
    assert json.loads(run_cli("show", attempt_id, "--json").stdout)["attempt"]["state"] == "queued"
    fresh(lambda: browser.find_element(By.ID, "cancel").click())
    assert attempt_id in browser.switch_to.alert.text
    browser.switch_to.alert.accept()
    wait_for(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, f'tr.attempt[data-attempt="{attempt_id}"][data-state="cancelled"]'
        ),
        "the page to show the attempt cancelled",
    )
    wait_for(
        lambda: "cancel: done" in fresh(lambda: browser.find_element(By.ID, "flash").text),
        "the page to confirm the cancel",
    )
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    shown = run_cli("show", attempt_id, "--json")
    assert '"state": "cancelled"' in shown.stdout
    assert "cancelled from the dashboard" in shown.stdout


def cancel_in_a_process(attempt_id: str, out_dir: Path) -> None:
    assert Proc([ORCH_BIN, "cancel", attempt_id], out_dir).wait() == 0


def test_a_cli_change_reaches_the_open_page_through_the_stream_also_after_it_was_cut(
    browser: Any,
    tmp_path: Path,
    store: Store,
    repo: Path,
    run_cli: Callable[..., Result],
) -> None:
    """On both stores: the page learns of an ``orch cancel`` made by another process from
    its change stream, not from polling (none ran: the 2 s poll runs only while the stream
    is down), and of an event delivery that failed for good, listed under "needs
    attention"; the server is stopped (its streams end) and started again on the same port
    and token, the page's stream reconnects by itself, and the next change arrives the
    same way."""
    from selenium.webdriver.common.by import By

    first, second = (dispatch(run_cli, repo, key)["id"] for key in ("live-one", "live-two"))
    server, url = serve_process(tmp_path / "serve-1")
    try:
        browser.get(url)

        def state_of(attempt_id: str, state: str) -> bool:
            selector = f'tr.attempt[data-attempt="{attempt_id}"][data-state="{state}"]'
            return bool(browser.find_elements(By.CSS_SELECTOR, selector))

        wait_for(lambda: live(browser)["state"] == "open", "the page's change stream to open")
        wait_for(lambda: fresh(lambda: state_of(first, "queued")), "the attempts on the page")
        before = live(browser)
        cancel_in_a_process(first, tmp_path / "cancel-1")
        wait_for(lambda: fresh(lambda: state_of(first, "cancelled")), "the cancel on the page")
        after = live(browser)
        assert after["polls"] == before["polls"]  # no poll ran: the stream told the page
        assert after["events"] > before["events"] and after["last"]["version"] > 0

        # what a deliverer does with a receiver that refuses for good
        store.plan(SinkScope("hook-dead", None, None, None))
        claimed = store.claim_delivery("hook-dead", 30)
        assert claimed is not None
        store.end_delivery(claimed, DeliveryState.FAILED, "HTTP 404")
        listed = wait_for(
            lambda: fresh(
                lambda: [
                    li.text
                    for li in browser.find_elements(By.CSS_SELECTOR, "#attention li.delivery")
                ]
            ),
            "the failed delivery under needs attention",
        )
        assert f"event {claimed.event.id}" in listed[0] and "hook-dead" in listed[0]
        assert "HTTP 404" in listed[0] and f"orch events --retry {claimed.event.id}" in listed[0]
        after = live(browser)
        assert after["polls"] == before["polls"]
        # its Retry button does what 'orch events --retry' does: pending, with fresh tries
        retry = f'#attention li.delivery button[data-event="{claimed.event.id}"]'
        fresh(lambda: browser.find_element(By.CSS_SELECTOR, retry).click())
        wait_for(
            lambda: not fresh(lambda: browser.find_elements(By.CSS_SELECTOR, "#attention li")),
            "the retried delivery to leave needs attention",
        )
        [again] = [
            d
            for d in store.deliveries([DeliveryState.PENDING])
            if (d.sink, d.event_id) == ("hook-dead", claimed.event.id)
        ]
        assert again.tries == 0 and store.deliveries([DeliveryState.FAILED]) == []

        # cut: the server stops, ending its streams; it comes back on the same port and token
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        server.signal(signal.SIGTERM)
        server.wait()
        wait_for(lambda: live(browser)["state"] != "open", "the page to see its stream cut")
        server, _ = serve_process(tmp_path / "serve-2", port=parts.port or 0, token=token)
        wait_for(
            lambda: live(browser)["opens"] > after["opens"] and live(browser)["state"] == "open",
            "the page's stream to reconnect by itself",
        )
        again = live(browser)
        cancel_in_a_process(second, tmp_path / "cancel-2")
        wait_for(lambda: fresh(lambda: state_of(second, "cancelled")), "the second cancel")
        assert live(browser)["polls"] == again["polls"]
        assert live(browser)["events"] > again["events"]
    finally:
        Proc([ORCH_BIN, "serve", "--stop"], tmp_path / "stop").wait()
        if server.popen.poll() is None:
            server.signal(signal.SIGKILL)
        server.wait()


def test_the_review_views_show_comparison_diff_and_checks_as_text(
    browser: Any,
    dashboard: str,
    repo: Path,
    run_cli: Callable[..., Result],
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    (repo / "orch.toml").write_text(
        f"[review]\ncheck = \"printf '%s\\\\n' checking '{HOSTILE_LOG}'; exit 3\"\n"
    )
    commit_all(repo, "a check that fails")
    key = "review-views"
    first, second = dispatch(run_cli, repo, key), dispatch(run_cli, repo, key)
    commit_hostile_work(Path(first["worktree_path"]), long_lines=2000)
    with open(Path(second["worktree_path"]) / "src" / "d0" / "f0.txt", "a") as fh:
        fh.write("the second attempt's line\n")
    commit_all(Path(second["worktree_path"]), "the second attempt")
    assert run_cli("check", first["id"], cwd=repo).exit_code == 14

    browser.get(dashboard)
    base = dashboard.partition("?")[0]
    ARTIFACTS.mkdir(exist_ok=True)

    def go(fragment: str) -> None:
        browser.execute_script("location.hash = arguments[0]", fragment)

    def shown(view: str, state: str = "ready") -> Any:
        try:
            found = wait_for(
                lambda: browser.find_elements(
                    By.CSS_SELECTOR, f'#review[data-view="{view}"][data-state="{state}"]'
                ),
                f"the {view} view ({state})",
            )
        except AssertionError as exc:
            where = browser.execute_script(
                "const r = document.getElementById('review');"
                "return [location.hash, r.dataset.view, r.dataset.state, r.textContent]"
            )
            raise AssertionError(f"{exc}; the page showed {where}") from None
        return found[0]

    def text(selector: str) -> str:
        return str(browser.find_element(By.CSS_SELECTOR, selector).text)

    # a task's comparison: one row per attempt, the check's result, the collision
    browser.get(f"{base}#compare/{key}")
    shown("compare")
    rows = browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")
    assert [r.get_attribute("data-attempt") for r in rows] == [first["id"], second["id"]]
    assert "failed (exit 3)" in rows[0].text and rows[1].text.endswith("-")
    cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[6:9] == ["1", "3", "+2003/-0"]  # ahead, files, lines
    assert text("#collisions tbody") == f"src/d0/f0.txt {first['id']}, {second['id']}"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-compare.png"))

    # a row opens its attempt's diff: commits and files, names and subjects as text
    rows[0].find_element(By.TAG_NAME, "td").click()  # not its check cell: that opens checks
    shown("diff")
    assert text("#diff-commits tbody td:nth-child(2)") == HOSTILE_SUBJECT
    files = browser.find_elements(By.CSS_SELECTOR, "#diff-files tbody tr")
    by_path = {f.get_attribute("data-path"): f for f in files}
    assert set(by_path) == {HOSTILE_NAME, "src/d0/f0.txt", "src/long.py"}
    assert by_path["src/long.py"].text.split()[:4] == ["added", "src/long.py", "+2000", "-0"]
    by_path["src/long.py"].click()
    patch = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, '#patch[data-state="ready"]'), "the patch"
    )[0]
    added = patch.find_elements(By.CSS_SELECTOR, "tr.add")
    assert len(added) == 2000
    assert added[-1].find_elements(By.CSS_SELECTOR, "td.no")[1].text == "2000"
    # coloured by the page's CSS, never by terminal escape codes
    assert "\x1b[" not in patch.text
    colours = browser.execute_script(
        """const bg = s => getComputedStyle(document.querySelector(s)).backgroundColor;
        return [bg('#patch tr.add td.code'), bg('#patch tr.hunk td.code'),
                bg('#patch tr.meta td.code')];"""
    )
    assert len(set(colours)) == 3 and "rgba(0, 0, 0, 0)" not in colours, colours
    # a long patch scrolls in its own box; the page itself never outgrows the window
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    browser.execute_script("document.querySelector('#review').scrollIntoView()")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-diff.png"))
    by_path[HOSTILE_NAME].click()
    wait_for(
        lambda: f"+++ b/{HOSTILE_NAME}" in text("#patch") and "bold?" in text("#patch"),
        "the patch of the file named with markup",
    )
    assert "+<script>window.orchPwned=1</script>" in text("#patch")

    # the check view, opened from the attempt's detail panel
    row = f'tr.attempt[data-attempt="{first["id"]}"]'
    fresh(lambda: browser.find_element(By.CSS_SELECTOR, row).click())
    wait_for(lambda: browser.find_elements(By.ID, "open-checks"), "the detail panel")
    fresh(lambda: browser.find_element(By.ID, "open-checks").click())
    shown("checks")
    runs = browser.find_elements(By.CSS_SELECTOR, "#review .check")
    assert len(runs) == 1 and "failed (exit 3)" in runs[0].text
    assert text('#review .check dd[data-field="exit code"]') == "3"
    assert text('#review .check dd[data-field="timed out"]') == "no"
    assert text("#review .check pre.log") == f"checking\n{HOSTILE_LOG}"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-checks.png"))

    # nothing the repository or the agent wrote was run or parsed as markup
    assert browser.execute_script("return window.orchPwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#review img, #review script, #review b") == []
    with pytest.raises(NoAlertPresentException):  # an alert(1) would be open
        _ = browser.switch_to.alert.text

    # a bad id is one clear line in the view, from the server's 404
    go("diff/deadbeef")
    shown("diff", "error")
    assert text("#review-error").startswith("no attempt 'deadbeef'")
    go("compare/no-such-task")
    shown("compare", "error")
    assert text("#review-error").startswith("no attempts of task 'no-such-task'")


def test_the_usage_agents_reported_shows_in_the_comparison_and_the_detail(
    browser: Any,
    dashboard: str,
    repo: Path,
    run_cli: Callable[..., Result],
) -> None:
    """A real ``orch work`` run whose agent (a script) reports its usage on an
    ``orch-usage:`` line: the task's comparison grows tokens and cost columns, and the
    attempt's panel shows its usage and its task's; an attempt that reported nothing
    shows '-', never 0."""
    import subprocess

    from selenium.webdriver.common.by import By

    key = "usage-views"
    reporting, silent = dispatch(run_cli, repo, key), dispatch(run_cli, repo, key)
    line = 'orch-usage: {"input_tokens": 12000, "output_tokens": 345, "cached_tokens": 9000, '
    line += '"cost_usd": 0.125, "model": "stand-in-model"}'
    for attempt, script in ((reporting, f"echo '{line}'"), (silent, "echo nothing to report")):
        worker = subprocess.run(
            [ORCH_BIN, "work", "--once", "--attempt", attempt["id"], "--", "sh", "-c", script],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr

    browser.get(dashboard)  # the printed URL's token becomes the page's cookie
    browser.get(f"{dashboard.partition('?')[0]}#compare/{key}")
    ready = '#review[data-view="compare"][data-state="ready"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ready), "the comparison")
    headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#compare-table th")]
    assert headers[-3:] == ["landed", "tokens", "cost"]
    # every column, tokens and cost beside the landed one, inside the review panel
    assert inside_the_review(browser)
    rows = {
        r.get_attribute("data-attempt"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")
    }
    assert rows[reporting["id"]][-2:] == ["12,000 in (9,000 cached) / 345 out", "$0.1250"]
    assert rows[silent["id"]][-2:] == ["-", "-"]
    summary = browser.find_element(By.CSS_SELECTOR, "#review p.summary").text
    assert "reported 12,000 in (9,000 cached) / 345 out, $0.1250, stand-in-model" in summary

    row = f'tr.attempt[data-attempt="{reporting["id"]}"]'
    fresh(lambda: browser.find_element(By.CSS_SELECTOR, row).click())
    usage = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, '#detail dd[data-field="usage"]'),
        "the detail panel",
    )[0]
    assert usage.text == "12,000 in (9,000 cached) / 345 out, $0.1250, stand-in-model"
    task = browser.find_element(By.CSS_SELECTOR, '#detail dd[data-field="task usage"]').text
    assert task == usage.text  # the silent attempt adds nothing, not zeros
    browser.save_screenshot(str(ARTIFACTS / "dashboard-usage.png"))


def test_the_land_button_queues_a_land_that_the_loop_lands(
    browser: Any,
    dashboard: str,
    repo: Path,
    run_cli: Callable[..., Result],
    run_orch: Callable[..., Any],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support.landing import attempt_with_commits, rev

    attempt = attempt_with_commits(run_cli, run_orch, repo, "land-me")
    old = rev(repo, "main")
    browser.get(dashboard)
    row = f'tr.attempt[data-attempt="{attempt["id"]}"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), "the attempt on the page")
    fresh(lambda: browser.find_element(By.CSS_SELECTOR, row).click())
    wait_for(lambda: browser.find_elements(By.ID, "land"), "the Land button")
    assert fresh(lambda: browser.find_element(By.ID, "land").is_enabled())
    fresh(lambda: Select(browser.find_element(By.ID, "land-strategy")).select_by_value("rebase"))
    # the page re-renders every 2 s: the choice must survive it
    time.sleep(2.5)
    assert (
        fresh(
            lambda: Select(browser.find_element(By.ID, "land-strategy")).first_selected_option.text
        )
        == "rebase"
    )
    fresh(lambda: browser.find_element(By.ID, "land").click())
    wait_for(
        lambda: "land: queued" in fresh(lambda: browser.find_element(By.ID, "flash").text),
        "the page to confirm the land was queued",
    )
    # the loop of orch serve lands it; the land queue panel shows the result
    done = f'#lands-table tr[data-attempt="{attempt["id"]}"][data-state="done"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, done), "the land to show as done")
    landed = fresh(lambda: browser.find_element(By.CSS_SELECTOR, done).text)
    assert "rebase" in landed and f"landed as {rev(repo, 'main')[:12]}" in landed
    assert rev(repo, "main~2") == old  # rebase: the agent's two commits, replayed
    wait_for(
        lambda: not fresh(lambda: browser.find_element(By.ID, "land").is_enabled()),
        "the Land button to be disabled once it landed",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-land.png"))


def test_counts_past_the_cap_say_at_least(
    browser: Any, tmp_path: Path, isolated_env: Path, store: Store
) -> None:
    """On both stores, with 1,800 ended attempts: the counts per state and the line under
    the attempts stop at 1,000 (the server counts no further, so the page costs the same
    with a year of history) and say so, "1,000+"; the counts below the cap are exact."""
    from selenium.webdriver.common.by import By

    from orch.serve import runtime

    seed(store, 1800)  # 1,080 succeeded, 450 failed, 180 cancelled, 90 timed out
    with serving(tmp_path / "serve") as url:
        snapshot = runtime.serve_dir(isolated_env) / "status.json"
        wait_for(snapshot.exists, "the loop's first snapshot")
        browser.get(url)

        def counts() -> dict[str, str]:
            found = browser.find_elements(By.CSS_SELECTOR, "#counts [data-count]")
            return {c.get_attribute("data-count"): c.text for c in found}

        shown = wait_for(lambda: fresh(counts), "the counts per state")
        assert shown == {
            "succeeded": "succeeded 1,000+",
            "failed": "failed 450",
            "cancelled": "cancelled 180",
            "timed_out": "timed_out 90",
        }
        more = fresh(lambda: browser.find_element(By.ID, "more").text)
        assert more == "1,000+ older attempts not shown: orch list --before h0000049"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-capped-counts.png"))
