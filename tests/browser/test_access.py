"""Access in a real browser: someone without a role is told why; a viewer reads and cannot retry.

Screenshots (`access-*.png`) go to `artifacts/screenshots/`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import login, screenshot
from tests.support.users import make_user

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(60)]


def test_a_user_without_a_role_sees_why_and_can_still_log_out(page: Page, transactional_db):
    nobody = make_user("nobody")
    login(page, nobody.username)
    refusal = page.get_by_test_id("access-denied")
    expect(refusal).to_be_visible()
    expect(page.get_by_test_id("access-reason")).to_have_text(
        "You need the Support viewer role to see sync data."
    )
    expect(refusal).to_contain_text("Ask your Sync Health administrator to add you")
    header = page.locator("header.topbar")
    expect(header.get_by_role("link", name="History")).to_have_count(0)
    expect(header.get_by_role("link", name=re.compile("^Times"))).to_have_count(0)
    # Every link the refusal offers works without a role.
    for href in page.locator("header.topbar a, main a").evaluate_all("els => els.map(e => e.href)"):
        assert page.request.get(href).status == 200, href
    screenshot(page, "access-no-role-403")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_viewer_browses_to_a_syncs_push_items_and_finds_no_retry(page: Page, viewer, failed_sync):
    login(page, viewer.username)
    expect(page.locator('[data-stat="total"] .n')).to_be_visible()
    screenshot(page, "access-viewer-dashboard")

    page.locator("header.topbar").get_by_role("link", name="History").click()
    expect(page.get_by_test_id("result-count")).to_be_visible()
    page.locator("#id_q").fill(str(failed_sync.sync_id))
    page.locator("#history-filters").get_by_role("button", name="Apply").click()
    link = page.locator(f'#history-results a[href="/syncs/{failed_sync.sync_id}/"]').first
    expect(link).to_be_visible()
    screenshot(page, "access-viewer-history")

    link.click()
    expect(page.locator("#sync-id")).to_have_text(str(failed_sync.sync_id))
    expect(page.get_by_test_id("retry-button")).to_have_count(0)
    screenshot(page, "access-viewer-sync-detail")

    page.get_by_role("tab", name=re.compile(r"^Push items")).click()
    expect(page).to_have_url(re.compile(r"\?tab=items$"))
    expect(page.locator("#items-table")).to_contain_text("PushError")
    expect(page.get_by_test_id("retry-button")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Retry"))).to_have_count(0)
    screenshot(page, "access-viewer-push-items")

    response = page.goto(f"/syncs/{failed_sync.sync_id}/retry/")
    assert response is not None and response.status == 403
    assert "no-store" in (response.headers.get("cache-control") or "")
    expect(page.get_by_test_id("access-reason")).to_have_text(
        "You need the Support runner role to retry a sync."
    )
    expect(page.get_by_role("link", name="Back to the dashboard")).to_be_visible()
    screenshot(page, "access-viewer-retry-403")
