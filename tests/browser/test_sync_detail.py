"""A sync's page in Chromium: the tabs switch, and the Config tab shows the configuration the
sync ran with, not the one the company has now.

A company whose bank account changed after the sync ran; the Config tab names the
earlier account (with its name beside its ID), and says what differs now. At 1440x900
and, for the push items, at a phone's 390x844; screenshots of each.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import login, screenshot
from tests.support.factories import make_company, make_config, make_sync, problem_of

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
CLOSED = "An error occurred in a downstream service. Message: The account period has closed."


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def test_the_config_tab_shows_the_config_from_before_the_sync_and_the_tabs_switch(
    page: Page, viewer, transactional_db
):
    company = make_company(name="Acme Coffee Ltd", platform_name="Xero")
    then = make_config(
        company,
        {
            "bankAccount": {"id": "89", "accountName": "Business Current"},
            "supplier": {"id": "124"},
            "customer": {"id": "140"},
        },
        ago=timedelta(days=3),
    )
    sync = make_sync(
        company,
        code=5130,
        ago=timedelta(days=1),
        items=[(3, None)] * 6 + [(4, "The account period has closed.")] * 3 + [(1, None)],
        error_message=CLOSED,
    )
    problem_of(sync)
    now = make_config(
        company,
        {
            "bankAccount": {"id": "90", "accountName": "Savings"},
            "supplier": {"id": "124"},
            "customer": {"id": "141"},
        },
        ago=timedelta(hours=2),
    )
    login(page, viewer.username)
    page.set_viewport_size(WIDE)
    page.goto(f"/syncs/{sync.sync_id}/")

    tabs = page.get_by_role("tablist")
    overview = tabs.get_by_role("tab", name="Overview")
    items = tabs.get_by_role("tab", name=re.compile(r"^Push items"))
    config = tabs.get_by_role("tab", name="Config")
    expect(overview).to_have_attribute("aria-selected", "true")
    expect(items).to_have_attribute("aria-selected", "false")
    panel = page.get_by_role("tabpanel")
    expect(panel).to_contain_text("What it means:")
    expect(page.get_by_test_id("item-counts")).to_contain_text("3 failed")
    expect(page.get_by_test_id("sync-problems")).to_contain_text("Problem #")
    portal = page.get_by_test_id("portal-link")
    expect(portal).to_have_attribute("href", f"https://app.codat.io/companies/{company.company_id}")
    expect(portal).to_have_attribute("target", "_blank")
    # The tab list comes before the panel it controls, on the screen too.
    assert tabs.bounding_box()["y"] < panel.bounding_box()["y"]
    _fits(page)
    screenshot(page, "detail-overview-1440")

    # Config: the snapshot from before the sync, its difference from now, its download.
    config.click()
    expect(page).to_have_url(re.compile(r"\?tab=config$"))
    expect(config).to_have_attribute("aria-selected", "true")
    expect(overview).to_have_attribute("aria-selected", "false")
    expect(page.get_by_test_id("config-which")).to_contain_text("Last seen before this sync")
    expect(page.get_by_test_id("config-which")).to_contain_text(
        f"{then.fetched_at:%Y-%m-%d %H:%M:%S}"
    )
    settings = page.get_by_test_id("config-settings")
    expect(settings.get_by_role("row", name=re.compile(r"^Bank account"))).to_contain_text(
        "Business Current ID 89"
    )
    expect(settings).not_to_contain_text("Savings")
    diff = page.get_by_test_id("config-diff")
    expect(diff.locator("tbody tr")).to_have_count(2)
    expect(
        diff.get_by_role("row", name=re.compile(r"Bank account")).locator("td, th")
    ).to_have_text(["changed", "Bank account", "Business Current ID 89", "Savings ID 90"])
    expect(diff.get_by_role("row", name=re.compile(r"Customer")).locator("td, th")).to_have_text(
        ["changed", "Customer", "ID 140", "ID 141"]
    )
    with page.expect_download() as downloaded:
        page.get_by_test_id("config-download").click()
    assert json.loads(Path(downloaded.value.path()).read_text(encoding="utf-8")) == then.config
    assert now.config != then.config
    _fits(page)
    screenshot(page, "detail-config-1440")

    # Keyboard: from the selected tab, the arrow keys move between the tabs.
    config.focus()
    page.keyboard.press("ArrowLeft")
    expect(items).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"\?tab=items$"))
    expect(items).to_have_attribute("aria-selected", "true")

    # Push items on a phone: the one status filter, with counts.
    page.set_viewport_size(PHONE)
    status_filter = page.get_by_test_id("status-filter")
    expect(status_filter.get_by_role("link")).to_have_text(
        ["All 10", "Failed 3", "Completed 6", "Pending 1"]
    )
    status_filter.get_by_role("link", name=re.compile(r"^Failed")).click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator("#items-table tbody tr")).to_have_count(3)
    expect(status_filter.get_by_role("link", name=re.compile(r"^Failed"))).to_have_attribute(
        "aria-current", "true"
    )
    _fits(page)
    screenshot(page, "detail-items-390")

    # And back to the Overview.
    page.set_viewport_size(WIDE)
    overview.click()
    expect(page).to_have_url(re.compile(rf"/syncs/{sync.sync_id}/$"))
    expect(overview).to_have_attribute("aria-selected", "true")
