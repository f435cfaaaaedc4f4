"""What the open pages poll for: the history's "N new syncs — show", the dashboard's totals,
the syncs new since the last visit, and the first import's banner."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from dashboard import live
from dashboard.filters import encode_cursor
from dashboard.forms import SyncFilterForm
from dashboard.models import RefreshState, UserPreference
from dashboard.selectors import history_page
from tests.support.factories import make_company, make_sync

HTMX = {"HX-Request": "true"}
NEW = reverse("sync-history-new")


def _watch(body: str) -> str | None:
    """The query the history's new-syncs region polls with, if the page has one."""
    found = re.search(r'id="new-syncs"[^>]* hx-get="([^"]+)"', body)
    return html.unescape(found.group(1)) if found else None


def _history(client, query: str = "") -> str:
    response = client.get(reverse("sync-history") + "?" + query)
    assert response.status_code == 200
    return response.content.decode()


def _new_bar(client, url: str) -> str:
    response = client.get(url, headers=HTMX)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    return re.sub(r"<[^>]+>", "", response.content.decode()).strip()


@pytest.fixture
def companies(db):
    return make_company(name="Acme", platform_name="Xero"), make_company(
        name="Globex", platform_name="Sage"
    )


def test_the_history_counts_the_new_syncs_its_filters_select(viewer_client, companies):
    xero, sage = companies
    make_sync(xero, code=5130, ago=timedelta(hours=3))
    top = make_sync(xero, code=5130, ago=timedelta(hours=2))
    page = _history(viewer_client, "category=failed&platform=Xero")
    watch = _watch(page)
    assert watch is not None and watch.startswith(NEW)
    params = parse_qs(urlsplit(watch).query)
    assert params["category"] == ["failed"] and params["platform"] == ["Xero"]
    assert _new_bar(viewer_client, watch) == ""

    for _ in range(3):
        make_sync(xero, code=5130, ago=timedelta(minutes=5))
    make_sync(xero, code=2000, ago=timedelta(minutes=5))  # another category
    make_sync(sage, code=5130, ago=timedelta(minutes=5))  # another platform
    make_sync(xero, code=5130, ago=timedelta(hours=2, minutes=1))  # below the top row
    # The same start as the top row: above it only with a greater id (the order's tie-break).
    make_sync(xero, code=5130, sync_utc=top.sync_utc)
    assert _new_bar(viewer_client, watch) == "4 new syncs — show the new syncs"
    unfiltered = _watch(_history(viewer_client, ""))
    assert unfiltered is not None and _new_bar(viewer_client, unfiltered) == ""


def test_show_loads_the_first_page_with_the_same_filters(viewer_client, companies):
    xero, _ = companies
    make_sync(xero, code=5130, ago=timedelta(hours=2))
    watch = _watch(_history(viewer_client, "category=failed&range=30d"))
    fresh = make_sync(xero, code=5130, ago=timedelta(minutes=1))
    response = viewer_client.get(watch, headers=HTMX)
    link = re.search(r'hx-get="([^"]+)"', response.content.decode())
    assert link is not None
    first_page = html.unescape(link.group(1))
    assert urlsplit(first_page).path == reverse("sync-history")
    params = parse_qs(urlsplit(first_page).query)
    assert params == {"category": ["failed"], "range": ["30d"]}
    assert 'aria-live="polite"' in _history(viewer_client, "category=failed")
    shown = viewer_client.get(first_page, headers=HTMX).content.decode()
    assert str(fresh.sync_id) in shown
    # The fresh page watches above its own (new) top row: nothing new any more.
    assert _new_bar(viewer_client, _watch(shown)) == ""


def test_an_empty_page_counts_every_sync_that_comes(viewer_client, companies):
    xero, _ = companies
    watch = _watch(_history(viewer_client, "platform=Xero"))
    assert watch is not None and "newest" not in watch
    make_sync(xero, ago=timedelta(minutes=1))
    assert _new_bar(viewer_client, watch) == "1 new sync — show the new sync"


def test_the_count_stops_at_its_bound(viewer_client, companies, monkeypatch):
    xero, _ = companies
    make_sync(xero, ago=timedelta(hours=2))
    watch = _watch(_history(viewer_client))
    monkeypatch.setattr(live, "NEW_SYNCS_BOUND", 3)
    for _ in range(3):
        make_sync(xero, ago=timedelta(minutes=1))
    assert _new_bar(viewer_client, watch) == "3 new syncs — show the new syncs"
    make_sync(xero, ago=timedelta(minutes=1))
    assert _new_bar(viewer_client, watch) == "3+ new syncs — show the new syncs"


def test_the_count_is_one_bounded_probe(viewer_client, companies, django_assert_max_num_queries):
    xero, _ = companies
    make_sync(xero, ago=timedelta(hours=2))
    watch = _watch(_history(viewer_client))
    for _ in range(5):
        make_sync(xero, ago=timedelta(minutes=1))
    # The session, the user, their permissions (two), and the count.
    with django_assert_max_num_queries(5) as counted:
        _new_bar(viewer_client, watch)
    probe = [q["sql"] for q in counted.captured_queries if "dashboard_sync" in q["sql"]]
    assert len(probe) == 1 and "LIMIT 51" in probe[0]


def test_only_the_first_page_newest_first_watches(viewer_client, companies):
    xero, _ = companies
    for hours in range(1, 4):
        make_sync(xero, ago=timedelta(hours=hours))
    assert _watch(_history(viewer_client)) is not None
    assert _watch(_history(viewer_client, "sort=company")) is None
    assert _watch(_history(viewer_client, "dir=asc")) is None
    cursor = history_page(_form_filters("")).rows[0]
    after = encode_cursor(cursor.sync_utc.isoformat(), cursor.pk)
    assert _watch(_history(viewer_client, f"after={after}")) is None
    # Asked anyway (a page left open across a deploy): nothing, and stop asking.
    for query in ("sort=company", "dir=asc", f"after={after}"):
        response = viewer_client.get(f"{NEW}?{query}", headers=HTMX)
        assert response.status_code == 286 and response.content == b""


def _form_filters(query: str):
    form = SyncFilterForm(QueryDict(query))
    assert form.is_valid()
    return form.filters()


def test_bad_input_gets_a_clear_400(viewer_client, companies):
    for query, says in (
        ("newest=not-a-mark", "newest sync shown is not valid"),
        ("newest=WzEsMl0", "newest sync shown is not valid"),  # [1,2]: not a time
        ("range=bogus", "Invalid filter"),
        ("problem=999999", "There is no problem #999999"),
    ):
        response = viewer_client.get(f"{NEW}?{query}", headers=HTMX)
        assert response.status_code == 400, query
        assert says in response.content.decode()
    assert viewer_client.get(reverse("summary-live") + "?start=nope").status_code == 400


def test_the_pages_poll_while_visible_with_the_configured_interval(
    viewer_client, companies, settings
):
    settings.LIVE_POLL_SECONDS = 7
    make_sync(companies[0], ago=timedelta(hours=1))
    for body in (_history(viewer_client), viewer_client.get(reverse("summary")).content.decode()):
        # app.js holds back a data-poll request while the tab is hidden; `page-visible`
        # catches up once it shows again. No eval: the policy forbids it.
        assert 'hx-trigger="every 7s, page-visible from:document"' in body
        assert "data-poll" in body and "visibilityState" not in body


# --- the dashboard's totals ---


def test_the_dashboard_totals_come_again_with_what_changed(viewer_client, companies):
    xero, sage = companies
    make_sync(xero, code=5130, ago=timedelta(hours=2), items=[(4, "The period is closed.")])
    page = viewer_client.get(reverse("summary") + "?range=24h&platform=Xero").content.decode()
    poll = re.search(r'id="range-totals"[^>]* hx-get="([^"]+)"', page)
    assert poll is not None
    url = html.unescape(poll.group(1))
    assert urlsplit(url).path == reverse("summary-live")
    make_sync(xero, code=2000, ago=timedelta(minutes=3))
    make_sync(sage, code=2000, ago=timedelta(minutes=3))  # another platform
    response = viewer_client.get(url, headers=HTMX)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert re.search(r'data-stat="total"><span class="n">2</span>', body)
    assert re.search(r'data-stat="success"><span class="n">1</span>', body)
    # "Outstanding now" and the new-since line are swapped in beside the totals.
    assert 'id="outstanding-now" aria-label="Outstanding now" hx-swap-oob="true"' in body
    assert re.search(r'data-stat="outstanding_items"><span class="n">1</span>', body)
    assert '<p class="arrived" id="arrived" data-testid="arrived" hx-swap-oob="true">' in body
    assert "<html" not in body


# --- new since the last visit ---


def test_syncs_that_arrived_since_the_last_visit_are_marked_new(viewer_client, viewer, companies):
    xero, _ = companies
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        seen = make_sync(xero, code=2000, ago=timedelta(minutes=30))
        first = _history(viewer_client)
        # A first visit: nothing to compare with, nothing marked.
        assert 'data-testid="new-sync"' not in first and 'data-testid="since"' not in first
        dashboard = viewer_client.get(reverse("summary")).content.decode()
        assert 'data-testid="arrived-count"' not in dashboard
    assert UserPreference.objects.get(user=viewer).syncs_seen_at == start

    with time_machine.travel(start + timedelta(minutes=45), tick=False):
        # Mirrored after the visit, though it started before the one seen.
        late = make_sync(xero, code=5130, ago=timedelta(hours=3))
        fresh = make_sync(xero, code=2000, ago=timedelta(minutes=5))
        body = _history(viewer_client, "range=all")
        assert 'data-testid="since"' in body
        rows = {
            sync_id: 'data-testid="new-sync"' in row
            for row in body.split("<tr>")[1:]
            if (found := re.search(r'href="/syncs/([0-9a-f-]{36})/"', row))
            for sync_id in [found.group(1)]
        }
        assert rows == {str(seen.sync_id): False, str(late.sync_id): True, str(fresh.sync_id): True}
        # The dashboard of the same visit counts them, the failed one too.
        dashboard = viewer_client.get(reverse("summary")).content.decode()
        arrived = dashboard.split('data-testid="arrived"', 1)[1].split("</p>", 1)[0]
        assert 'data-testid="arrived-count">2 syncs</a>, 1 failed' in arrived
        # The visit goes on: its next pages compare with the same look.
        assert _history(viewer_client, "range=all").count('data-testid="new-sync"') == 2

    with time_machine.travel(start + timedelta(minutes=90), tick=False):
        # A visit later: what the last one showed is not new any more.
        assert 'data-testid="new-sync"' not in _history(viewer_client, "range=all")
        dashboard = viewer_client.get(reverse("summary")).content.decode()
        assert "Nothing new since your last visit" in dashboard


def test_polling_is_not_a_visit(viewer_client, viewer, companies):
    xero, _ = companies
    make_sync(xero, ago=timedelta(hours=1))
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        watch = _watch(_history(viewer_client))
    seen = UserPreference.objects.get(user=viewer).syncs_seen_at
    with time_machine.travel(start + timedelta(minutes=40), tick=False):
        viewer_client.get(watch, headers=HTMX)
        viewer_client.get(reverse("summary-live"), headers=HTMX)
    assert UserPreference.objects.get(user=viewer).syncs_seen_at == seen


# --- the first import ---


def _banner(client) -> str | None:
    body = client.get(reverse("retry-audit")).content.decode()
    found = re.search(r'<div class="import-banner".*?</div>', body, re.S)
    return found.group(0) if found else None


def test_the_first_import_banner_follows_the_companies_read(viewer_client, db):
    assert _banner(viewer_client) is None  # no company known yet: nothing to import
    companies = [make_company() for _ in range(4)]
    cache.clear()
    banner = _banner(viewer_client)
    assert banner is not None
    assert 'data-testid="first-import-count">0 of 4</span> companies read' in banner
    assert '<progress max="4" value="0"' in banner
    assert 'hx-get="/live/first-import/"' in banner and "style=" not in banner

    now = timezone.now()
    RefreshState.objects.create(company=companies[0], last_success=now)
    RefreshState.objects.create(company=companies[1], last_success=now)
    RefreshState.objects.create(company=companies[2], last_error="503", last_error_at=now)
    RefreshState.objects.create(company=companies[3])  # begun, not finished
    cache.clear()
    response = viewer_client.get(reverse("first-import"), headers=HTMX)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert "2 of 4</span> companies read, 1 could not be read yet" in body
    assert '<progress max="4" value="3"' in body

    RefreshState.objects.filter(company=companies[3]).update(last_success=now)
    cache.clear()
    done = viewer_client.get(reverse("first-import"), headers=HTMX)
    # Done: nothing to show, and htmx stops asking.
    assert done.status_code == 286 and done.content == b""
    assert _banner(viewer_client) is None


def test_the_banner_is_read_once_per_poll_interval(viewer_client, db, django_assert_num_queries):
    make_company()
    viewer_client.get(reverse("retry-audit"))
    with django_assert_num_queries(0):
        live.first_import()
    cache.clear()
    with django_assert_num_queries(1):
        assert live.first_import().running


def test_nobody_without_a_role_sees_the_banner(client, db):
    from tests.support.users import make_user

    make_company()
    assert "import-banner" not in client.get(reverse("login")).content.decode()
    client.force_login(make_user("nobody"))
    refused = client.get(reverse("retry-audit"))
    assert refused.status_code == 403 and "import-banner" not in refused.content.decode()
