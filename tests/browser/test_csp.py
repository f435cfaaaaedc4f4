"""The pages work under the strict Content-Security-Policy, in a real browser.

Chromium enforces the policy the server sends; every action below must do
what it did when the pages had inline scripts and handlers, with nothing
refused on the console (the `page` fixture fails a test on any refusal or
JavaScript error; this test also says so where it happens).
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from dashboard import models as mirror
from dashboard.tasks import run_retry_task
from tests.support.browser import htmx_get, login, watch_for_errors

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]

POLL_MS = 8_000  # the retry page polls every 3 s


def _no_errors(page: Page, errors: list[str], where: str) -> None:
    expect(page.locator("body")).to_be_visible()
    assert not errors, f"{where}: {errors}"


def test_the_pages_work_under_the_policy(page: Page, admin_user: User, failed_sync):
    errors = watch_for_errors(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, admin_user.username, "password")
    assert "default-src 'self'" in (page.goto("/").headers["content-security-policy"])

    # Dashboard: a typed date picks "Custom"; a preset clears the dates again.
    expect(page.locator("svg.chart")).to_be_visible()
    dashboard_form = page.locator("form.filters")
    dashboard_form.locator("#id_start").fill("2026-01-01")
    dashboard_form.locator("#id_start").dispatch_event("change")
    expect(dashboard_form.locator('input[name="range"][value="custom"]')).to_be_checked()
    dashboard_form.locator('input[name="range"][value="30d"]').check()
    expect(dashboard_form.locator("#id_start")).to_have_value("")
    _no_errors(page, errors, "dashboard")

    # History: a ticked code, a sort and the next page, each through htmx.
    page.goto("/syncs/?range=all")
    page.evaluate("() => { window.__sameDocument = true; }")
    code = str(failed_sync.status_code)
    with page.expect_response(htmx_get("/syncs/", f"code={code}")):
        page.locator(f'#history-filters input[name="code"][value="{code}"]').check()
    with page.expect_response(htmx_get("/syncs/", "sort=")):
        page.locator("#history-results th a").first.click()
    page.goto("/syncs/?range=all")
    page.evaluate("() => { window.__sameDocument = true; }")
    with page.expect_response(htmx_get("/syncs/", "after=")):
        page.locator('#history-results a[rel="next"]').click()
    assert page.evaluate("() => window.__sameDocument === true"), "htmx did not swap the page"
    _no_errors(page, errors, "history")

    # Sync detail: copy the ID, the tabs (boosted), the items filter, the config download.
    detail = f"/syncs/{failed_sync.sync_id}/"
    page.goto(detail)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == str(failed_sync.sync_id)
    with page.expect_response(lambda r: "tab=items" in r.url):
        page.get_by_role("tab", name=re.compile(r"^Push items")).click()
    expect(page.locator("#items-table")).to_be_visible()
    with page.expect_response(htmx_get(detail, "status=failed")):
        page.get_by_test_id("status-filter").get_by_role(
            "link", name=re.compile(r"^Failed")
        ).click()
    with page.expect_response(lambda r: "tab=config" in r.url):
        page.get_by_role("tab", name="Config").click()
    with page.expect_download() as downloaded:
        page.locator("a.button", has_text="Download").click()
    assert downloaded.value.suggested_filename.endswith(".json")
    _no_errors(page, errors, "sync detail")

    # Retry: the confirmation posts once, and the request's page polls.
    page.goto(f"{detail}retry/")
    with mock.patch.object(run_retry_task, "delay"):
        page.get_by_test_id("confirm-retry").click()
        expect(page).to_have_url(re.compile(r"/retries/\d+/$"))
    request = mirror.RetryRequest.objects.get(sync=failed_sync)
    poll = htmx_get(f"/retries/{request.pk}/", "poll=1")
    with page.expect_response(poll, timeout=POLL_MS):
        pass
    # Out of sight the page asks nothing; back in sight it says so, and polls again.
    page.evaluate(
        """() => {
          window.__polls = [];
          window.__visible = 0;
          const hidden = {configurable: true, get: () => "hidden"};
          Object.defineProperty(document, "visibilityState", hidden);
          document.addEventListener(
            "htmx:beforeRequest", (e) => window.__polls.push(e.defaultPrevented)
          );
          document.addEventListener("page-visible", () => { window.__visible += 1; });
        }"""
    )
    page.wait_for_function("() => window.__polls.length > 0", timeout=POLL_MS)
    assert page.evaluate("() => window.__polls[0]") is True, "a hidden page polled"
    with page.expect_response(poll, timeout=POLL_MS):
        page.evaluate(
            """() => {
              delete document.visibilityState;
              document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
    assert page.evaluate("() => window.__visible") == 1
    _no_errors(page, errors, "retry")

    # Bulk retry: the preview of the failed syncs.
    page.goto(f"/retries/bulk/?range=all&code={code}")
    expect(page).to_have_url(re.compile(r"/retries/bulk/\d+/review/$"))
    _no_errors(page, errors, "bulk retry")

    # Django admin, and django-celery-beat's form (its script moved to a file).
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto("/admin/dashboard/sync/")
    expect(page.locator("#result_list")).to_be_visible()
    page.goto("/admin/django_celery_beat/periodictask/add/")
    expect(page.locator(".field-crontab")).to_be_visible()
    expect(page.locator(".field-crontab_translation")).to_be_hidden()
    _no_errors(page, errors, "admin")


def test_preferences_suggest_the_browsers_zone(browser: Browser, live_server, viewer):
    context = browser.new_context(base_url=live_server.url, timezone_id="Europe/Paris")
    try:
        page = context.new_page()
        errors = watch_for_errors(page)
        login(page, viewer.username)
        page.goto("/preferences/")
        expect(page.locator('select[name="time_zone"]')).to_have_value("Europe/Paris")
        _no_errors(page, errors, "preferences")
    finally:
        context.close()
