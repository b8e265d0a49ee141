"""Headless Chromium for the dashboard tests: a real browser on the real page.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` and
``scripts/ensure-chromium`` install them). Selenium is pointed at ``/usr/bin/chromedriver``
explicitly so it never downloads a driver. Screenshots are kept under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium driven by Selenium (skipped without one, failed on CI)."""
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
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def fresh(action: Callable[[], Any]) -> Any:
    """Run ``action`` on freshly found elements; the page re-renders on every change, so
    an element found a moment ago may be gone: look again."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(50):
        try:
            return action()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return action()


def click_until(click: Callable[[], Any], done: Callable[[], Any], what: str) -> None:
    """Click (on freshly found elements) until ``done``: a click that lands on a row the
    page re-renders at that moment changes nothing and raises nothing, so it is made again
    while the page has not answered it."""
    from tests.support.processes import wait_for

    def answered() -> Any:
        if done():
            return True
        fresh(click)
        return False

    wait_for(answered, what)


def live(browser: Any) -> dict[str, Any]:
    """How the page is kept up to date (``window.orchLive``): the stream's state, how often
    it opened, the change messages it got, and the fallback polls made."""
    found: dict[str, Any] = browser.execute_script("return Object.assign({}, window.orchLive)")
    return found


def screenshot(browser: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))


def inside_the_review(browser: Any) -> bool:
    """The comparison's columns, the landed one included, fit inside its panel."""
    return bool(
        browser.execute_script(
            """const right = document.querySelector('#review').getBoundingClientRect().right;
            return [...document.querySelectorAll('#compare-table th')]
              .every(c => c.getBoundingClientRect().right <= right + 0.5);"""
        )
    )
