"""The dashboard's history in real headless Chromium, on both stores: a landed attempt
shows where it landed (its row, its detail panel, its task's comparison), and a long
history is reached by paging to older attempts and by filters on state and task key,
read on the server a page at a time; a change that arrives while the reader is on an
older page re-reads that page and never takes them back to the newest. Screenshots are
kept under ``test-artifacts/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from sqlalchemy import update

from orch.store import Store
from orch.store.tables import attempts
from tests.support.attempts import dispatch
from tests.support.browser import click_until, fresh, inside_the_review, live, screenshot
from tests.support.cli import ORCH_BIN
from tests.support.dashboard import serving
from tests.support.history import history_id, seed
from tests.support.landing import attempt_with_commits, land
from tests.support.processes import Proc, wait_for


def field(browser: Any, name: str) -> str:
    from selenium.webdriver.common.by import By

    selector = f'#detail dd[data-field="{name}"]'
    return str(fresh(lambda: browser.find_element(By.CSS_SELECTOR, selector).text))


def test_a_landed_attempt_shows_where_it_landed(
    browser: Any,
    tmp_path: Path,
    store: Store,
    repo: Path,
    run_cli: Callable[..., Result],
    run_orch: Callable[..., Any],
) -> None:
    from selenium.webdriver.common.by import By

    key = "land-shown"
    landed = attempt_with_commits(run_cli, run_orch, repo, key)
    other = dispatch(run_cli, repo, key)
    assert land(run_cli, repo, landed["id"], "--strategy", "merge").exit_code == 0
    shown = json.loads(run_cli("show", landed["id"], "--json").stdout)["attempt"]
    assert shown["landed_into"] == "main" and shown["landed_strategy"] == "merge"

    with serving(tmp_path / "serve") as url:
        browser.get(url)
        row = f'tr.attempt[data-attempt="{landed["id"]}"]'
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, row), "the attempt's row")
        # landing is no state: the row says it beside the state, as orch list does
        assert (
            fresh(lambda: browser.find_element(By.CSS_SELECTOR, row).get_attribute("data-landed"))
            == "1"
        )
        state = fresh(lambda: browser.find_element(By.CSS_SELECTOR, f"{row} td.wrap").text)
        assert " ".join(state.split()) == "succeeded (landed)"
        plain = f'tr.attempt[data-attempt="{other["id"]}"] td.wrap'
        assert fresh(lambda: browser.find_element(By.CSS_SELECTOR, plain).text) == "queued"

        click_until(
            lambda: browser.find_element(By.CSS_SELECTOR, row).click(),
            lambda: browser.find_elements(
                By.CSS_SELECTOR, '#detail dd[data-field="landed commit"]'
            ),
            "the detail panel's landed fields",
        )
        assert field(browser, "landed commit") == shown["landed_commit"]
        assert field(browser, "landed into") == "main"
        assert field(browser, "landed strategy") == "merge"
        assert field(browser, "landed by") == shown["landed_by"]
        assert field(browser, "landed at").startswith(shown["landed_at"])
        screenshot(browser, "dashboard-landed.png")

        click_until(
            lambda: browser.find_element(
                By.CSS_SELECTOR, f'tr.attempt[data-attempt="{other["id"]}"]'
            ).click(),
            lambda: field(browser, "attempt") == other["id"],
            "the other attempt's panel",
        )
        assert field(browser, "landed") == "no"

        browser.execute_script("location.hash = arguments[0]", f"compare/{key}")
        ready = '#review[data-view="compare"][data-state="ready"]'
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ready), "the comparison")
        headers = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#compare-table th")]
        assert headers[-1] == "landed"
        cells = {
            r.get_attribute("data-attempt"): r.find_elements(By.TAG_NAME, "td")[-1]
            for r in browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")
        }
        commit = shown["landed_commit"]
        assert cells[landed["id"]].text == f"{commit[:12]} into main"
        assert cells[landed["id"]].get_attribute("title") == (
            f"{commit} into main (merge) by {shown['landed_by']} at {shown['landed_at']}"
        )
        assert cells[other["id"]].text == "-"
        assert inside_the_review(browser)
        screenshot(browser, "dashboard-compare-landed.png")


def test_paging_and_filters_reach_the_history_and_keep_their_place(
    browser: Any, tmp_path: Path, store: Store
) -> None:
    """120 ended attempts, two of them made live again: one on the second page (cancelled
    while the reader looks at that page) and one on the third (found by its state)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    seed(store, 120)
    on_page_two, on_page_three = history_id(75), history_id(110)
    with store.engine.begin() as conn:
        conn.execute(
            update(attempts)
            .where(attempts.c.id.in_([on_page_two, on_page_three]))
            .values(state="running", workspace_status="ready", finished_at=None, exit_code=None)
        )

    def ids() -> list[str]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#attempts tr.attempt")
        return [r.get_attribute("data-attempt") for r in rows]

    def shows(expected: list[str], what: str) -> None:
        ready = '#attempts[data-state="ready"]'
        wait_for(
            lambda: browser.find_elements(By.CSS_SELECTOR, ready) and fresh(ids) == expected,
            what,
        )

    def text(element_id: str) -> str:
        return str(fresh(lambda: browser.find_element(By.ID, element_id).text))

    def click(element_id: str) -> None:
        fresh(lambda: browser.find_element(By.ID, element_id).click())

    def enabled(element_id: str) -> bool:
        return bool(fresh(lambda: browser.find_element(By.ID, element_id).is_enabled()))

    newest = [history_id(n) for n in range(50)]
    second = [history_id(n) for n in range(50, 100)]
    third = [history_id(n) for n in range(100, 120)]
    with serving(tmp_path / "serve") as url:
        browser.get(url)
        page_url = url.split("?")[0]  # the printed URL's token is traded for a cookie
        wait_for(lambda: live(browser)["state"] == "open", "the page's change stream")
        shows(newest, "the newest page")
        assert text("page-where") == "newest" and browser.current_url == page_url
        assert not enabled("page-newer") and not enabled("page-newest")
        click("page-older")
        shows(second, "the second page")
        assert text("page-where") == "page 2"
        assert browser.current_url == f"{page_url}?before={history_id(49)}"
        assert text("more") == f"20 older attempts not shown: orch list --before {history_id(99)}"
        click("page-older")
        shows(third, "the third page")
        assert not enabled("page-older") and text("more") == ""
        click("page-newer")
        shows(second, "the second page again")

        # a change on the page being read: that page is read again, the reader stays
        before = live(browser)
        assert Proc([ORCH_BIN, "cancel", on_page_two], tmp_path / "cancel").wait() == 0
        cancelled = f'tr.attempt[data-attempt="{on_page_two}"][data-state="cancelled"]'
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, cancelled), "the cancel")
        assert fresh(ids) == second and text("page-where") == "page 2"
        assert live(browser)["events"] > before["events"]
        assert live(browser)["polls"] == before["polls"]  # the stream told the page
        screenshot(browser, "dashboard-older-page.png")
        click("page-newest")
        shows(newest, "the newest page again")

        # a live attempt older than the newest page is found by its state
        fresh(
            lambda: Select(browser.find_element(By.ID, "filter-state")).select_by_value("running")
        )
        shows([on_page_three], "the running attempt of the third page")
        assert text("page-where") == "newest, state running" and text("more") == ""
        screenshot(browser, "dashboard-filter-state.png")

        # the address keeps the page: a reload shows it again, Back the one before
        def state_filter() -> str:
            select = Select(browser.find_element(By.ID, "filter-state"))
            return str(select.first_selected_option.get_attribute("value"))

        assert browser.current_url == f"{page_url}?state=running"
        browser.refresh()
        shows([on_page_three], "the filtered page after a reload")
        assert fresh(state_filter) == "running" and text("page-where") == "newest, state running"
        browser.back()
        shows(newest, "the unfiltered newest page, by Back")
        assert fresh(state_filter) == "" and text("page-where") == "newest"
        browser.forward()
        shows([on_page_three], "the filtered page, by Forward")
        assert fresh(state_filter) == "running"

        # a task key (matched exactly), with the state filter lifted
        fresh(lambda: Select(browser.find_element(By.ID, "filter-state")).select_by_value(""))
        box = fresh(lambda: browser.find_element(By.ID, "filter-task"))
        box.send_keys("history-30", Keys.ENTER)
        shows([history_id(n) for n in (90, 91, 92)], "the attempts of task history-30")
        assert text("page-where") == "newest, task history-30"
        screenshot(browser, "dashboard-filter-task.png")
        box = fresh(lambda: browser.find_element(By.ID, "filter-task"))
        box.clear()
        box.send_keys("history-3", Keys.ENTER)  # a prefix of a key is not a key
        shows([history_id(n) for n in (9, 10, 11)], "the attempts of task history-3")
        box.clear()
        box.send_keys("no-such-task", Keys.ENTER)
        shows([], "no attempt")
        assert text("more") == "no attempt matches"

        # both filters, paged: the line under the table names the command of the next page
        box.clear()
        box.send_keys(Keys.ENTER)
        fresh(lambda: Select(browser.find_element(By.ID, "filter-state")).select_by_value("failed"))
        failed = [history_id(n) for n in range(120) if n % 20 in range(12, 17) and n != 75]
        wait_for(lambda: fresh(ids) == failed, "the failed attempts (one was cancelled)")
        assert len(failed) == 29 and not enabled("page-older")
