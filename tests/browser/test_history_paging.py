"""The history's pages clicked through in Chromium, and the dashboard chart's partial days.

Pages forward and back by keyset, the oldest page, where each stands, a chip
removed; at 1440x900 and at a phone's 390x844, nothing wider than the screen.
Screenshots: history-paging-1440, history-390, chart-partial-1440.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import login, screenshot
from tests.support.factories import make_company, make_sync

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def week(transactional_db):
    """130 syncs over the last few days, of two companies, every fifth one failed."""
    acme = make_company(name="Acme <Ltd>", platform_name="Xero")
    globex = make_company(name="Globex Inc", platform_name="QuickBooks Online")
    syncs = [
        make_sync(
            (acme, globex)[n % 2],
            code=5130 if n % 5 == 0 else 2000,
            ago=timedelta(minutes=37 * n + 5),
            error_message="Message: The account period has closed." if n % 5 == 0 else "",
        )
        for n in range(130)
    ]
    return {"acme": acme, "syncs": syncs}


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def _shown(page: Page) -> list[str]:
    return page.locator("#history-results tbody a.mono").all_inner_texts()


def test_a_new_user_pages_back_and_to_the_oldest_sync(page: Page, lead, week):
    newest_first = [str(s.sync_id) for s in week["syncs"]]
    login(page, lead.username)
    page.set_viewport_size(WIDE)
    # Sorting by company starts from A; its header says so.
    page.goto("/syncs/")
    page.locator("#history-results th a", has_text="Company").click()
    expect(page.locator('#history-results th[aria-sort="ascending"]')).to_have_text(
        re.compile("Company")
    )
    expect(page.locator("#history-results tbody tr").first).to_contain_text("Acme <Ltd>")

    page.goto("/syncs/")
    bottom = page.get_by_test_id("pager-bottom")
    expect(bottom.get_by_test_id("page-position")).to_have_text("1\u201350 of 130")
    assert _shown(page) == newest_first[:50]

    # Forward twice, then back once: page 2 again, by keyset.
    bottom.get_by_test_id("page-next").click()
    expect(bottom.get_by_test_id("page-position")).to_have_text("51\u2013100 of 130")
    bottom.get_by_test_id("page-next").click()
    expect(bottom.get_by_test_id("page-position")).to_have_text("101\u2013130 of 130")
    assert _shown(page) == newest_first[100:]
    bottom.get_by_test_id("page-previous").click()
    expect(bottom.get_by_test_id("page-position")).to_have_text("51\u2013100 of 130")
    assert _shown(page) == newest_first[50:100]
    expect(page).to_have_url(re.compile(r"before="))

    # The oldest page from the top pager: the last 50, newest first.
    oldest = page.get_by_test_id("pager-top").get_by_test_id("page-last")
    oldest.click()
    expect(bottom.get_by_test_id("page-position")).to_have_text("81\u2013130 of 130")
    assert _shown(page) == newest_first[80:]
    expect(bottom.get_by_test_id("page-next")).to_have_count(0)

    # The browser's back button returns to the page before, and forward again.
    page.go_back()
    expect(bottom.get_by_test_id("page-position")).to_have_text("51\u2013100 of 130")
    page.go_forward()
    expect(bottom.get_by_test_id("page-position")).to_have_text("81\u2013130 of 130")
    _fits(page)
    # (Last: a screenshot leaves empty style attributes that a later htmx
    # history snapshot would carry back in, which the policy refuses.)
    screenshot(page, "history-paging-1440")


def test_the_history_reads_on_a_phone_with_its_chips(page: Page, lead, week):
    acme = week["acme"]
    login(page, lead.username)
    page.set_viewport_size(PHONE)
    page.goto(f"/syncs/?company={acme.company_id}&code=5130&range=30d")
    chip = page.get_by_test_id("chip-company")
    expect(chip).to_contain_text("Company: Acme <Ltd>")
    expect(page.get_by_test_id("chip-code")).to_contain_text("5130")
    expect(page.get_by_test_id("chip-range")).to_contain_text("Last 30 days")
    screenshot(page, "history-390")
    _fits(page)
    chip.get_by_role("link", name="Remove the company filter").click()
    expect(page.get_by_test_id("chip-company")).to_have_count(0)
    expect(page.get_by_test_id("chip-code")).to_be_visible()
    assert "company=" not in page.url


def test_the_chart_marks_its_partial_days(page: Page, lead, week):
    login(page, lead.username)
    page.set_viewport_size(WIDE)
    page.goto("/?range=7d")
    chart = page.get_by_test_id("chart")
    expect(chart.locator("rect.partial-band")).to_have_count(2)
    # The zero line and 3 to 5 gridlines above it.
    assert 4 <= chart.locator("line.grid").count() <= 6
    label = chart.get_attribute("aria-label") or ""
    assert "Partial: the day of" in label
    expect(page.get_by_test_id("partial-note")).to_contain_text("partial day")
    ticks = [t.text_content() for t in chart.locator("text.tick").all()]
    assert "0" in ticks and any(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", t) for t in ticks)
    _fits(page)
    page.locator("section.card", has=chart).screenshot(
        path=str(screenshot(page, "chart-partial-1440")), caret="initial"
    )
