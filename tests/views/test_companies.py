"""The companies index: every column sorts both ways and pages across ties exactly,
search and filters select, bad parameters get a clear 400, names are text."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.companies import SORTS
from dashboard.cursors import encode
from dashboard.models import COMPANY_SORT_COLUMNS, Company

NOW = timezone.now().replace(microsecond=0)

# Ties in every column, and empty last sync / last success, so that a page
# boundary falls inside a run of equal values.
ROWS = [
    ("Alpha", "Xero", "Linked", 5, 2, 1, 3, 2),
    ("Bravo", "Xero", "Linked", 0, 0, 2, 2, 0),
    ("Charlie", "Sage", "Deauthorized", 5, 2, None, None, 1),
    ("Delta", "QuickBooks Online", "Linked", 12, 0, 1, 1, 0),
    ("Delta", "Xero", "", 0, 7, 1, None, 3),
    ("Echo", "Sage", "Linked", 5, 2, None, None, 0),
    ("Foxtrot", "", "PendingAuth", 0, 0, 4, 4, 0),
    ("Golf", "Xero", "Linked", 3, 1, 1, 5, 1),
    ("Hotel", "QuickBooks Online", "Linked", 0, 0, 2, 2, 0),
]


def _at(hours: int | None):
    return None if hours is None else NOW - timedelta(hours=hours)


@pytest.fixture
def companies(db) -> list[Company]:
    made = []
    for name, platform, connection, outstanding, streak, last_sync, last_success, problems in ROWS:
        made.append(
            Company.objects.create(
                company_id=uuid.uuid4(),
                name=name,
                platform_name=platform,
                connection_status=connection,
                items_outstanding=outstanding,
                failing_streak=streak,
                failing_since=_at(48) if streak else None,
                last_sync_at=_at(last_sync),
                last_success_at=_at(last_success),
                problems_open=problems,
            )
        )
    return made


def _expected(companies: list[Company], sort: str, direction: str) -> list[uuid.UUID]:
    """The order, worked out in Python: empty values smallest, the pk breaking ties."""
    column = COMPANY_SORT_COLUMNS[sort]

    def key(company: Company):
        value = getattr(company, column)
        return (value is not None, value if value is not None else 0, company.pk)

    ordered = sorted(companies, key=key, reverse=direction == "desc")
    return [c.company_id for c in ordered]


def _rows(page: str) -> list[uuid.UUID]:
    return [uuid.UUID(found) for found in re.findall(r'<tr data-company="([^"]+)"', page)]


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _get(client, query: str = "", status: int = 200) -> str:
    response = client.get(reverse("company-list") + query)
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


def _walk(client, first: str) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Every row reading the pages forwards, then every row reading them back."""
    pages = [_get(client, first)]
    while (following := _link(pages[-1], "next")) is not None:
        pages.append(_get(client, following))
    forwards = [row for page in pages for row in _rows(page)]
    back = [_rows(pages[-1])]
    page = pages[-1]
    while (previous := _link(page, "prev")) is not None:
        page = _get(client, previous)
        back.insert(0, _rows(page))
    return forwards, [row for rows in back for row in rows]


@pytest.mark.parametrize("sort", list(SORTS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_each_column_sorts_both_ways_and_pages_back_and_forth_across_ties(
    viewer_client, companies, sort, direction
):
    expected = _expected(companies, sort, direction)
    forwards, backwards = _walk(viewer_client, f"?sort={sort}&dir={direction}&size=2")
    assert forwards == expected
    assert backwards == expected


def test_the_first_click_sorts_text_up_and_numbers_and_times_down_and_the_second_reverses(
    viewer_client, companies
):
    page = _get(viewer_client)
    assert _rows(page) == _expected(companies, "name", "asc")
    assert 'aria-sort="ascending"><a href="?sort=name&amp;dir=desc"' in page
    assert 'href="?sort=streak&amp;dir=desc"' in page
    assert 'href="?sort=platform&amp;dir=asc"' in page
    assert 'href="?sort=last_success&amp;dir=desc"' in page
    streak = _get(viewer_client, "?sort=streak")
    assert _rows(streak) == _expected(companies, "streak", "desc")
    assert 'aria-sort="descending"><a href="?sort=streak&amp;dir=asc"' in streak


def test_it_counts_the_matching_companies_and_pages_with_a_link_to_the_first(
    viewer_client, companies
):
    first = _get(viewer_client, "?size=4")
    assert 'data-testid="company-count">9 companies<' in first
    assert _link(first, "prev") is None
    second = _get(viewer_client, _link(first, "next"))
    assert "« First page" in second
    assert 'data-testid="company-count">9 companies<' in second


def test_it_searches_by_name_by_id_and_by_the_start_of_an_id(viewer_client, companies):
    delta = [c.company_id for c in companies if c.name == "Delta"]
    assert set(_rows(_get(viewer_client, "?q=elt"))) == set(delta)
    golf = companies[7]
    assert _rows(_get(viewer_client, f"?q={golf.company_id}")) == [golf.company_id]
    assert golf.company_id in _rows(_get(viewer_client, f"?q={str(golf.company_id)[:8]}"))
    page = _get(viewer_client, "?q=nobody+by+this+name")
    assert _rows(page) == []
    assert "No company matches “nobody by this name”" in page
    assert "0 companies match" in page


def test_it_filters_by_platform_failing_now_and_outstanding_items(viewer_client, companies):
    def ids(rows):
        return {c.company_id for c in rows}

    assert set(_rows(_get(viewer_client, "?platform=Sage"))) == ids(
        c for c in companies if c.platform_name == "Sage"
    )
    assert set(_rows(_get(viewer_client, "?failing=on"))) == ids(
        c for c in companies if c.failing_streak
    )
    assert set(_rows(_get(viewer_client, "?outstanding=on&platform=Xero"))) == ids(
        c for c in companies if c.items_outstanding and c.platform_name == "Xero"
    )


def test_no_companies_yet_says_so(viewer_client, db):
    page = _get(viewer_client)
    assert "No companies yet" in page
    assert 'data-testid="company-count">0 companies<' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?sort=size", "There is no sort “size”"),
        ("?dir=sideways", "A sort&#x27;s direction is “asc” or “desc”."),
        ("?after=not-a-cursor", "That page link is not valid"),
        ("?before=%25%25%25", "That page link is not valid"),
        ("?size=0", "A page holds 1 to 200 companies."),
        ("?size=many", "A page holds 1 to 200 companies."),
        ("?platform=Nowhere", "Select a valid choice."),
    ],
)
def test_bad_parameters_get_a_clear_400(viewer_client, companies, query, message):
    page = _get(viewer_client, query, status=400)
    assert message in page
    assert _rows(page) == []


def test_a_cursor_from_another_sort_or_direction_is_refused(viewer_client, companies):
    name_cursor = encode("name", "asc", "Alpha", companies[0].pk)
    assert _get(viewer_client, f"?sort=name&after={name_cursor}").count("<tr data-company") == 8
    for query in (f"?sort=streak&after={name_cursor}", f"?sort=name&dir=desc&after={name_cursor}"):
        assert "That page link is not valid" in _get(viewer_client, query, status=400)
    wrong_kind = encode("streak", "desc", "two", companies[0].pk)
    _get(viewer_client, f"?sort=streak&after={wrong_kind}", status=400)


def test_a_company_name_is_shown_as_text(viewer_client, db):
    evil = Company.objects.create(
        company_id=uuid.uuid4(), name='<script>alert("x")</script> & Co', platform_name="Xero"
    )
    page = _get(viewer_client)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    searched = _get(viewer_client, "?q=%3Cscript%3E")
    assert _rows(searched) == [evil.company_id]
    assert "<script>" not in searched.split("<main ", 1)[1]


def test_an_htmx_request_gets_the_table_alone(viewer_client, companies):
    response = viewer_client.get(reverse("company-list") + "?sort=streak", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="company-results">')
    assert _rows(body) == _expected(companies, "streak", "desc")
    assert "HX-Request" in response["Vary"]


def test_a_page_reads_a_fixed_number_of_queries(
    viewer_client, companies, django_assert_max_num_queries
):
    # Session, user, preferences and permissions (5), the platforms, the count, at most
    # two reads of rows (the sync times, then the companies without one), saving the
    # session (3): however many companies the page holds.
    for size in (3, 200):
        with django_assert_max_num_queries(12):
            _get(viewer_client, f"?sort=last_sync&dir=desc&size={size}")


def test_the_top_navigation_links_the_index(viewer_client, companies):
    page = _get(viewer_client, "?sort=name")
    assert f'href="{reverse("company-list")}" aria-current="page">Companies</a>' in page
    summary = viewer_client.get(reverse("summary")).content.decode()
    assert f'href="{reverse("company-list")}"' in summary
