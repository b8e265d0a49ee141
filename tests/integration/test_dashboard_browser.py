"""The dashboard end to end in real headless Chromium: a submitted task is dispatched by
the loop, shows up on the page, is cancelled from the page, and the page shows the new
state. A screenshot is kept under ``test-artifacts/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Selenium
is pointed at ``/usr/bin/chromedriver`` explicitly so it never downloads a driver.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.support.cli import ORCH_BIN
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
    "--window-size=1400,900",
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
    server = Proc(
        [ORCH_BIN, "serve", "--port", "0"],
        tmp_path / "out",
        env={"ORCH_SERVE_INTERVAL": "0.2"},
        start_new_session=True,
    )
    try:
        found = wait_for(lambda: re.search(r"dashboard at (\S+)", server.stdout), "the URL")
        yield str(found.group(1))
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
    browser.get(dashboard)

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
    fresh(lambda: row().click())
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#detail [data-field=branch]"),
        "the attempt's details",
    )
    detail = fresh(lambda: browser.find_element(By.ID, "detail").text)
    assert f"orch/add-retries-{attempt_id}" in detail and "web=" in detail
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-before-cancel.png"))

    fresh(lambda: browser.find_element(By.ID, "cancel").click())
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
