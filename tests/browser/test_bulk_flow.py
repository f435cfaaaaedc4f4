"""A lead's bulk retry in a real browser: from the history, review, leave one out, type, confirm."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from dashboard import preferences
from dashboard.models import BulkMember, BulkRetry
from dashboard.tasks import fan_out_bulk_task
from tests.support.browser import login, screenshot
from tests.support.factories import make_company, make_sync

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(60)]

ZONE = "Pacific/Kiritimati"
DAY = date(2026, 7, 15)


def test_a_lead_reviews_leaves_one_out_types_the_number_and_confirms(
    page: Page, lead, transactional_db, settings
):
    settings.BULK_RETRY_CONFIRM_THRESHOLD = 2
    preferences.save(preferences.for_user(lead.pk), use_local_time=True, time_zone=ZONE)
    company = make_company(name="Acme Ltd")
    start = datetime.combine(DAY, time.min, tzinfo=ZoneInfo(ZONE))
    # Four inside the day in Kiritimati; one inside the UTC day only.
    for moment in [start + timedelta(hours=h) for h in (1, 5, 9, 20)] + [
        start + timedelta(hours=25)
    ]:
        make_sync(
            company, code=5130, items=[(4, "The account period has closed.")],
            sync_utc=moment, items_outstanding=1, error_message="The account period has closed.",
        )  # fmt: skip
    login(page, lead.username)
    page.goto(f"/syncs/?range=custom&start={DAY}&end={DAY}&code=5130")
    page.get_by_test_id("bulk-retry-link").click()
    expect(page).to_have_url(re.compile(r"/retries/bulk/\d+/review/$"))
    expect(page.get_by_test_id("bulk-syncs")).to_have_text("4")
    expect(page.get_by_test_id("bulk-member")).to_have_count(4)
    screenshot(page, "bulk-review")

    page.get_by_test_id("bulk-member").first.get_by_role("checkbox").uncheck()
    page.get_by_test_id("save-bulk").click()
    expect(page.get_by_test_id("bulk-syncs")).to_have_text("3")
    expect(page.get_by_test_id("bulk-left-out")).to_contain_text("1 sync left out")

    typed = page.get_by_test_id("bulk-typed")
    typed.fill("4")
    typed.press("Enter")  # Enter in the number confirms
    expect(page.get_by_test_id("bulk-typed-error")).to_contain_text("You typed 4, but 3")
    expect(page.get_by_test_id("bulk-typed")).to_have_value("4")
    with mock.patch.object(fan_out_bulk_task, "delay") as fan_out:
        page.get_by_test_id("bulk-typed").fill("3")
        page.get_by_test_id("confirm-bulk").click()
        expect(page).to_have_url(re.compile(r"/retries/bulk/\d+/$"))
        expect(page.get_by_test_id("bulk-state")).to_have_text("Queued")
    bulk = BulkRetry.objects.get(state="queued")
    fan_out.assert_called_once_with(bulk.pk)
    assert bulk.planned_syncs == 3
    assert BulkMember.objects.filter(bulk=bulk, included=True).count() == 3
    screenshot(page, "bulk-detail")
