"""The companies index and a company's timeline in Chromium.

On the small sandbox estate mirrored through a real refresh: from the header
to the index, sorted by failing streak both ways, paged forwards and back; at
a phone's width nothing is wider than the screen. Then a runner retries a
failed sync and finds the retry, a moment later, at the top of the company's
timeline, with their name.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from dashboard import models as mirror
from dashboard.tasks import run_retry_task
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _shown(page: Page) -> list[str]:
    return page.locator("table.companies tbody tr[data-company]").evaluate_all(
        "rows => rows.map(row => row.dataset.company)"
    )


def _by_streak(descending: bool) -> list[str]:
    order = ("-failing_streak", "-id") if descending else ("failing_streak", "id")
    return [
        str(c) for c in mirror.Company.objects.order_by(*order).values_list("company_id", flat=True)
    ]


def test_the_index_sorts_and_pages_back_and_forth(page: Page, mirrored, viewer):
    companies = mirror.Company.objects.count()
    assert companies > 4, "more than one page of 4"
    login(page, viewer.username)
    page.get_by_role("link", name="Companies", exact=True).click()
    expect(page).to_have_url(re.compile(r"/companies/$"))
    expect(page.get_by_test_id("company-count")).to_have_text(f"{companies} companies")
    names = sorted(mirror.Company.objects.values_list("name", flat=True))
    expect(page.locator("table.companies tbody tr td:first-child a").first).to_have_text(names[0])

    page.goto("/companies/?size=4")
    page.locator('th a[data-sort="streak"]').click()
    expect(page.locator('th[aria-sort="descending"] a[data-sort="streak"]')).to_be_visible()
    expect(page).to_have_url(re.compile(r"sort=streak&dir=desc"))
    first = _shown(page)
    assert first == _by_streak(descending=True)[:4]

    page.locator("#company-results a[rel=next]").click()
    expect(page).to_have_url(re.compile(r"after="))
    expect(page.locator("table.companies tbody tr[data-company]")).to_have_count(companies - 4)
    assert _shown(page) == _by_streak(descending=True)[4:8]
    page.locator("#company-results a[rel=prev]").click()
    expect(page).to_have_url(re.compile(r"before="))
    expect(page.locator("table.companies tbody tr[data-company]").first).to_have_attribute(
        "data-company", first[0]
    )
    assert _shown(page) == first

    # A second click reverses it.
    page.locator('th a[data-sort="streak"]').click()
    expect(page.locator('th[aria-sort="ascending"] a[data-sort="streak"]')).to_be_visible()
    assert _shown(page) == _by_streak(descending=False)[:4]

    page.goto("/companies/?sort=streak")
    page.set_viewport_size(WIDE)
    screenshot(page, "companies-index-1440")
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the index is {width}px wide"
    screenshot(page, "companies-index-390")


def test_a_retry_made_a_moment_before_heads_the_company_timeline(page: Page, runner, failed_sync):
    login(page, runner.username)
    page.goto(f"/syncs/{failed_sync.sync_id}/")
    page.get_by_test_id("retry-button").click()
    expect(page).to_have_url(re.compile(rf"/syncs/{failed_sync.sync_id}/retry/$"))
    with mock.patch.object(run_retry_task, "delay"):
        page.get_by_test_id("confirm-retry").click()
        expect(page).to_have_url(re.compile(r"/retries/\d+/$"))
    request = mirror.RetryRequest.objects.get(sync=failed_sync)

    page.goto("/companies/")
    page.get_by_role("link", name=failed_sync.company.name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/companies/{failed_sync.company.company_id}/$"))
    newest = page.get_by_test_id("timeline").locator("li").first
    expect(newest).to_have_attribute("data-kind", "retry")
    expect(newest.get_by_test_id("who")).to_have_text(runner.username)
    expect(newest).to_contain_text(f"Retry of {request.item_count} item")
    expect(newest).to_contain_text("Queued")
    page.set_viewport_size(WIDE)
    screenshot(page, "company-timeline-1440")
    newest.locator("a").click()
    expect(page).to_have_url(re.compile(rf"/retries/{request.pk}/$"))
