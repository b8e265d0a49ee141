"""The dashboard end to end in real headless Chromium: the printed URL lets the browser
in (its token traded for a cookie), a submitted task is dispatched by the loop, shows up
on the page with every column inside its panel at 1280 px, is cancelled from the page
once the operator confirms, and the page shows the new state. Screenshots are kept under
``test-artifacts/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Selenium
is pointed at ``/usr/bin/chromedriver`` explicitly so it never downloads a driver.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.support.cli import ORCH_BIN
from tests.support.dashboard import serve_process
from tests.support.processes import Proc, wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        why = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"headless Chromium is required on CI: {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def dashboard(tmp_path: Path, isolated_env: Path) -> Iterator[str]:
    server, url = serve_process(tmp_path / "out")
    try:
        yield url
    finally:
        Proc([ORCH_BIN, "serve", "--stop"], tmp_path / "out").wait()
        if server.popen.poll() is None:
            server.signal(signal.SIGKILL)
        server.wait()


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

    from selenium.common.exceptions import StaleElementReferenceException

    def fresh(action: Callable[[], Any]) -> Any:
        """Run ``action`` on freshly found elements; the page re-renders every 2 s, so an
        element found a moment ago may be gone: look again."""
        for _ in range(50):
            try:
                return action()
            except StaleElementReferenceException:
                time.sleep(0.05)
        return action()

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
        lambda: [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#queue-table th")],
        "the queue table",
    )
    assert queue_headers == ["#", "task", "state", "attempt", "reason"]
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
