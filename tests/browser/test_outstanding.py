"""A support person's day, clicked through in Chromium: what is still broken, and did my fix work?

A sync whose 14 items failed; Retry; 7 complete and 7 fail again; the pages
say 7 are outstanding (not 14 + 7), the company's failing count and streak do
not grow; Retry again; everything completes, the sync reads Resolved and the
company leaves Failing companies. Screenshots of each step are saved.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from dashboard import ingest
from dashboard import models as mirror
from dashboard.tasks import follow_retries_task, run_retry_task
from sandbox import models as sb
from sandbox import services
from tests.support.browser import login, screenshot
from tests.support.scenario import failed_company

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]


def _retry_as_a_person(page: Page, sync: mirror.Sync, *, count: int, shot: str) -> None:
    """From the sync's page: the Retry button, its confirmation, confirm; the worker runs."""
    page.goto(f"/syncs/{sync.sync_id}/")
    button = page.get_by_test_id("retry-button")
    expect(button).to_have_text(f"Retry failed items ({count})")
    button.click()
    expect(page.get_by_test_id("retry-count")).to_have_text(str(count))
    screenshot(page, shot)
    with mock.patch.object(run_retry_task, "delay"):
        page.get_by_test_id("confirm-retry").click()
        expect(page).to_have_url(re.compile(r"/retries/\d+/$"))
    request = mirror.RetryRequest.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    run_retry_task(request.pk)
    request.refresh_from_db()
    services.finalize_sync(sb.Sync.objects.get(sync_id=request.new_sync_id).pk)
    follow_retries_task()
    expect(page.get_by_test_id("retry-state")).to_have_text("Completed", timeout=15_000)


def _outstanding(page: Page) -> str:
    page.goto("/")
    return page.locator('[data-stat="outstanding_items"] .n').inner_text()


def test_retry_until_resolved_as_a_support_person_clicks_it(
    page: Page, runner, aimed, in_process_upstream
):
    upstream_company = failed_company(items=14, name="Harbour Coffee Ltd")
    company = ingest.ensure_company(in_process_upstream, str(upstream_company.company_id))
    ingest.refresh_company(in_process_upstream, company)
    original = mirror.Sync.objects.get(company=company, status_code=5130)
    failing = page.locator(
        "section.card", has=page.get_by_role("heading", name="Failing companies")
    )

    login(page, runner.username)
    assert _outstanding(page) == "14"
    expect(failing).to_contain_text("Harbour Coffee Ltd")
    screenshot(page, "outstanding-1-dashboard-before")

    services.script_next_retry(upstream_company, complete=7)
    _retry_as_a_person(page, original, count=14, shot="outstanding-2-confirm-14")
    expect(page.get_by_test_id("retry-outcome")).to_have_text(
        "14 re-pushed: 7 now complete, 7 failed again"
    )
    screenshot(page, "outstanding-3-retry-7-failed-again")

    assert _outstanding(page) == "7"
    # Still one failed attempt for the company, one in its streak: the retry is part of it.
    ranked, streaks = failing.locator("table").nth(0), failing.locator("table").nth(1)
    # The count reads "1" on the screen and names what it counts to a screen reader.
    expect(ranked.locator("tr", has_text="Harbour Coffee Ltd").locator("td.num")).to_have_text(
        "1 failed sync of Harbour Coffee Ltd"
    )
    expect(streaks.locator("tr", has_text="Harbour Coffee Ltd")).to_contain_text("1 in a row")
    screenshot(page, "outstanding-4-dashboard-after-first-retry")
    page.goto(f"/syncs/{original.sync_id}/")
    expect(page.get_by_test_id("outstanding")).to_contain_text("7 items still to push")
    screenshot(page, "outstanding-5-sync-7-outstanding")

    services.script_next_retry(upstream_company, complete=7)
    _retry_as_a_person(page, original, count=7, shot="outstanding-6-confirm-7")
    page.goto(f"/syncs/{original.sync_id}/")
    expect(page.get_by_test_id("resolved")).to_have_text("Resolved")
    expect(page.get_by_test_id("retry-button")).to_have_count(0)
    expect(page.get_by_test_id("retry-advice")).to_contain_text("Resolved by retry")
    screenshot(page, "outstanding-7-sync-resolved")

    assert _outstanding(page) == "0"
    expect(failing).not_to_contain_text("Harbour Coffee Ltd")
    screenshot(page, "outstanding-8-dashboard-resolved")
