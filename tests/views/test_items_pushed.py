"""The push items of a date range: what the dashboard's "items pushed" opens."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import cursors, pushed_items
from dashboard.models import PushItem, Sync
from dashboard.vocabulary import FAILED_ITEM_STATUSES, ItemStatus
from tests.support.factories import make_company, make_sync

PAGE = reverse("items-pushed")
HOSTILE = "<script>alert(1)</script>"
COMPLETED, FAILED, PENDING = ItemStatus.COMPLETED, ItemStatus.PUSH_ERROR, ItemStatus.PENDING


def _get(client, query: str = "", status: int = 200):
    response = client.get(PAGE + ("?" + query if query else ""))
    assert response.status_code == status, response.content.decode()[:3000]
    return response


def _pks(response) -> list[int]:
    return [item.pk for item, _group in response.context["found"].rows]


def _next(body: str) -> str | None:
    found = re.search(r'rel="next" href="\?([^"]+)"', body)
    return html.unescape(found.group(1)) if found else None


def _expected(*, since: timedelta = timedelta(days=7), statuses=None, platform: str = "") -> list:
    """Every item of the range, as the page orders them, read whole (what the page never does)."""
    items = PushItem.objects.filter(sync__sync_utc__gte=timezone.now() - since)
    if statuses is not None:
        items = items.filter(status__in=statuses)
    if platform:
        items = items.filter(sync__platform_name=platform)
    return list(items.order_by("-sync__sync_utc", "-sync_id", "pk").values_list("pk", flat=True))


@pytest.fixture
def estate(db):
    """Two companies on two platforms, syncs with items of every kind, one outside the week."""
    acme = make_company(name="Acme Ltd", platform_name="Xero")
    globex = make_company(name="Globex <Inc>", platform_name="QuickBooks Online")
    return {
        "acme": acme,
        "globex": globex,
        "recent": make_sync(
            acme,
            code=5130,
            ago=timedelta(hours=1),
            items=[
                (COMPLETED, None),
                (FAILED, "Message: The account period has closed."),
                (PENDING, None),
            ],
        ),
        "globex_ok": make_sync(
            globex, code=2000, ago=timedelta(hours=3), items=[(COMPLETED, None), (COMPLETED, None)]
        ),
        "day_old": make_sync(acme, code=2000, ago=timedelta(hours=30), items=[(COMPLETED, None)]),
        "empty": make_sync(acme, code=2040, ago=timedelta(hours=4)),
        "old": make_sync(acme, code=2000, ago=timedelta(days=20), items=[(COMPLETED, None)]),
    }


def test_the_dashboard_tile_opens_the_completed_items_of_its_range_and_platform(
    viewer_client, estate
):
    body = viewer_client.get(reverse("summary") + "?range=24h&platform=Xero").content.decode()
    tile = re.search(
        r'<a class="stat" href="([^"]+)" data-stat="items_pushed"><span class="n">(\d+)', body
    )
    assert tile, "the tile links somewhere"
    href, count = html.unescape(tile.group(1)), int(tile.group(2))
    assert href.startswith(PAGE + "?")
    assert "range=24h" in href and "platform=Xero" in href and "status=completed" in href
    assert "sort=items" not in href
    response = viewer_client.get(href)
    assert response.status_code == 200
    assert _pks(response) == _expected(
        since=timedelta(hours=24), statuses=[COMPLETED], platform="Xero"
    )
    assert len(_pks(response)) == count == 1
    page = response.content.decode()
    assert "1 item completed, 1 failed" in page and "on Xero" in page
    # The range picker shows the range the dashboard had.
    assert re.search(r'name="range" value="24h"\s+checked', page)
    assert 'href="/?range=24h&amp;platform=Xero" data-testid="back-to-dashboard"' in page


def test_it_lists_the_items_of_the_range_newest_sync_first_with_their_links(viewer_client, estate):
    response = _get(viewer_client)
    assert _pks(response) == _expected()
    body = response.content.decode()
    recent = estate["recent"]
    failed = recent.items.get(status=FAILED)
    assert f'href="/syncs/{recent.sync_id}/?tab=items"' in body
    assert f'href="/transactions/{failed.transaction_id}/"' in body
    assert f'href="/companies/{estate["acme"].company_id}/"' in body
    assert "The account period has closed." in body
    assert '<tbody data-rows="td.mono a">' in body and 'data-label="Core ID"' in body
    assert "the range holds no older ones" in body
    assert 'rel="next"' not in body and "« Newest" not in body


def test_the_status_filter_shows_only_items_of_that_status(viewer_client, estate):
    failed = _get(viewer_client, "status=failed")
    assert _pks(failed) == _expected(statuses=FAILED_ITEM_STATUSES) != []
    body = failed.content.decode()
    # The sync's link opens its Push items tab on the same filter.
    assert f'href="/syncs/{estate["recent"].sync_id}/?tab=items&amp;status=failed"' in body
    assert re.search(r'aria-current="true">Failed <span class="n">1</span>', body)
    assert _pks(_get(viewer_client, "status=pending")) == _expected(statuses=[PENDING]) != []
    assert _pks(_get(viewer_client, "status=completed")) == _expected(statuses=[COMPLETED])
    assert _pks(_get(viewer_client, "status=unknown")) == []
    refused = _get(viewer_client, "status=broken", status=400).content.decode()
    assert "is not a status filter" in refused and 'data-testid="pushed-item"' not in refused


@pytest.mark.parametrize(
    "query", ["", "status=failed", "status=completed", "status=pending", "platform=Xero"]
)
def test_the_pages_walk_every_item_once_across_syncs_and_stretches(
    viewer_client, db, monkeypatch, query
):
    monkeypatch.setattr(pushed_items, "PAGE_SIZE", 4)
    monkeypatch.setattr(pushed_items, "SCAN", 5)
    companies = [make_company(platform_name="Xero"), make_company(platform_name="Sage")]
    shapes = [
        [COMPLETED] * 7,
        [FAILED, COMPLETED, PENDING],
        [],
        [COMPLETED],
        [FAILED] * 5 + [COMPLETED] * 2,
        [PENDING, PENDING],
        [COMPLETED, FAILED],
        [],
        [COMPLETED] * 3,
    ]
    syncs = []
    for n, shape in enumerate(shapes * 3):
        syncs.append(
            make_sync(
                companies[n % 2],
                ago=timedelta(hours=1 + n),
                items=[(status, f"item {n}") for status in shape],
            )
        )
    # Syncs that started at the same moment: ordered by their pk, within and across pages.
    Sync.objects.filter(pk__in=[s.pk for s in syncs[3:7]]).update(sync_utc=syncs[3].sync_utc)
    seen: list[int] = []
    stopped = 0
    following: str | None = query
    pages = 0
    while following is not None:
        response = _get(viewer_client, following)
        found = response.context["found"]
        assert len(found.rows) <= 4 and found.examined <= 5
        stopped += found.stopped
        seen += _pks(response)
        following = _next(response.content.decode())
        pages += 1
        assert pages < 100
    params = dict(p.split("=") for p in query.split("&") if p)
    statuses = {
        "failed": FAILED_ITEM_STATUSES,
        "completed": [COMPLETED],
        "pending": [ItemStatus.PENDING, ItemStatus.UNKNOWN],
    }.get(params.get("status", ""))
    assert seen == _expected(statuses=statuses, platform=params.get("platform", ""))
    if params.get("status") in ("failed", "pending"):
        assert stopped, "some page ran out of syncs before it filled, and said so"


def test_a_page_that_stops_early_says_how_far_back_it_looked(viewer_client, db, monkeypatch):
    monkeypatch.setattr(pushed_items, "SCAN", 2)
    company = make_company()
    for n in range(5):
        make_sync(company, ago=timedelta(hours=n + 1), items=[(COMPLETED, None)])
    body = _get(viewer_client, "status=failed").content.decode()
    assert "Looked at the 2 syncs most recent in the range back to" in body
    assert "None in these syncs." in body
    following = _next(body)
    assert following and "Look at the next 2 syncs" in body
    second = _get(viewer_client, following).content.decode()
    assert "« Newest" in second and "Looked at the 2 syncs from " in second
    last = _get(viewer_client, _next(second) or "").content.decode()
    assert "0 failed items of syncs started at or before" in last
    assert "the range holds no older ones" in last and _next(last) is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=bogus", "Select a valid choice. bogus is not one of the available choices."),
        ("start=2026-03-05&end=2026-03-01", "The start date must not be after the end date."),
        ("start=1999-12-31", "Enter a date in 2000 or later."),
        ("after=not-a-cursor", "That page link is not valid; start from the newest."),
        ("after=" + cursors.encode(timezone.now(), 1), "That page link is not valid"),
        ("after=" + cursors.encode("x", 1, 2), "That page link is not valid"),
        ("after=" + cursors.encode(timezone.now(), 2**64, 2), "That page link is not valid"),
        ("platform=Nowhere", "Select a valid choice."),
    ],
    # Named, not by their text: a cursor's time differs from one test process to the next.
    ids=[
        "range",
        "order",
        "too-early",
        "not-a-cursor",
        "short-cursor",
        "cursor-of-text",
        "cursor-too-big",
        "platform",
    ],
)
def test_a_bad_range_or_page_link_says_why_instead_of_failing(
    viewer_client, estate, query, message
):
    body = _get(viewer_client, query, status=400).content.decode()
    assert "Some filters are not valid" in body
    assert html.escape(message).replace("&#x27;", "'") in body.replace("&#x27;", "'")
    assert 'data-testid="pushed-item"' not in body


def test_the_history_refuses_the_same_range_with_the_same_words(viewer_client, estate):
    for query in ("range=bogus", "start=2026-03-05&end=2026-03-01"):
        history = viewer_client.get(reverse("sync-history") + "?" + query)
        items = _get(viewer_client, query, status=400)
        assert history.status_code == 400
        assert (
            history.context["form"].errors["__all__" if "start" in query else "range"]
            == (items.context["form"].errors["__all__" if "start" in query else "range"])
        )


def test_upstream_text_shows_as_text(viewer_client, db):
    company = make_company(name=f"Evil {HOSTILE}")
    make_sync(company, code=5130, items=[(FAILED, f"Message: {HOSTILE}"), (COMPLETED, HOSTILE)])
    body = _get(viewer_client).content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert body.count('data-testid="pushed-item"') == 2


def _queries(client, query: str = "") -> int:
    with CaptureQueriesContext(connection) as context:
        _get(client, query)
    return len(context.captured_queries)


def test_the_queries_do_not_grow_with_the_estate_or_the_page(viewer_client, db, monkeypatch):
    company = make_company()
    make_sync(company, code=5130, items=[(FAILED, "Tax rate missing"), (COMPLETED, None)])
    _get(viewer_client)  # the session, the platforms' cache
    small = _queries(viewer_client)
    small_failed = _queries(viewer_client, "status=failed")
    for n in range(30):
        make_sync(
            make_company(),
            code=5130,
            ago=timedelta(minutes=n + 5),
            items=[(FAILED, f"Tax rate {n} missing")] * 3 + [(COMPLETED, None)] * 3,
        )
    assert _queries(viewer_client) == small
    assert _queries(viewer_client, "status=failed") == small_failed
    monkeypatch.setattr(pushed_items, "PAGE_SIZE", 7)
    first = _get(viewer_client)
    assert len(first.context["found"].rows) == 7
    assert _queries(viewer_client, _next(first.content.decode()) or "") <= small + 1
    monkeypatch.setattr(pushed_items, "PAGE_SIZE", 100)
    assert _queries(viewer_client) <= small + 1
    assert small <= 14
    # The items are read by their syncs' keys, never by the range.
    with CaptureQueriesContext(connection) as context:
        _get(viewer_client, "status=failed")
    reads = [q["sql"] for q in context.captured_queries if 'FROM "dashboard_pushitem"' in q["sql"]]
    assert reads and all('"dashboard_pushitem"."sync_id" IN (' in sql for sql in reads)
    assert not any("COUNT(" in sql for sql in reads)


def test_it_needs_a_role_that_may_see_push_items(client, db, django_user_model):
    assert client.get(PAGE).status_code == 302
    nobody = django_user_model.objects.create_user("nobody", password="x")
    client.force_login(nobody)
    assert client.get(PAGE).status_code == 403
