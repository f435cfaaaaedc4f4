"""Pages that watch for change, in Chromium, with the sandbox upstream making the change.

The history says how many syncs came above its first row (never pushing the rows
under the reader) and shows them when asked; it asks nothing while the tab is
hidden. During the first import every page shows how many companies have been
read, and the dashboard's totals grow by themselves, until the import is done.
Polling every second here (`LIVE_POLL_SECONDS`); screenshots of both.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from dashboard import ingest
from dashboard import models as mirror
from sandbox import models as sb
from sandbox import services
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]

WIDE = {"width": 1440, "height": 900}


@pytest.fixture
def fast_polls(settings):
    settings.LIVE_POLL_SECONDS = 1
    return settings


def _new_syncs_upstream(in_process_upstream, count: int) -> list[sb.Sync]:
    """`count` finished syncs of one company in the sandbox, mirrored by a refresh."""
    upstream_company = sb.Company.objects.order_by("pk").first()
    assert upstream_company is not None
    created = [
        services.create_expense_sync(company=upstream_company, transaction_ids=[uuid.uuid4()])
        for _ in range(count)
    ]
    for sync in created:
        services.finalize_sync(sync.pk)
    company = mirror.Company.objects.get(company_id=upstream_company.company_id)
    ingest.refresh_company(in_process_upstream, company)
    return created


def _set_visibility(page: Page, state: str) -> None:
    page.evaluate(
        """state => {
            const shown = {configurable: true, get: () => state};
            Object.defineProperty(document, "visibilityState", shown);
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_new_syncs_are_announced_and_arrive_when_asked(
    page: Page, viewer, mirrored, in_process_upstream, fast_polls
):
    page.set_viewport_size(WIDE)
    login(page, viewer.username)
    page.goto("/syncs/?range=all")
    watch = page.get_by_test_id("new-syncs")
    expect(watch).to_have_attribute("aria-live", "polite")
    bar = page.get_by_test_id("new-syncs-bar")
    top = page.locator("table.list tbody tr").first.inner_text()

    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/syncs/new/" in r.url else None)
    _set_visibility(page, "hidden")
    page.wait_for_timeout(300)
    asked.clear()
    created = _new_syncs_upstream(in_process_upstream, 3)
    # A hidden tab asks nothing, however long it waits.
    page.wait_for_timeout(2500)
    assert asked == []
    expect(bar).to_have_count(0)

    # Shown again: it catches up at once, and says how many came, not where.
    _set_visibility(page, "visible")
    # "show" visibly; "the new syncs" too for a screen reader.
    expect(bar).to_have_text("3 new syncs — show the new syncs")
    assert asked
    assert page.locator("table.list tbody tr").first.inner_text() == top
    for sync in created:
        expect(page.locator(f'a[href="/syncs/{sync.sync_id}/"]')).to_have_count(0)
    screenshot(page, "live-new-syncs-1440")

    page.get_by_test_id("show-new-syncs").click()
    for sync in created:
        row = page.locator("tr", has=page.locator(f'a[href="/syncs/{sync.sync_id}/"]'))
        expect(row).to_be_visible()
    expect(page).to_have_url(re.compile(r"/syncs/\?range=all$"))
    # The fresh first page watches above its own top: nothing new now.
    page.wait_for_timeout(1500)
    expect(bar).to_have_count(0)


def test_the_first_import_shows_its_progress_until_every_company_is_read(
    page: Page, viewer, aimed, small_estate, in_process_upstream, fast_polls
):
    companies = ingest.refresh_companies(in_process_upstream)
    assert len(companies) == 6 and not mirror.Sync.objects.exists()
    page.set_viewport_size(WIDE)
    login(page, viewer.username)

    banner = page.get_by_test_id("first-import")
    expect(banner).to_contain_text("First import running: 0 of 6 companies read")
    progress = banner.locator("progress")
    expect(progress).to_have_attribute("max", "6")
    expect(progress).to_have_attribute("value", "0")
    total = page.locator('[data-stat="total"] .n')
    expect(total).to_have_text("0")

    for company in companies[:3]:
        ingest.refresh_company(in_process_upstream, company)
    expect(banner).to_contain_text("3 of 6 companies read")
    expect(progress).to_have_attribute("value", "3")
    # The totals grow by themselves as the companies are read.
    partial = mirror.Sync.objects.filter(sync_utc__gte=_range_start(page)).count()
    expect(total).to_have_text(f"{partial:,}")
    screenshot(page, "first-import-banner-1440")

    # Every page shows it.
    page.get_by_role("link", name="History", exact=True).click()
    expect(page).to_have_url(re.compile(r"/syncs/$"))
    expect(banner).to_contain_text("3 of 6 companies read")

    for company in companies[3:]:
        ingest.refresh_company(in_process_upstream, company)
    expect(banner).to_have_count(0)
    page.goto("/")
    expect(banner).to_have_count(0)
    everything = mirror.Sync.objects.filter(sync_utc__gte=_range_start(page)).count()
    expect(total).to_have_text(f"{everything:,}")


def _range_start(page: Page):
    """The start of the dashboard's default range (the last seven days), as the server reads it."""
    from dashboard.forms import SyncFilterForm

    form = SyncFilterForm({})
    assert form.is_valid()
    start = form.filters().span.start
    assert start is not None
    return start
