"""The dashboard, sync detail, company page, CSV export and preferences."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Company, Sync
from dashboard.vocabulary import Category, ItemStatus, note_for
from tests.support.factories import make_company, make_sync

XSS = "<script>alert(1)</script>"


def _stat(body: str, name: str) -> str:
    match = re.search(rf'data-stat="{name}"><span class="n">([^<]+)</span>', body)
    assert match, name
    return match.group(1)


def test_the_dashboard_counts_the_last_seven_days(viewer_client, estate):
    body = viewer_client.get(reverse("summary")).content.decode()
    assert _stat(body, "total") == "5"  # "old" is 20 days back
    assert _stat(body, "success") == "2"
    assert _stat(body, "failed") == "1"
    assert _stat(body, "in_progress") == "2"
    assert _stat(body, "rate") == "66.7%"
    assert _stat(body, "items_pushed") == "3"
    assert _stat(body, "items_failed") == "1"
    assert "<svg" in body and "<rect" in body
    assert 'data-code="5130">1<' in body
    month = viewer_client.get(reverse("summary") + "?range=30d").content.decode()
    assert _stat(month, "total") == "6"


def test_every_dashboard_number_links_to_exactly_what_it_counts(viewer_client, estate):
    body = viewer_client.get(reverse("summary")).content.decode()
    links = re.findall(
        r'<a class="stat[^"]*" href="([^"]+)" data-stat="(\w+)"><span class="n">(\d+)', body
    )
    assert links
    for href, name, count in links:
        if name in ("items_pushed", "items_failed"):
            continue
        history = viewer_client.get(href.replace("&amp;", "&")).content.decode()
        assert re.search(rf">{count} syncs?<", history), (name, href)
    # Items pushed: the range's completed push items themselves, as many as the card says.
    counts = {name: int(count) for _, name, count in links}
    pushed = dict((name, href) for href, name, _ in links)["items_pushed"].replace("&amp;", "&")
    assert pushed.startswith(reverse("items-pushed") + "?") and "status=completed" in pushed
    assert "?&" not in pushed and "&&" not in pushed
    items = viewer_client.get(pushed)
    assert len(items.context["found"].rows) == counts["items_pushed"]
    assert f'href="/syncs/{estate["push_error"].sync_id}/?tab=items&amp;status=completed"' in (
        items.content.decode()
    )
    code_link = re.search(r'href="([^"]+)" data-code="5130"', body).group(1)
    history = viewer_client.get(code_link.replace("&amp;", "&")).content.decode()
    assert str(estate["push_error"].sync_id) in history and ">1 sync<" in history


def test_the_dashboard_lists_top_problems_failing_companies_streaks_and_long_runs(
    viewer_client, estate
):
    from dashboard.models import Problem

    Company.objects.filter(pk=estate["qbo"].pk).update(failing_streak=4)
    body = viewer_client.get(reverse("summary")).content.decode()
    assert "Acme Ltd" in body  # most failed syncs this week
    assert "4 in a row" in body
    assert str(estate["long"].sync_id)[:10] in body
    # The outstanding failure's problem: its cause first, variable parts named.
    assert "Correlation ID: {correlation_id}. Period closed {date}" in body
    assert reverse("problem-detail", args=[Problem.objects.get().pk]) in body


def test_the_detail_shows_the_sync_its_note_and_messages(viewer_client, estate):
    sync = estate["push_error"]
    body = viewer_client.get(reverse("sync-detail", args=[sync.sync_id])).content.decode()
    assert str(sync.sync_id) in body and "Acme Ltd" in body and "Xero" in body
    assert "5130" in body and "Data push error" in body
    assert note_for(5130).next_step.replace("'", "&#x27;") in body
    assert "The account period has closed." in body
    assert "1m 30s" in body  # duration


WRAPPED = (
    "An error occurred in a downstream service. Correlation ID: "
    "0b7f5f7e-6f0c-4e59-9d7a-0d2a3b2c1f00. Message:  "
)


def test_messages_show_their_cause_first_and_the_full_text_one_click_away(viewer_client, db):
    error = WRAPPED + (
        "QuickBooks error 3180: The transaction date 2026-03-04 is prior to the closing date."
    )
    exception = WRAPPED.replace("0b7f", "9e1c") + "Timeout talking to QuickBooks <Desktop>"
    item = WRAPPED + "Tax rate with id '4412' was not found in the company's mapping options."
    sync = make_sync(
        make_company(),
        code=5130,
        error_message=error,
        exception_message=exception,
        items=[(4, item), (4, "Tax rate missing")],
    )
    url = reverse("sync-detail", args=[sync.sync_id])
    body = viewer_client.get(url).content.decode()
    cause = error.removeprefix(WRAPPED)
    assert (
        f'<details class="message-cause"><summary>{cause}</summary><pre>{error}</pre></details>'
        in body
    )
    assert (
        "<summary>Timeout talking to QuickBooks &lt;Desktop&gt;</summary><pre>"
        + exception.replace("<", "&lt;").replace(">", "&gt;")
        + "</pre>"
    ) in body
    items = viewer_client.get(url + "?tab=items").content.decode()
    assert (
        "<summary>Tax rate with id &#x27;4412&#x27; was not found in the company&#x27;s mapping "
        "options.</summary><pre>An error occurred in a downstream service." in items
    )
    assert (
        '<td class="message" data-label="Message">Tax rate missing</td>' in items
    )  # all cause: just the text
    transaction = viewer_client.get(
        reverse("transaction-detail", args=[sync.items.filter(message=item).get().transaction_id])
    ).content.decode()
    assert "<summary>Tax rate with id &#x27;4412&#x27;" in transaction


def test_the_items_tab_searches_filters_and_counts(viewer_client, db):
    company = make_company()
    items = [(3, None)] * 55 + [(4, "Tax rate missing")] * 3
    sync = make_sync(company, code=5130, items=items)
    url = reverse("sync-detail", args=[sync.sync_id])
    body = viewer_client.get(url + "?tab=items").content.decode()
    assert 'All <span class="n">58</span>' in body and 'Failed <span class="n">3</span>' in body
    assert "Page 1 of 2" in body
    failed = viewer_client.get(url + "?tab=items&status=failed").content.decode()
    assert failed.count('<td class="message" data-label="Message">Tax rate missing</td>') == 3
    # A link from before the one filter, naming a status by its number, still works.
    legacy = viewer_client.get(url + "?tab=items&status=4").content.decode()
    assert legacy.count('<td class="message" data-label="Message">Tax rate missing</td>') == 3
    one = sync.items.filter(status=4).first()
    by_id = viewer_client.get(url + f"?tab=items&q={one.transaction_id}").content.decode()
    assert (
        str(one.transaction_id) in by_id
        and by_id.count('<td class="mono" data-label="Core ID">') == 1
    )
    prefix = str(one.transaction_id)[:8]
    assert (
        str(one.transaction_id)
        in viewer_client.get(url + f"?tab=items&q={prefix}").content.decode()
    )
    by_type = viewer_client.get(url + "?tab=items&q=directcosts").content.decode()
    assert (
        by_type.count('<td class="mono" data-label="Core ID">') == 50
    )  # first page of 58 typed items


def test_the_config_tab_downloads_the_snapshot_it_shows(viewer_client, estate):
    sync = estate["push_error"]
    body = viewer_client.get(
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=config"
    ).content.decode()
    assert "&quot;bankAccount&quot;" in body
    # Both snapshots are older than the sync: the latest of them is shown, and is current.
    latest = estate["xero"].configs.order_by("-fetched_at").first()
    assert reverse("config-download", args=[estate["xero"].company_id, latest.pk]) in body
    assert "It is also the company's current configuration." in body
    download = viewer_client.get(
        reverse("config-download", args=[estate["xero"].company_id, latest.pk])
    )
    assert download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"].startswith("attachment;")
    assert json.loads(download.content) == latest.config


def test_a_running_sync_polls_and_a_finished_one_stops_polling(viewer_client, estate):
    running = viewer_client.get(reverse("sync-detail", args=[estate["running"].sync_id]))
    assert "hx-get" in running.content.decode() and "every 5s" in running.content.decode()
    done = viewer_client.get(
        reverse("sync-detail", args=[estate["ok"].sync_id]) + "?poll=1", HTTP_HX_REQUEST="true"
    )
    assert done.status_code == 286


def test_the_retry_chain_is_shown(viewer_client, estate):
    first = estate["push_error"]
    second = make_sync(estate["xero"], code=2000, retry_of=first)
    body = viewer_client.get(reverse("sync-detail", args=[second.sync_id])).content.decode()
    assert str(first.sync_id)[:10] in body
    body = viewer_client.get(reverse("sync-detail", args=[first.sync_id])).content.decode()
    assert str(second.sync_id)[:10] in body


def test_untrusted_text_is_escaped_everywhere(viewer_client, db):
    company = make_company(name=f"Evil {XSS}")
    sync = make_sync(
        company,
        code=5130,
        error_message=f"Failed: {XSS}",
        items=[(4, "<img src=x onerror=alert(1)>")],
    )
    pages = [
        reverse("summary"),
        reverse("sync-history"),
        reverse("sync-detail", args=[sync.sync_id]),
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=items",
        reverse("company-detail", args=[company.company_id]),
    ]
    for url in pages:
        body = viewer_client.get(url).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body, url
        assert "&lt;script&gt;" in body or "&lt;img" in body, url


@pytest.mark.parametrize("counted", [False, True], ids=["live", "from-the-snapshot"])
def test_every_dashboard_table_shows_upstream_text_as_text(viewer_client, db, counted):
    from dashboard import rankings

    evil = make_company(name=f"Evil {XSS} 'q\"", platform_name=f"P {XSS}")
    make_sync(evil, code=5130, error_message=f"Failed: {XSS}", items=[(4, f"Failed: {XSS}")])
    make_sync(evil, code=1010, ago=timedelta(minutes=30))
    Company.objects.filter(pk=evil.pk).update(failing_streak=2, failing_since=timezone.now())
    if counted:
        rankings.refresh()
    body = viewer_client.get(reverse("summary") + "?range=7d").content.decode()
    assert ("Counted at" in body) is counted
    assert "<script>" not in body
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # Failing companies (name and platform), the streak, the long-running sync, and the
    # hidden names of the failed-count and streak links.
    assert body.count(f"Evil {escaped} &#x27;q&quot;") == 5
    assert f"P {escaped}" in body
    # The top problem, its variable parts hidden.
    assert "Failed: &lt;script&gt;alert({number})&lt;/script&gt;" in body
    company_page = reverse("company-detail", args=[evil.company_id])
    assert body.count(f'href="{company_page}"') == 2


def test_the_csv_export_is_exactly_the_filtered_set_and_neutralised(viewer_client, db):
    company = make_company(name='=HYPERLINK("http://evil")')
    wanted = [make_sync(company, code=5130, error_message="@SUM(1)") for _ in range(3)]
    make_sync(company, code=2000)
    response = viewer_client.get(reverse("sync-history-csv") + "?code=5130")
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["sync_id"] for r in rows} == {str(s.sync_id) for s in wanted}
    assert all(r["company"].startswith("'=") for r in rows)
    assert all(r["error_message"] == "'@SUM(1)" for r in rows)
    bad = viewer_client.get(reverse("sync-history-csv") + "?code=abc")
    assert bad.status_code == 400 and b"Invalid filter" in bad.content


def _queries(client, url: str) -> int:
    client.get(url)  # the session's first page also reads the user's time zone into it
    cache.clear()  # each measured request starts cold (the platform list is cached)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("page", ["summary", "history", "items"])
def test_query_counts_do_not_grow_with_the_rows(viewer_client, db, page):
    def build(n: int) -> Sync:
        company = make_company()
        last = None
        for i in range(n):
            other = make_company() if i % 2 else company
            last = make_sync(
                other, code=5130 if i % 3 else 2000, ago=timedelta(hours=i + 1),
                items=[(3, None), (4, f"failed {i}")] * (n // 2 or 1),
                error_message=f"boom {i}",
            )  # fmt: skip
        return last

    def url(sync: Sync) -> str:
        return {
            "summary": reverse("summary"),
            "history": reverse("sync-history"),
            "items": reverse("sync-detail", args=[sync.sync_id]) + "?tab=items",
        }[page]

    small = build(3)
    few = _queries(viewer_client, url(small))
    Sync.objects.all().delete()
    Company.objects.all().delete()
    large = build(40)
    many = _queries(viewer_client, url(large))
    assert few == many


def test_local_time_is_a_per_user_choice(viewer_client, estate):
    response = viewer_client.post(
        reverse("preferences"), {"use_local_time": "on", "time_zone": "Asia/Kolkata"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("summary")
    body = viewer_client.get(reverse("sync-history")).content.decode()
    assert "Times: Asia/Kolkata" in body
    local = estate["ok"].sync_utc.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    assert local.strftime("%Y-%m-%d %H:%M") in body
    bad = viewer_client.post(reverse("preferences"), {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    away = viewer_client.post(
        reverse("preferences"), {"time_zone": "UTC", "next": "https://evil.example/"}
    )
    assert away["Location"] == reverse("summary")


def test_the_time_zone_is_read_once_a_session(viewer, client, estate):
    from dashboard.models import UserPreference

    def zone_shown() -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            body = client.get(reverse("sync-history")).content.decode()
        read = [q["sql"] for q in queries.captured_queries if "userpreference" in q["sql"]]
        return body.split("Times: ", 1)[1].split("<", 1)[0], read

    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone="America/New_York")
    client.force_login(viewer)
    zone, read = zone_shown()
    # The zone's one read; and the visit's mark (new syncs since the last visit), read and
    # written, which the session then answers for a minute.
    assert zone == "America/New_York" and len(read) == 3
    assert [q.split()[0] for q in read] == ["SELECT", "SELECT", "UPDATE"]
    assert "syncs_seen_at" in read[2]
    # Then from the session.
    assert zone_shown() == ("America/New_York", [])
    # The preferences page changes it at once.
    client.post(reverse("preferences"), {"use_local_time": "on", "time_zone": "Asia/Kolkata"})
    assert zone_shown() == ("Asia/Kolkata", [])
    client.post(reverse("preferences"), {"time_zone": "Asia/Kolkata"})
    assert zone_shown() == ("UTC", [])
    # A change made elsewhere (the admin) applies from the next login,
    # also when the same user logs in again without logging out.
    UserPreference.objects.filter(user=viewer).update(use_local_time=True, time_zone="Europe/Paris")
    assert zone_shown()[0] == "UTC"
    client.force_login(viewer)
    assert zone_shown()[0] == "Europe/Paris"
    UserPreference.objects.filter(user=viewer).update(time_zone="Asia/Tokyo")
    client.logout()
    client.force_login(viewer)
    assert zone_shown()[0] == "Asia/Tokyo"


def test_a_new_login_does_not_inherit_the_last_users_zone(viewer, runner, client, db):
    from dashboard.models import UserPreference

    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone="Asia/Tokyo")
    client.force_login(viewer)
    assert "Times: Asia/Tokyo" in client.get(reverse("summary")).content.decode()
    client.force_login(runner)  # a different user in the same browser, without logging out
    assert "Times: UTC" in client.get(reverse("summary")).content.decode()


@pytest.mark.parametrize(("preset", "pattern"), [("24h", "H:i"), ("30d", "M j")])
def test_the_chart_axis_reads_as_the_date_filter_would(viewer, viewer_client, preset, pattern):
    from django.utils import dateformat

    from dashboard.models import UserPreference

    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone="Asia/Kolkata")
    make_sync(make_company(), code=2000, ago=timedelta(hours=3))
    response = viewer_client.get(reverse("summary") + f"?range={preset}")
    body = response.content.decode()
    ticks = response.context["chart"].ticks
    assert 5 <= len(ticks) <= 8
    for tick in ticks:
        # An hour's label leads with its day where the day changes (and at the first).
        assert tick.label.endswith(dateformat.format(tick.start, pattern))
        assert f'text-anchor="middle">{tick.label}</text>' in body
    if pattern == "H:i":
        assert ticks[0].label == dateformat.format(ticks[0].start, "M j H:i")


def test_the_chart_links_each_bar_to_its_day_outcome_and_platform(viewer_client, db):
    company = make_company(platform_name='Sage & "Co"')
    sync = make_sync(company, code=5130, ago=timedelta(days=2))
    body = viewer_client.get(reverse("summary") + "?platform=Sage+%26+%22Co%22").content.decode()
    day = timezone.localtime(sync.sync_utc).strftime("%Y-%m-%d")
    link = (
        f'<a href="/syncs/?range=custom&amp;start={day}&amp;end={day}&amp;category=failed'
        '&amp;platform=Sage%20%26%20%22Co%22" tabindex="-1"><rect class="bad"'
    )
    assert link in body
    assert f"<title>{day}: 1 failed</title>" in body
    # The link opens exactly the bar's syncs.
    history = viewer_client.get(
        f"/syncs/?range=custom&start={day}&end={day}&category=failed&platform=Sage+%26+%22Co%22"
    ).content.decode()
    assert str(sync.sync_id) in history and "1 sync" in history


def test_badges_are_coloured_by_name_not_by_number(viewer_client, db):
    items = [(ItemStatus.COMPLETED, None), (ItemStatus.PUSH_ERROR, "refused")]
    sync = make_sync(make_company(), code=5130, items=items)
    assert sync.category == Category.FAILED
    body = viewer_client.get(
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=items"
    ).content.decode()
    assert 'class="badge cat-failed"' in body
    assert 'class="badge item-completed"' in body and 'class="badge item-push-error"' in body
    assert not re.search(r"(cat|item)-\d", body)
    css = (settings.BASE_DIR / "static/css/app.css").read_text()
    for name in ("cat-failed", "cat-success", "cat-in-progress", "item-push-error", "item-pending"):
        assert f".{name}" in css
