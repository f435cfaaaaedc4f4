"""The history's pages both ways by keyset, where each stands, its sort headers and filter chips."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.forms import SyncFilterForm
from dashboard.models import Problem, Sync
from dashboard.selectors import history_page
from tests.support.factories import make_company, make_failed_sync_without_items, make_sync

HISTORY = reverse("sync-history")


def _ids(body: str) -> list[str]:
    return re.findall(r'class="mono" href="/syncs/([0-9a-f-]{36})/"', body)


def _link(body: str, pattern: str) -> str | None:
    """The bottom pager's link matching `pattern` (an attribute), as a URL to get."""
    pager = body[body.index('data-testid="pager-bottom"') :]
    found = re.search(rf'<a {pattern}[^>]*?href="\?([^"]*)"', pager)
    if found is None:
        found = re.search(rf'<a href="\?([^"]*)"[^>]*{pattern}', pager)
    return HISTORY + "?" + unescape(found.group(1)) if found else None


def _position(body: str) -> str:
    found = re.search(r'data-testid="page-position">([^<]*)<', body)
    assert found, body
    return found.group(1)


def _get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode()


def _forward(client, url: str) -> list[tuple[list[str], str, str]]:
    """Every page from this one on by "Next": (its IDs, its position, its URL)."""
    pages = []
    while url:
        body = _get(client, url)
        pages.append((_ids(body), _position(body), url))
        url = _link(body, 'rel="next"')
    return pages


def _backward(client, url: str) -> list[list[str]]:
    """Every page from this one back by "Previous", in the order they were reached."""
    pages = []
    while url:
        body = _get(client, url)
        pages.append(_ids(body))
        url = _link(body, 'rel="prev"')
    return pages


@pytest.fixture
def ties(db):
    """130 syncs that share every sort value but their IDs: one time, one company name,
    one platform, one code, one item count, and no duration for half of them."""
    companies = [make_company(name="Tie Ltd", platform_name="Xero") for _ in range(3)]
    moment = timezone.now() - timedelta(hours=2)
    syncs = []
    for n in range(130):
        sync = make_sync(companies[n % 3], code=2000 if n % 2 else 1000, ago=timedelta(hours=2))
        syncs.append(sync)
    Sync.objects.update(sync_utc=moment, items_total=4, status_code=2000)
    return syncs


@pytest.mark.parametrize("direction", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["time", "company", "platform", "status", "items", "duration"])
def test_previous_walks_back_through_the_same_pages_among_equal_values(
    viewer_client, ties, sort, direction
):
    forward = _forward(viewer_client, HISTORY + f"?sort={sort}&dir={direction}")
    pages = [ids for ids, _, _ in forward]
    assert [len(ids) for ids in pages] == [50, 50, 30]
    assert len({i for ids in pages for i in ids}) == 130

    # Back from the last page by "Previous": the same pages, in reverse.
    assert _backward(viewer_client, forward[-1][2]) == pages[::-1]
    assert [position for _, position, _ in forward] == [
        "1\u201350 of 130",
        "51\u2013100 of 130",
        "101\u2013130 of 130",
    ]


def test_the_oldest_page_is_the_last_page_read_from_the_other_end(viewer_client, ties):
    ordered = [i for ids, _, _ in _forward(viewer_client, HISTORY) for i in ids]
    first = _get(viewer_client, HISTORY)
    oldest_url = _link(first, 'data-testid="page-last"')
    assert oldest_url is not None and "page=last" in oldest_url
    oldest = _get(viewer_client, oldest_url)
    # A whole page of the oldest, shown in the page's own order (newest first).
    assert _ids(oldest) == ordered[80:]
    assert _position(oldest) == "81\u2013130 of 130"
    assert 'data-testid="page-first">« Newest</a>' in oldest
    assert _link(oldest, 'rel="next"') is None
    assert _link(oldest, 'data-testid="page-last"') is None
    # Back from it, a page at a time, to the first page (whole).
    back = _backward(viewer_client, oldest_url)
    assert back == [ordered[80:], ordered[30:80], ordered[:50]]


def test_previous_from_page_three_is_page_two_and_from_page_two_the_first_page(viewer_client, db):
    company = make_company(name="Many")
    syncs = [make_sync(company, ago=timedelta(minutes=n)) for n in range(1, 161)]
    newest_first = [str(s.sync_id) for s in syncs]
    pages = _forward(viewer_client, HISTORY)
    third = _get(viewer_client, pages[2][2])
    second_url = _link(third, 'rel="prev"')
    second = _get(viewer_client, second_url)
    assert _ids(second) == newest_first[50:100]
    assert _position(second) == "51\u2013100 of 160"
    first = _get(viewer_client, _link(second, 'rel="prev"'))
    assert _ids(first) == newest_first[:50]
    assert _position(first) == "1\u201350 of 160"
    # The first page has no previous page and no "Newest" link.
    assert _link(first, 'rel="prev"') is None
    assert 'data-testid="page-first"' not in first


def test_previous_near_the_start_shows_the_first_page_whole(viewer_client, db):
    company = make_company(name="Busy")
    for n in range(1, 61):
        make_sync(company, ago=timedelta(minutes=n + 10))
    oldest = _get(viewer_client, HISTORY + "?page=last")
    assert _position(oldest) == "11\u201360 of 60"
    # Three syncs come while the oldest page is open: fewer than a page stands before it.
    newer = [make_sync(company, ago=timedelta(minutes=n)) for n in range(1, 4)]
    first = _get(viewer_client, _link(oldest, 'rel="prev"'))
    shown = _ids(first)
    assert len(shown) == 50
    assert shown[:3] == [str(s.sync_id) for s in newer]
    assert _position(first) == "1\u201350 of 63"
    assert _link(first, 'rel="prev"') is None


def test_a_page_reads_a_bounded_number_of_rows_whichever_way(viewer_client, ties):
    form = SyncFilterForm({"page": "last", "sort": "duration"})
    assert form.is_valid(), form.errors
    with CaptureQueriesContext(connection) as queries:
        page = history_page(form.filters(), size=10)
    assert len(page.rows) == 10
    sql = [q["sql"] for q in queries.captured_queries]
    reads = [q for q in sql if q.startswith('SELECT "dashboard_sync"."id"')]
    # The oldest ten of a nullable sort are its nulls, by id: one read of a page and one.
    assert len(reads) == 1 and reads[0].endswith("LIMIT 11")
    assert not any("OFFSET" in q for q in sql)


def test_old_page_links_without_a_position_still_work(viewer_client, db):
    company = make_company(name="Old")
    syncs = [make_sync(company, ago=timedelta(minutes=n)) for n in range(1, 61)]
    form = SyncFilterForm({})
    assert form.is_valid()
    cursor = history_page(form.filters()).next_cursor
    body = _get(viewer_client, HISTORY + f"?after={cursor}")
    assert _ids(body) == [str(s.sync_id) for s in syncs[50:]]
    assert _position(body) == "10 shown of 60"
    # Its previous page is found by keyset all the same.
    assert _ids(_get(viewer_client, _link(body, 'rel="prev"'))) == [
        str(s.sync_id) for s in syncs[:50]
    ]


def test_the_total_is_exact_from_the_rollup_and_bounded_otherwise(viewer_client, db, monkeypatch):
    import dashboard.db.capped as capped

    company = make_company(name="Counted")
    for n in range(1, 61):
        make_sync(company, ago=timedelta(minutes=n))
    assert _position(_get(viewer_client, HISTORY)) == "1\u201350 of 60"

    monkeypatch.setattr(capped, "COUNT_CAP", 40)
    # A company's syncs are counted by rows, up to the bound: past it, "40+".
    with CaptureQueriesContext(connection) as queries:
        body = _get(viewer_client, HISTORY + f"?company={company.company_id}")
    assert _position(body) == "1\u201350 of 40+"
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 41" in sql for sql in counts if "dashboard_sync" in sql)
    # The oldest page of a selection past the bound does not know where it stands.
    oldest = _get(viewer_client, HISTORY + f"?company={company.company_id}&page=last")
    assert _position(oldest) == "50 shown of 40+"


@pytest.mark.parametrize(
    "query",
    [
        "before=garbage!!",
        "page=first",
        "pos=0",
        "pos=abc",
        "pos=99999999999",
        "sort=items&before=eyJhIjoxfQ",
    ],
)
def test_a_bad_page_link_is_a_400_that_says_start_from_the_first_page(viewer_client, db, query):
    response = viewer_client.get(HISTORY + "?" + query)
    assert response.status_code == 400
    body = response.content.decode()
    assert "That page link is not valid" in body
    assert "<tbody>" not in body


def test_a_page_link_that_names_two_places_is_a_400(viewer_client, db):
    company = make_company(name="Two")
    for n in range(1, 61):
        make_sync(company, ago=timedelta(minutes=n))
    cursor = history_page(_filters()).next_cursor
    response = viewer_client.get(HISTORY + f"?after={cursor}&before={cursor}")
    assert response.status_code == 400
    assert "names more than one place to start" in response.content.decode()


def _filters():
    form = SyncFilterForm({})
    assert form.is_valid()
    return form.filters()


FIRST_CLICKS = {
    "time": "desc",
    "company": "asc",
    "platform": "asc",
    "status": "desc",
    "items": "desc",
    "duration": "desc",
}


def _headers(body: str) -> dict[str, tuple[str, str]]:
    """Each sortable header: (its aria-sort, the dir its link asks for)."""
    found = re.findall(r'<th(?: aria-sort="(\w+)")?><a href="\?([^"]*)"', body.split("<thead>")[1])
    headers = {}
    for aria, query in found:
        query = unescape(query)
        sort = re.search(r"sort=(\w+)", query).group(1)
        headers[sort] = (aria, re.search(r"dir=(\w+)", query).group(1))
    return headers


@pytest.mark.parametrize("sort, first", FIRST_CLICKS.items())
def test_each_column_first_sorts_in_its_natural_direction_then_reverses(
    viewer_client, estate, sort, first
):
    headers = _headers(_get(viewer_client, HISTORY + "?range=all"))
    if sort == "time":
        # The page opens sorted by time, newest first: its header reverses that.
        assert headers["time"] == ("descending", "asc")
    else:
        assert headers[sort] == ("", first)
    clicked = _get(viewer_client, HISTORY + f"?range=all&sort={sort}&dir={first}")
    shown = "descending" if first == "desc" else "ascending"
    again = "asc" if first == "desc" else "desc"
    assert _headers(clicked)[sort] == (shown, again)
    # Only the sorted column says how it is sorted.
    assert [s for s, (aria, _) in _headers(clicked).items() if aria] == [sort]


def test_a_sort_without_a_direction_reads_in_its_natural_one(viewer_client, db):
    make_sync(make_company(name="Beta"))
    make_sync(make_company(name="Alpha"))
    body = _get(viewer_client, HISTORY + "?sort=company")
    assert body.index(">Alpha<") < body.index(">Beta<")
    assert _headers(body)["company"] == ("ascending", "desc")


def _chips(body: str) -> dict[str, str]:
    """Each chip's text by its test ID (tags taken off), with its remove link's query."""
    chips = {}
    for testid, inner in re.findall(
        r'<span class="chip filter-chip" data-testid="([\w-]+)"[^>]*>(.*?)\u00d7</a></span>', body
    ):
        remove = re.findall(r'<a href="\?([^"]*)" title', inner)[-1]
        text = re.sub(r"<[^>]+>", "", inner)
        chips.setdefault(testid, "")
        chips[testid] += text.strip() + " | " + unescape(remove) + "\n"
    return chips


def test_every_filter_shows_as_a_named_chip_with_a_link_that_removes_it(viewer_client, db):
    hostile = make_company(name='<script>alert("x")</script> & Sons', platform_name="Xero")
    failed = make_sync(
        hostile,
        code=5130,
        ago=timedelta(days=2),
        error_message="An error occurred. Message: The account period <b>has</b> closed.",
    )
    day = timezone.localdate() - timedelta(days=3)
    end = timezone.localdate()
    query = (
        f"q=acme&start={day}&end={end}&code=5130&category=failed&platform=Xero"
        f"&failed_items=on&state=outstanding&company={hostile.company_id}"
        f"&fingerprint={failed.error_fingerprint}"
    )
    body = _get(viewer_client, HISTORY + "?" + query)
    chips = _chips(body)
    assert set(chips) == {
        "chip-search", "chip-range", "chip-code", "chip-category", "chip-platform",
        "chip-failed-items", "chip-state", "chip-company", "chip-error",
    }  # fmt: skip
    # The company by its name, escaped; never its ID.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Sons" in body
    assert "<script>alert" not in body
    assert chips["chip-company"].startswith("Company: &lt;script&gt;")
    assert str(hostile.company_id) not in chips["chip-company"].split(" | ")[0]
    # The error group by its cause, escaped.
    assert chips["chip-error"].startswith("Error: An error occurred. Message: The account period")
    assert "&lt;b&gt;has&lt;/b&gt;" in chips["chip-error"]
    assert chips["chip-code"].startswith("Status: 5130 · ")
    assert chips["chip-range"].startswith(f"Dates: {day.day} {day:%B %Y} to {end.day} {end:%B %Y}")
    assert chips["chip-state"].startswith("Now: outstanding")
    # Each remove link keeps every other filter.
    for testid, names in {
        "chip-company": ["company"],
        "chip-error": ["fingerprint"],
        "chip-range": ["start", "end"],
        "chip-code": ["code"],
        "chip-search": ["q"],
    }.items():
        remove = chips[testid].split(" | ")[1].strip()
        kept = dict(p.split("=", 1) for p in query.split("&"))
        for name in names:
            kept.pop(name)
        assert dict(p.split("=", 1) for p in remove.split("&")) == kept, testid


def test_each_status_code_chip_removes_only_its_code(viewer_client, db):
    body = _get(viewer_client, HISTORY + "?code=5130&code=2000&sort=items&dir=asc")
    chips = _chips(body)["chip-code"].strip().split("\n")
    assert len(chips) == 2
    assert "5130 · " in chips[0] and chips[0].endswith("| code=2000&sort=items&dir=asc")
    assert "2000 · " in chips[1] and chips[1].endswith("| code=5130&sort=items&dir=asc")


def test_a_preset_range_shows_in_words_and_the_default_shows_no_chip(viewer_client, db):
    assert "chip-range" not in _chips(_get(viewer_client, HISTORY))
    assert _chips(_get(viewer_client, HISTORY + "?range=30d"))["chip-range"].startswith(
        "Dates: Last 30 days | "
    )
    day = timezone.localdate()
    one = _chips(_get(viewer_client, HISTORY + f"?start={day}&end={day}"))["chip-range"]
    assert one.startswith(f"Dates: on {day.day} {day:%B %Y} | ")


def test_an_unknown_company_and_a_gone_error_group_still_get_chips(viewer_client, db):
    import uuid

    nobody = uuid.uuid4()
    chips = _chips(_get(viewer_client, HISTORY + f"?company={nobody}&fingerprint={'a' * 16}"))
    assert chips["chip-company"].startswith(f"Company: unknown ({nobody})")
    assert chips["chip-error"].startswith("Error: an error no sync holds now")


def test_the_error_chip_names_its_problem_cause_clipped(viewer_client, db):
    company = make_company(name="Acme")
    sync, problem = make_failed_sync_without_items(company, "Raw message " + "z" * 300)
    Problem.objects.filter(pk=problem.pk).update(cause="Closed <period> " + "y" * 300)
    body = _get(viewer_client, HISTORY + f"?fingerprint={sync.error_fingerprint}")
    value = _chips(body)["chip-error"].split(" | ")[0]
    assert value.startswith("Error: Closed &lt;period&gt; yyy") and value.endswith("…")
    assert len(unescape(value)) <= len("Error: ") + 80
    # The whole cause (to a bound) is the chip's title.
    assert 'title="Closed &lt;period&gt; ' + "y" * 300 in body


def test_an_error_without_a_problem_is_named_by_its_message(viewer_client, db):
    sync = make_sync(make_company(name="Acme"), code=4000, error_message="Token expired")
    body = _get(viewer_client, HISTORY + f"?fingerprint={sync.error_fingerprint}")
    assert _chips(body)["chip-error"].startswith("Error: Token expired | ")
