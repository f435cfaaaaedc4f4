"""Chromium driven through Playwright's sync API, against the live server.

`browser` is one Chromium for the session; `page` is a fresh context (own
cookies, downloads accepted) per test. Data comes from the live sandbox,
mirrored with `dashboard.ingest`, as in tests/retry. Users log in through the
real login form (`tests.support.browser.login`).

Every test fails on a JavaScript error or on anything the
Content-Security-Policy blocks. A failed test leaves a screenshot and the
page's HTML in `artifacts/failures/` (relative to the repository root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require

# Playwright's sync API keeps an asyncio loop "running" in this thread while
# the browser is up; Django would refuse ORM calls from the tests without this.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.support.browser import FAILURES, watch_for_errors

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent

TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)

_running: dict[str, Playwright | Browser] = {}


def _stop_browser() -> None:
    browser = _running.pop("browser", None)
    playwright = _running.pop("playwright", None)
    if browser is not None:
        browser.close()  # type: ignore[union-attr]
    if playwright is not None:
        playwright.stop()  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require(os.access(CHROMIUM, os.X_OK), f"Chromium at {CHROMIUM}")
    playwright = sync_playwright().start()
    _running["playwright"] = playwright
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    _running["browser"] = launched
    yield launched
    _stop_browser()


def _is_browser_test(item: pytest.Item) -> bool:
    return HERE in Path(item.path).resolve().parents


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Stop Chromium after the last browser test, not at the end of the session.

    While Playwright runs, the main thread has a running event loop; the rest
    of the suite should not run under it.
    """
    result = yield
    if _running and "browser" in getattr(item, "fixturenames", ()):
        later = item.session.items[item.session.items.index(item) + 1 :]
        if not any(_is_browser_test(other) for other in later):
            _stop_browser()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.fixture
def page(browser: Browser, live_server, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors = watch_for_errors(tab)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = _safe_name(request.node.nodeid)
        try:
            tab.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True, caret="initial")
            (FAILURES / f"{name}.html").write_text(tab.content(), encoding="utf-8")
        except Exception as exc:  # the page may be gone; the failure is what matters
            print(f"could not save failure artifacts: {exc}")
    context.close()
    assert not errors, f"JavaScript errors or Content-Security-Policy refusals: {errors}"
