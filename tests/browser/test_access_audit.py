"""The access audit in a real browser: a viewer's export (and a refused one) and a mistyped
password, then a lead reads them from the header's *Audit*.

Screenshots (`audit-*.png`) go to `artifacts/screenshots/`.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import login, screenshot
from tests.support.factories import make_company, make_sync
from tests.support.users import make_user

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]


def test_a_lead_reads_who_exported_what_and_who_failed_to_sign_in(
    page: Page, transactional_db, settings
):
    settings.CSV_EXPORT_MAX_ROWS = 3
    company = make_company(name="Acme Ltd")
    for hours in range(5):
        make_sync(company, code=5130 if hours < 2 else 2000, ago=timedelta(hours=hours + 1))
    make_user("viewer", "Support viewer")
    make_user("lead", "Support lead")

    # A viewer exports the two failed syncs; the whole week (five) is over the cap.
    login(page, "viewer")
    expect(page.locator("header.topbar").get_by_role("link", name="Audit")).to_have_count(0)
    page.goto("/syncs/?code=5130")
    with page.expect_download() as downloaded:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(downloaded.value.path()).read_text("utf-8"))))
    assert len(rows) == 2
    page.goto("/syncs/")
    page.get_by_role("link", name="Export CSV").click()
    expect(page.get_by_test_id("access-reason")).to_have_text(
        "You need the Support lead role to export more than 3 syncs at once."
    )
    expect(page.get_by_test_id("access-advice")).to_contain_text("Narrow the filters")
    screenshot(page, "audit-export-over-the-cap-403")
    page.get_by_role("button", name="Log out").click()

    # Someone mistypes the lead's password, then the lead signs in and opens the audit.
    page.goto("/accounts/login/")
    page.locator("#id_username").fill("lead")
    page.locator("#id_password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist, .error").first).to_be_visible()
    login(page, "lead")
    page.locator("header.topbar").get_by_role("link", name="Audit").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))

    events = page.get_by_test_id("access-events")
    expect(events.locator("tbody tr").first).to_contain_text("Signed in")
    expect(events).to_contain_text("Failed sign-in")
    expect(events).to_contain_text("needs Support lead to export more than 3 syncs at once")
    export = events.locator("tr", has_text="CSV export")
    expect(export).to_contain_text("2 rows")
    expect(export).to_contain_text("code=5130")
    screenshot(page, "audit-lead-reads-the-audit")

    page.get_by_test_id("access-filters").locator("#id_action").select_option("csv_export")
    page.get_by_test_id("access-filters").get_by_role("button", name="Filter").click()
    expect(events.locator("tbody tr")).to_have_count(1)
    export.get_by_role("link", name=re.compile("code=5130")).click()
    expect(page).to_have_url(re.compile(r"/syncs/\?.*code=5130"))
    expect(page.get_by_test_id("result-count")).to_have_text("2 syncs")
