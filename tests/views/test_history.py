"""The sync history: search, filters, sorting, keyset pages, htmx partials."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.forms import SyncFilterForm
from dashboard.selectors import history_page
from tests.support.factories import make_company, make_sync


def _ids(response) -> list[str]:
    import re

    return re.findall(r'class="mono" href="/syncs/([0-9a-f-]{36})/"', response.content.decode())


def _get(client, query: str):
    response = client.get(reverse("sync-history") + "?" + query)
    assert response.status_code == 200
    return response


def test_the_default_range_is_the_last_seven_days(viewer_client, estate):
    shown = set(_ids(_get(viewer_client, "")))
    assert str(estate["ok"].sync_id) in shown
    assert str(estate["old"].sync_id) not in shown
    assert str(estate["old"].sync_id) in set(_ids(_get(viewer_client, "range=30d")))


@pytest.mark.parametrize(
    "query_of, expected",
    [
        (lambda e: f"q={e['push_error'].sync_id}", ["push_error"]),
        (lambda e: f"q={e['qbo'].company_id}&range=all", ["running", "long", "old", "empty"]),
        (lambda e: f"q={str(e['xero'].company_id)[:8]}", ["ok", "push_error"]),
        (lambda e: "q=glob", ["running", "long", "empty"]),
        (lambda e: "code=5130&code=2000", ["ok", "push_error"]),
        (lambda e: "category=failed&range=all", ["push_error", "old"]),
        (lambda e: "category=in_progress", ["running", "long"]),
        (lambda e: "platform=QuickBooks+Online", ["running", "long", "empty"]),
        (lambda e: "failed_items=on&range=all", ["push_error"]),
        (lambda e: f"company={e['xero'].company_id}&range=all", ["ok", "push_error"]),
        (lambda e: f"fingerprint={e['push_error'].error_fingerprint}", ["push_error"]),
    ],
)
def test_each_filter_selects_exactly_its_syncs(viewer_client, estate, query_of, expected):
    shown = set(_ids(_get(viewer_client, query_of(estate))))
    assert shown == {str(estate[name].sync_id) for name in expected}


def test_a_custom_date_range_is_inclusive_of_both_days(viewer_client, estate):
    day = (timezone.now() - timedelta(days=20)).date()
    shown = set(_ids(_get(viewer_client, f"range=custom&start={day}&end={day}")))
    assert shown == {str(estate["old"].sync_id)}


@pytest.mark.parametrize("sort", ["time", "company", "platform", "status", "items", "duration"])
def test_every_column_sorts_both_ways(viewer_client, estate, sort):
    down = _ids(_get(viewer_client, f"range=all&sort={sort}&dir=desc"))
    up = _ids(_get(viewer_client, f"range=all&sort={sort}&dir=asc"))
    assert len(down) == len(up) == 6
    assert set(down) == set(up)
    if sort == "time":
        assert down == list(reversed(up))
        assert down[0] == str(estate["running"].sync_id)


def _walk(client, url: str, pages: int = 5) -> list[str]:
    """The sync IDs of every page, following the "Next page" links."""
    import re

    seen: list[str] = []
    for _ in range(pages):
        response = client.get(url)
        seen += _ids(response)
        match = re.search(r'<a rel="next" href="([^"]+)"', response.content.decode())
        if not match:
            break
        url = reverse("sync-history") + match.group(1).replace("&amp;", "&")
    return seen


def test_keyset_pages_show_every_sync_once_in_order(viewer_client, db):
    company = make_company(name="Many")
    syncs = [make_sync(company, ago=timedelta(minutes=n)) for n in range(1, 121)]
    expected = [str(s.sync_id) for s in syncs]  # newest first
    assert _walk(viewer_client, reverse("sync-history")) == expected


def test_an_htmx_request_gets_only_the_results_and_the_response_varies_on_it(viewer_client, estate):
    full = viewer_client.get(reverse("sync-history"))
    partial = viewer_client.get(reverse("sync-history"), HTTP_HX_REQUEST="true")
    assert "<html" in full.content.decode()
    body = partial.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div id="history-results">')
    assert "HX-Request" in full["Vary"]


def _cursor(value: object) -> str:
    """A page link's cursor holding any JSON value: what a forged or stale link carries."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "query, message",
    [
        ("range=custom&start=2026-11-10&end=2026-11-01", "start date must not be after"),
        ("start=2026-13-45", "Enter a valid date"),
        ("start=0001-01-01", "Enter a date in 2000 or later"),
        ("end=9999-12-31", "Enter a date in 2999 or earlier"),
        ("range=custom&start=2026-01-01&end=9999-12-31", "Enter a date in 2999 or earlier"),
        ("start=9999-12-31", "Enter a date in 2999 or earlier"),
        ("code=9999", "Select a valid choice"),
        ("code=abc", "Select a valid choice"),
        ("sort=evil", "Select a valid choice"),
        ("dir=sideways", "Select a valid choice"),
        ("after=garbage!!", "page link is not valid"),
        ("q=" + "x" * 1000, "at most 200 characters"),
        ("platform=Nonexistent", "Select a valid choice"),
        ("fingerprint=xyz", "error group is not valid"),
        ("company=not-a-uuid", "Enter a valid UUID"),
    ],
)
def test_invalid_filters_get_a_clear_message_never_a_500(viewer_client, estate, query, message):
    response = viewer_client.get(reverse("sync-history") + "?" + query)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Some filters are not valid" in body
    assert message in body
    assert "<tbody>" not in body


@pytest.mark.parametrize(
    "sort, value",
    [
        pytest.param("items", ["abc", 1], id="text-for-a-number"),
        pytest.param("status", [1.5, 1], id="fraction-for-a-number"),
        pytest.param("items", [True, 1], id="boolean-for-a-number"),
        pytest.param("items", [10**22, 1], id="number-no-column-holds"),
        pytest.param("items", [None, 1], id="null-where-no-value-is-null"),
        pytest.param("company", [1, 1], id="number-for-text"),
        pytest.param("time", ["2026-02-31T10:00:00+00:00", 1], id="impossible-date"),
        pytest.param("time", ["2026-02-03T10:00:00", 1], id="time-without-offset"),
        pytest.param("time", ["9999-12-31T23:59:59-01:00", 1], id="time-past-the-calendar"),
        pytest.param("time", [{"a": 1}, 1], id="object-for-a-time"),
        pytest.param("time", ["2026-02-03T10:00:00+00:00", "1"], id="text-for-the-id"),
        pytest.param("time", ["2026-02-03T10:00:00+00:00", 2**63], id="id-no-column-holds"),
        pytest.param("time", ["2026-02-03T10:00:00+00:00", 1, 2], id="three-parts"),
        pytest.param("time", ["2026-02-03T10:00:00+00:00"], id="one-part"),
        pytest.param("time", "2026-02-03T10:00:00+00:00", id="not-a-list"),
        pytest.param("company", ["\u0000", 1], id="text-with-a-nul"),
    ],
)
def test_a_forged_page_link_asks_to_start_from_the_first_page(viewer_client, estate, sort, value):
    response = viewer_client.get(reverse("sync-history") + f"?sort={sort}&after={_cursor(value)}")
    assert response.status_code == 400
    body = response.content.decode()
    assert "That page link is not valid; start from the first page." in body
    assert "<tbody>" not in body


def test_a_page_link_of_another_sort_is_refused_not_misread(viewer_client, db):
    company = make_company(name="Acme Ltd")
    for _ in range(2):
        make_sync(company, code=2000)
    form = SyncFilterForm({"sort": "company"})
    assert form.is_valid()
    by_company = history_page(form.filters(), size=1).next_cursor
    assert by_company is not None

    same_sort = viewer_client.get(reverse("sync-history") + f"?sort=company&after={by_company}")
    other_sort = viewer_client.get(reverse("sync-history") + f"?sort=items&after={by_company}")

    assert same_sort.status_code == 200
    assert other_sort.status_code == 400
    assert "page link is not valid" in other_sort.content.decode()


def test_an_htmx_swap_of_invalid_filters_still_gets_the_message(viewer_client, estate):
    # htmx does not swap an error's body in, so the partial answers 200.
    response = viewer_client.get(
        reverse("sync-history") + "?end=9999-12-31", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "Enter a date in 2999 or earlier" in response.content.decode()


def test_invalid_filters_on_the_dashboard_show_the_message_too(viewer_client, estate):
    response = viewer_client.get(reverse("summary") + "?start=nope")
    assert response.status_code == 400
    assert "Some filters are not valid" in response.content.decode()


@pytest.mark.parametrize("query", ["end=9999-12-31", "start=0001-01-01&end=2026-01-01"])
def test_a_date_out_of_range_is_a_400_on_every_page_that_filters(client, lead, estate, query):
    client.force_login(lead)
    for name in ("summary", "sync-history", "bulk-retry"):
        response = client.get(reverse(name) + "?" + query)
        assert response.status_code == 400, name
        assert "Some filters are not valid" in response.content.decode(), name
    export = client.get(reverse("sync-history-csv") + "?" + query)
    assert export.status_code == 400
    assert export["Content-Type"].startswith("text/plain")
    assert b"Invalid filter: Enter a date in" in export.content


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["time", "company", "platform", "status", "items", "duration"])
def test_keyset_pages_walk_every_sort_in_order_with_nulls_last(viewer_client, db, sort, direction):
    from dashboard.models import Sync

    companies = [make_company(name=f"Co {n % 4}", platform_name=f"P{n % 3}") for n in range(6)]
    for n in range(130):
        # Half run (no duration), so a page boundary falls among the nulls.
        code = 1000 if n % 2 == 0 else (5130 if n % 7 == 0 else 2000)
        sync = make_sync(companies[n % 6], code=code, ago=timedelta(minutes=n + 1))
        Sync.objects.filter(pk=sync.pk).update(
            items_total=n % 9, duration_s=None if code == 1000 else n % 11
        )
    column = {
        "time": lambda s: s.sync_utc,
        "company": lambda s: s.company.name,
        "platform": lambda s: s.company.platform_name,
        "status": lambda s: s.status_code,
        "items": lambda s: s.items_total,
        "duration": lambda s: s.duration_s,
    }[sort]
    rows = list(Sync.objects.select_related("company"))
    valued = sorted((s for s in rows if column(s) is not None), key=lambda s: (column(s), s.pk))
    nulls = sorted((s for s in rows if column(s) is None), key=lambda s: s.pk)
    if direction == "desc":
        valued.reverse()
        nulls.reverse()
    expected = [str(s.sync_id) for s in valued + nulls]
    assert (
        _walk(viewer_client, reverse("sync-history") + f"?sort={sort}&dir={direction}") == expected
    )


def _platform_options(response) -> list[str]:
    import re

    select = re.search(r'<select name="platform"[^>]*>(.*?)</select>', response.content.decode())
    assert select is not None
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def test_the_platform_choices_are_cached_and_a_new_platform_is_still_accepted(viewer_client, db):
    from dashboard.platforms import PLATFORMS_CACHE_KEY, platform_names

    make_sync(make_company(platform_name="Xero"))
    assert _platform_options(_get(viewer_client, "")) == ["", "Xero"]
    assert platform_names() == ["Xero"]
    # A company written by another hand (the admin, a shell) is not in the cached list...
    sage = make_sync(make_company(platform_name="Sage Intacct"))
    assert _platform_options(_get(viewer_client, "")) == ["", "Xero"]
    # ... but a filter that names its platform is valid at once, and refreshes the list.
    response = _get(viewer_client, "platform=Sage+Intacct")
    assert set(_ids(response)) == {str(sage.sync_id)}
    assert _platform_options(response) == ["", "Sage Intacct", "Xero"]
    # An unknown platform is still refused with a message.
    refused = viewer_client.get(reverse("sync-history") + "?platform=Nope")
    assert refused.status_code == 400 and b"Select a valid choice" in refused.content
    from django.core.cache import cache

    assert cache.get(PLATFORMS_CACHE_KEY) == ["Sage Intacct", "Xero"]


def test_ingest_forgets_the_cached_platforms_when_it_writes_companies(viewer_client, db):
    import uuid

    from dashboard.ingest import upsert_companies
    from dashboard.platforms import platform_names

    make_company(platform_name="Xero")
    assert platform_names() == ["Xero"]
    upsert_companies(
        [
            {
                "id": str(uuid.uuid4()),
                "name": "New Co",
                "dataConnections": [
                    {
                        "sourceType": "Accounting",
                        "platformName": "FreeAgent",
                        "sourceId": "fbrh",
                        "status": "Linked",
                    }
                ],
            }
        ]
    )
    assert platform_names() == ["FreeAgent", "Xero"]


def test_the_rows_escape_upstream_text_and_show_what_the_template_showed(viewer_client, db):
    company = make_company(name='<script>alert("x")</script>', platform_name="Xero & <b>")
    sync = make_sync(company, code=5130, items=[(4, "bad"), (3, None)] * 600)
    body = _get(viewer_client, "").content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "Xero &amp; &lt;b&gt;" in body
    assert f'<a class="mono" href="/syncs/{sync.sync_id}/">{sync.sync_id}</a>' in body
    assert f'href="/companies/{company.company_id}/"' in body
    assert (
        '<td class="num" data-label="Items">'
        f'<a href="/syncs/{sync.sync_id}/?tab=items" title="The push items of this sync">1,200</a>'
        ' <span class="bad-text">(600 failed)</span> '
        '<span class="outstanding">600 outstanding</span></td>'
    ) in body
    assert '<td class="num" data-label="Duration">1m 30s</td>' in body
    assert 'title="Data push error">5130</span>' in body
    assert "No syncs match" not in body
    assert "No syncs match these filters." in _get(viewer_client, "code=4040").content.decode()


def test_the_filter_controls_show_the_chosen_values(viewer_client, estate):
    body = _get(
        viewer_client,
        "code=5130&code=2000&category=failed&failed_items=on&q=a%22b&platform=Xero"
        f"&company={estate['xero'].company_id}",
    ).content.decode()
    assert '<input type="checkbox" name="code" value="5130" checked>' in body
    assert '<input type="checkbox" name="code" value="2000" checked>' in body
    assert '<input type="checkbox" name="code" value="4000">' in body
    assert '<option value="failed" selected>Failed</option>' in body
    assert '<option value="Xero" selected>Xero</option>' in body
    assert 'name="failed_items" id="id_failed_items" checked' in body
    assert 'name="q" value="a&quot;b"' in body
    assert f'<input type="hidden" name="company" value="{estate["xero"].company_id}">' in body
    plain = _get(viewer_client, "").content.decode()
    assert '<option value="" selected>Any</option>' in plain
    assert 'name="company"' not in plain and " checked>" not in plain.split("codes")[1][:3000]


def test_the_pages_work_when_the_cache_is_down(viewer_client, db, monkeypatch):
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    make_sync(make_company(platform_name="Xero"))
    for name in ("get", "set", "delete"):
        monkeypatch.setattr(cache, name, down)
    assert _platform_options(_get(viewer_client, "platform=Xero")) == ["", "Xero"]
    assert viewer_client.get(reverse("summary")).status_code == 200


def test_outstanding_lists_each_chain_once_at_its_original(viewer_client, db):
    """A retry that failed again holds the same outstanding items as its original:
    the filter, the rows and the CSV count them once, on the original."""
    company = make_company(name="Acme")
    failed = [(4, "The period is closed.")] * 3
    original = make_sync(company, code=5130, items=failed, ago=timedelta(hours=2))
    tids = list(original.items.values_list("transaction_id", flat=True))
    retry = make_sync(company, code=5130, items=failed, transaction_ids=tids, retry_of=original)
    assert (original.items_outstanding, retry.items_outstanding) == (3, 3)
    body = _get(viewer_client, "state=outstanding").content.decode()
    assert str(original.sync_id) in body and str(retry.sync_id) not in body
    rows = _get(viewer_client, "").content.decode()
    assert '<span class="outstanding">3 outstanding</span>' in rows
    assert rows.count("3 outstanding") == 1 and '<span class="muted">retry</span>' in rows
    csv_response = viewer_client.get(reverse("sync-history-csv"))
    csv_text = b"".join(csv_response.streaming_content).decode()
    lines = {line.split(",")[0]: line.split(",") for line in csv_text.splitlines()[1:]}
    header = csv_text.splitlines()[0].split(",")
    column = header.index("items_outstanding")
    assert lines[str(original.sync_id)][column] == "3"
    assert lines[str(retry.sync_id)][column] == ""
    assert lines[str(retry.sync_id)][header.index("retry_of")] == str(original.sync_id)
