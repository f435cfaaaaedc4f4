"""A support lead's morning in Chromium: the problems first, then one problem, triaged.

On the small sandbox estate mirrored through a real refresh (which builds
the problems), at 1440x900 and at a phone's 390x844: the dashboard's Top
problems, the Problems page, a problem's page; assign it to me, note it,
write its playbook, copy the customer message. Nothing may be wider than
the screen. Screenshots of each are saved.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dashboard import models as mirror
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _fits(page: Page) -> None:
    """Nothing sticks out to the side: the page is no wider than the window."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def _both_widths(page: Page, name: str) -> None:
    for size, label in ((WIDE, "1440"), (PHONE, "390")):
        page.set_viewport_size(size)
        _fits(page)
        screenshot(page, f"problems-{name}-{label}")
    page.set_viewport_size(WIDE)


def test_a_lead_starts_the_day_with_the_problems(page: Page, mirrored, lead):
    assert mirror.Problem.objects.filter(items_outstanding__gt=0).exists()
    top = (
        mirror.Problem.objects.filter(state__in=["open", "regressed"])
        .order_by("-companies_outstanding", "-items_outstanding", "id")
        .first()
    )
    login(page, lead.username)

    panel = page.get_by_test_id("top-problems")
    expect(panel.locator("tr[data-problem]").first).to_have_attribute("data-problem", str(top.pk))
    _both_widths(page, "1-dashboard")

    page.get_by_role("link", name="Problems", exact=True).click()
    expect(page).to_have_url(re.compile(r"/problems/$"))
    expect(page.get_by_test_id("headline")).to_contain_text("problem")
    expect(page.get_by_test_id("first-look")).to_be_visible()
    rows = page.locator("table.problems tr[data-problem]")
    expect(rows.first).to_have_attribute("data-problem", str(top.pk))
    _both_widths(page, "2-list")

    rows.first.locator("td.cause a").click()
    expect(page).to_have_url(re.compile(rf"/problems/{top.pk}/$"))
    expect(page.get_by_test_id("cause")).to_have_text(top.cause)
    _both_widths(page, "3-problem")

    page.get_by_test_id("assign-me").click()
    expect(page.get_by_test_id("assignee")).to_have_text(lead.username)
    page.locator("#id_text").fill("Asked the customers to reopen the period. <b>not bold</b>")
    page.get_by_role("button", name="Add note").click()
    activity = page.get_by_test_id("activity")
    expect(activity).to_contain_text("<b>not bold</b>")

    page.locator("details.edit summary").click()
    page.locator("#id_playbook").fill(
        "### Reopen the period\n\n1. Ask the customer\n2. Retry\n\n[guide](https://help.example/)"
    )
    page.get_by_role("button", name="Save as a new version").click()
    playbook = page.get_by_test_id("playbook")
    expect(playbook.locator("h3")).to_have_text("Reopen the period")
    expect(playbook.locator("a")).to_have_attribute("rel", "noopener noreferrer")

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.get_by_test_id("copy-message")
    copy.click()
    expect(copy).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.get_by_test_id("customer-message").inner_text()
    _both_widths(page, "4-problem-triaged")

    page.goto("/problems/?assignee=me")
    expect(page.locator("table.problems tr[data-problem]")).to_have_count(1)
    # Still the same visit: still compared with the look before it (none).
    expect(page.get_by_test_id("first-look")).to_be_visible()
