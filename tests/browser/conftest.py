"""Debian's chromium through chromium-driver (Selenium, headless) against a served gateway.
Missing browser: skipped with the reason, or a failure under GATEWAY_TEST_REQUIRE_SERVICES=1.
A failing test leaves a screenshot (GATEWAY_TEST_SCREENSHOTS, default /tmp/gateway-screenshots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.live import LiveGateway

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GATEWAY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("GATEWAY_TEST_SCREENSHOTS", "/tmp/gateway-screenshots"))


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def chrome():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        _unavailable("chromium and chromium-driver", "not installed: " + ", ".join(missing)
                     + " (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _unavailable("selenium", str(exc))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=en-US", "--no-first-run",
                "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # a driver that does not match the browser, no display libraries...
        _unavailable("chromium and chromium-driver", f"could not start: {exc}")
    driver.implicitly_wait(0)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def live(sqlite_url, tmp_path):
    gw = LiveGateway.start(sqlite_url, tmp_path)
    yield gw
    gw.stop()


@pytest.fixture
def browser(chrome, live, request):
    from tests.browser.pages import Pages

    chrome.get(live.url + "/healthz")
    chrome.delete_all_cookies()  # cookies are per host, not per port: nothing of an earlier test
    pages = Pages(chrome, live)
    yield pages
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{request.node.name}.png"
        chrome.save_screenshot(str(shot))
        (SCREENSHOTS / f"{request.node.name}.html").write_text(chrome.page_source)
        print(f"\nscreenshot: {shot} (page at {chrome.current_url})")


