"""What support staff do in a real browser, on data mirrored from the live sandbox.

Every wait is on something the page shows (Playwright's `expect`) or on the
response an action causes; nothing sleeps.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from dashboard import models as mirror
from dashboard import retry, selectors, sync_config, vocabulary
from dashboard.tasks import follow_retries_task, run_retry_task
from sandbox import models as sb
from sandbox import services
from tests.support.browser import htmx_get, login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(60)]

RETRY_POLL_MS = 15_000  # the retry page polls every 3 s


def _syncs_in_last_7_days() -> int:
    now = timezone.now()
    return mirror.Sync.objects.filter(
        sync_utc__gte=now - timedelta(days=7), sync_utc__lt=now
    ).count()


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def _range_for_5130() -> tuple[date, date, set[str]]:
    """A custom range that keeps some 5130 syncs and leaves out the oldest day's."""
    days = sorted(
        {
            s.astimezone(UTC).date()
            for s in mirror.Sync.objects.filter(status_code=5130).values_list("sync_utc", flat=True)
        }
    )
    assert len(days) >= 2, "the estate has 5130 syncs on at least two days"
    start, end = days[1], days[-1]
    expected = {
        str(s)
        for s in mirror.Sync.objects.filter(
            status_code=5130,
            sync_utc__date__gte=start,
            sync_utc__date__lte=end,
        ).values_list("sync_id", flat=True)
    }
    everything = set(mirror.Sync.objects.filter(status_code=5130).values_list("sync_id", flat=True))
    assert expected and len(expected) < len(everything), "the range filters something out"
    return start, end, expected


def test_support_flow_from_dashboard_to_history_detail_config_and_csv(page: Page, runner, mirrored):
    login(page, runner.username)

    # The dashboard's totals: the default range is the last 7 days.
    before = _syncs_in_last_7_days()
    page.goto("/")
    total = page.locator('[data-stat="total"] .n')
    expect(total).to_have_text(re.compile(r"^\s*[\d,]+\s*$"))
    shown = _number(total.inner_text())
    after = _syncs_in_last_7_days()
    assert min(before, after) <= shown <= max(before, after), (shown, before, after)
    assert shown > 0
    expect(page.locator(".page-head .muted")).to_contain_text("Last 7 days")

    # History, filtered by status 5130 and a custom date range.
    page.locator("header.topbar").get_by_role("link", name="History", exact=True).click()
    expect(page).to_have_url(re.compile(r"/syncs/$"))
    start, end, expected = _range_for_5130()
    with page.expect_response(htmx_get("/syncs/", "code=5130")):
        page.locator('#history-filters input[name="code"][value="5130"]').check()
    page.locator("#id_start").fill(start.isoformat())
    page.locator("#id_end").fill(end.isoformat())
    with page.expect_response(htmx_get("/syncs/", f"start={start}", f"end={end}")) as done:
        page.locator("#history-filters").get_by_role("button", name="Apply").click()
    assert done.value.ok
    expect(page).to_have_url(re.compile(r"[?&]code=5130(&|$)"))
    expect(page).to_have_url(re.compile(rf"[?&]start={start}(&|$)"))
    filtered_url = page.url
    rows = page.locator("#history-results tbody tr")
    expect(rows).to_have_count(len(expected))
    expect(rows.locator("td:nth-child(4) .badge")).to_have_text(["5130"] * len(expected))
    shown_ids = set(rows.locator("a.mono").all_inner_texts())
    assert shown_ids == expected
    expect(page.get_by_test_id("result-count")).to_have_text(
        f"{len(expected)} sync{'s' if len(expected) != 1 else ''}"
    )

    # Search by a sync ID: exactly that row.
    target = (
        mirror.Sync.objects.filter(sync_id__in=expected, items_failed__gt=0)
        .select_related("company")
        .order_by("-items_total", "pk")
        .first()
    )
    assert target is not None
    sync_id = str(target.sync_id)
    page.locator("#id_q").fill(sync_id)
    with page.expect_response(htmx_get("/syncs/", f"q={sync_id}")):
        page.locator("#id_q").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a.mono")).to_have_text(sync_id)

    # Its detail page.
    rows.first.get_by_role("link", name=sync_id).click()
    expect(page).to_have_url(re.compile(rf"/syncs/{sync_id}/$"))
    expect(page.locator("#sync-id")).to_have_text(sync_id)
    expect(page.locator("#sync-status .badge").first).to_have_text("5130")

    # Push items: every item, then the failed ones, then one core ID.
    tabs = page.get_by_role("tablist")
    tabs.get_by_role("tab", name=re.compile(r"^Push items")).click()
    expect(page).to_have_url(re.compile(r"[?&]tab=items"))
    expect(tabs.get_by_role("tab", name=re.compile(r"^Push items"))).to_have_attribute(
        "aria-selected", "true"
    )
    item_rows = page.locator("#items-table tbody tr")
    expect(item_rows).to_have_count(min(target.items_total, 50))

    failed = list(
        mirror.PushItem.objects.filter(sync=target, status__in=vocabulary.FAILED_ITEM_STATUSES)
        .order_by("id")
        .values_list("transaction_id", "status")
    )
    assert failed and len(failed) < target.items_total
    shown = failed[:50]
    with page.expect_response(htmx_get(f"/syncs/{sync_id}/", "status=failed")):
        page.get_by_test_id("status-filter").get_by_role(
            "link", name=re.compile(r"^Failed")
        ).click()
    expect(item_rows).to_have_count(len(shown))
    expect(item_rows.locator("td:nth-child(4)")).to_have_text(
        [vocabulary.ItemStatus(status).label for _, status in shown]
    )
    expect(item_rows.locator("td:first-child")).to_have_text([str(t) for t, _ in shown])

    push_errors = [t for t, _ in failed]
    core_id = str(push_errors[-1])
    page.locator("#id_q").fill(core_id)
    with page.expect_response(htmx_get(f"/syncs/{sync_id}/", f"q={core_id}")):
        page.locator("#id_q").press("Enter")
    expect(item_rows).to_have_count(1)
    expect(item_rows.first.locator("td").first).to_have_text(core_id)
    expect(page).to_have_url(re.compile(rf"[?&]q={core_id}"))

    prefix = core_id[:8]
    same_prefix = [str(t) for t in push_errors if str(t).startswith(prefix)]
    page.locator("#id_q").fill(prefix)
    with page.expect_response(htmx_get(f"/syncs/{sync_id}/", f"q={prefix}")):
        page.locator("#id_q").press("Enter")
    expect(item_rows.locator("td:first-child")).to_have_text(same_prefix)

    # Config: the download is the snapshot shown, as JSON.
    snapshot = sync_config.for_sync(target).shown
    assert snapshot is not None
    tabs.get_by_role("tab", name="Config").click()
    expect(page).to_have_url(re.compile(r"[?&]tab=config"))
    page.get_by_text("The document as fetched (JSON)").click()
    expect(page.locator("#config-json")).to_be_visible()
    assert json.loads(page.locator("#config-json").inner_text()) == snapshot.config
    with page.expect_download() as download_info:
        page.get_by_test_id("config-download").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".json")
    assert str(target.company.company_id) in download.suggested_filename
    assert json.loads(Path(download.path()).read_text(encoding="utf-8")) == snapshot.config

    # Back on the filtered history: the CSV export holds the same syncs.
    page.goto(filtered_url)
    expect(rows).to_have_count(len(expected))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".csv")
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert {row["sync_id"] for row in table} == expected
    assert len(table) == len(expected)
    assert {row["status_code"] for row in table} == {"5130"}
    truth = {
        str(s.sync_id): s
        for s in mirror.Sync.objects.filter(sync_id__in=expected).select_related("company")
    }
    for row in table:
        sync = truth[row["sync_id"]]
        assert row["company_id"] == str(sync.company.company_id)
        assert row["company"] == sync.company.name
        assert int(row["items"]) == sync.items_total
        assert int(row["items_failed"]) == sync.items_failed


def _open_confirmation(page: Page, sync: mirror.Sync) -> int:
    """From the sync's page, follow its retry button; returns the count shown."""
    page.goto(f"/syncs/{sync.sync_id}/")
    button = page.get_by_test_id("retry-button")
    failed = len(retry.outstanding_item_ids(sync))
    expect(button).to_have_text(f"Retry failed items ({failed})")
    button.click()
    expect(page).to_have_url(re.compile(rf"/syncs/{sync.sync_id}/retry/$"))
    expect(page.get_by_test_id("retry-count")).to_have_text(str(failed))
    return failed


def test_retry_flow_updates_the_page_live_to_completed(page: Page, runner, failed_sync):
    login(page, runner.username)
    count = _open_confirmation(page, failed_sync)
    assert count > 0

    with mock.patch.object(run_retry_task, "delay") as delay:
        page.get_by_test_id("confirm-retry").click()
        expect(page).to_have_url(re.compile(r"/retries/\d+/$"))
    request = mirror.RetryRequest.objects.get(sync=failed_sync)
    delay.assert_called_once_with(request.pk)
    assert page.url.endswith(f"/retries/{request.pk}/")
    state = page.get_by_test_id("retry-state")
    expect(state).to_have_text("Queued")
    expect(page.locator(".messages")).to_contain_text(
        f"Retry of {count} outstanding item(s) queued."
    )
    # A mark that a full page load would wipe out: the updates must come from htmx.
    page.evaluate("() => { window.__sameDocument = true; }")

    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == vocabulary.RetryState.SUBMITTED
    expect(state).to_have_text("Submitted (new sync running)", timeout=RETRY_POLL_MS)
    expect(page.get_by_test_id("new-sync")).to_have_text(str(request.new_sync_id))

    upstream_sync = sb.Sync.objects.get(sync_id=request.new_sync_id)
    assert services.finalize_sync(upstream_sync.pk)
    assert follow_retries_task() == 1
    request.refresh_from_db()
    assert request.state == vocabulary.RetryState.COMPLETED

    expect(state).to_have_text("Completed", timeout=RETRY_POLL_MS)
    expect(page.get_by_test_id("retry-outcome")).to_have_text(
        f"{request.pushed} re-pushed: {request.completed} now complete, "
        f"{request.failed_again} failed again"
    )
    expected = [
        re.compile(r"^pushed in sync ") if o.label == "pushed" else o.label
        for o in retry.outcomes(request)
    ]
    assert len(expected) == request.item_count == count
    expect(page.get_by_test_id("item-outcome")).to_have_text(expected)
    expect(page.locator("#retry-progress .live")).to_have_count(0)  # polling has stopped
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"


def test_double_clicking_confirm_makes_one_retry_request(page: Page, runner, failed_sync):
    login(page, runner.username)
    _open_confirmation(page, failed_sync)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    with mock.patch.object(run_retry_task, "delay") as delay:
        page.get_by_test_id("confirm-retry").dblclick()
        expect(page).to_have_url(re.compile(r"/retries/\d+/$"))
        expect(page.get_by_test_id("retry-state")).to_have_text("Queued")
    assert mirror.RetryRequest.objects.filter(sync=failed_sync).count() == 1
    assert mirror.RetryRequest.objects.count() == 1
    assert delay.call_count == 1
    assert 1 <= len(posts) <= 2, posts


def test_a_viewer_sees_no_retry_button(page: Page, viewer, failed_sync):
    assert failed_sync.items_failed > 0
    login(page, viewer.username)
    page.goto(f"/syncs/{failed_sync.sync_id}/")
    expect(page.locator("#sync-id")).to_have_text(str(failed_sync.sync_id))
    expect(page.locator("#sync-status")).to_contain_text(f"{failed_sync.items_failed} failed")
    expect(page.get_by_test_id("retry-button")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Retry failed items"))).to_have_count(0)
    # The server refuses too, whatever the page shows.
    response = page.goto(f"/syncs/{failed_sync.sync_id}/retry/")
    assert response is not None and response.status == 403
    assert not mirror.RetryRequest.objects.exists()


def test_screenshots_of_dashboard_history_and_sync_detail(page: Page, viewer, failed_sync):
    login(page, viewer.username)
    shots = []
    page.goto("/")
    expect(page.locator('[data-stat="total"] .n')).to_be_visible()
    expect(page.locator("svg.chart")).to_be_visible()
    shots.append(screenshot(page, "dashboard"))

    page.goto("/syncs/?range=all")
    expect(page.locator("#history-results tbody tr")).to_have_count(
        min(mirror.Sync.objects.count(), selectors.PAGE_SIZE)
    )
    shots.append(screenshot(page, "history"))

    page.goto(f"/syncs/{failed_sync.sync_id}/")
    expect(page.locator("#sync-id")).to_have_text(str(failed_sync.sync_id))
    shots.append(screenshot(page, "sync-detail"))

    for path in shots:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", path
        assert len(data) > 10_000, path


# --- regressions found by these tests ---


def test_history_submits_on_apply_or_a_ticked_choice_not_while_typing(page: Page, viewer, mirrored):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.headers.get("hx-request") else None)
    login(page, viewer.username)
    page.goto("/syncs/")
    expect(page.get_by_test_id("result-count")).to_be_visible()
    today = timezone.now().date()
    page.locator("#id_q").fill("Ltd")
    page.locator("#id_start").fill((today - timedelta(days=10)).isoformat())
    page.locator("#id_end").fill(today.isoformat())
    with page.expect_response(htmx_get("/syncs/", "q=Ltd", f"end={today}")):
        page.locator("#history-filters").get_by_role("button", name="Apply").click()
    with page.expect_response(htmx_get("/syncs/", "code=2000")):
        page.locator('#history-filters input[name="code"][value="2000"]').check()
    assert len(sent) == 2, f"one request for Apply, one for the box: {sent}"
    assert not [e for e in console_errors if "htmx:syntax:error" in e], console_errors


def test_choosing_a_preset_after_custom_dates_shows_the_preset(page: Page, viewer, mirrored):
    login(page, viewer.username)
    page.goto("/syncs/")
    today = timezone.now().date()
    page.locator("#id_start").fill((today - timedelta(days=2)).isoformat())
    page.locator("#id_end").fill(today.isoformat())
    with page.expect_response(htmx_get("/syncs/", f"end={today}")):
        page.locator("#history-filters").get_by_role("button", name="Apply").click()
    with page.expect_response(htmx_get("/syncs/", "range=30d")):
        page.locator('#history-filters input[name="range"][value="30d"]').check()
    now = timezone.now()
    last_30_days = mirror.Sync.objects.filter(
        sync_utc__gte=now - timedelta(days=30), sync_utc__lt=now
    ).count()
    # The response has arrived; only its swap is left to wait for.
    expect(page.get_by_test_id("result-count")).to_have_text(f"{last_30_days} syncs", timeout=3_000)
