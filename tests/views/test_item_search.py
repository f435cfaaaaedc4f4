"""The item search: failed items across companies, by words of their message or a transaction ID."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from dashboard import failed_items
from dashboard.problems.rows import problem_url
from tests.support.factories import make_company, make_sync, problem_of

CLOSED = "An error occurred. Message: The account period has CLOSED for {}."


def _search(client, query: str, status: int = 200):
    response = client.get(reverse("item-search") + "?" + query)
    assert response.status_code == status, response.content.decode()[:2000]
    return response


def _found(response) -> list:
    return response.context["found"].rows


@pytest.fixture
def estate(db):
    """Outstanding items in two companies, one resolved since, and other causes."""
    acme, globex = make_company(name="Acme"), make_company(name="Globex & <Co>")
    closed = make_sync(
        acme,
        code=5130,
        ago=timedelta(hours=3),
        items=[(4, CLOSED.format("March")), (4, "Tax rate missing"), (3, None)],
    )
    elsewhere = make_sync(globex, code=5130, items=[(4, CLOSED.format("<b>April</b>"))])
    resolved = make_sync(acme, code=5130, ago=timedelta(hours=5), items=[(4, CLOSED.format("May"))])
    tid = resolved.items.get().transaction_id
    make_sync(acme, code=2000, ago=timedelta(hours=4), items=[(3, None)], transaction_ids=[tid])
    return {"acme": acme, "globex": globex, "closed": closed, "elsewhere": elsewhere}


def test_words_find_the_outstanding_items_whose_message_holds_them(viewer_client, estate):
    response = _search(viewer_client, "q=period+has+closed")
    found = _found(response)
    # Newest first, across companies; the resolved one is not outstanding.
    assert [row.sync.pk for row in found] == [estate["elsewhere"].pk, estate["closed"].pk]
    assert all(row.outstanding and row.problem is not None for row in found)
    body = response.content.decode()
    assert "Globex &amp; &lt;Co&gt;" in body and "<Co>" not in body and "<b>April" not in body
    problem = problem_of(estate["closed"])
    assert f'href="{escape(problem_url(problem.pk))}"' in body
    assert f'href="/syncs/{estate["closed"].sync_id}/"' in body
    assert "Searched every outstanding item: 2 contain “period has closed”." in body


def test_an_id_lists_every_push_of_the_transaction(viewer_client, estate):
    closed = estate["closed"]
    tid = closed.items.filter(status=4).order_by("pk").values_list("transaction_id", flat=True)[0]
    retry = make_sync(
        estate["acme"], code=5130, items=[(4, "Again")], transaction_ids=[tid], retry_of=closed
    )
    for query in (str(tid), str(tid)[:8], str(tid).upper().replace("-", "")):
        found = _found(_search(viewer_client, f"q={query}"))
        assert [row.sync.pk for row in found] == [retry.pk, closed.pk], query
        assert {row.transaction_id for row in found} == {tid}
    body = _search(viewer_client, f"q={tid}").content.decode()
    assert "Every push of the transaction whose ID is" in body
    assert body.count('data-testid="found-problem"') == 2


def test_an_id_that_names_no_transaction_searches_messages(viewer_client, estate):
    make_sync(estate["acme"], code=5130, items=[(4, "Reference deadbeef12 was not found")])
    response = _search(viewer_client, "q=deadbeef")
    assert len(_found(response)) == 1
    assert "No transaction ID starts with" in response.content.decode()


@pytest.mark.parametrize(
    "query, message",
    [
        ("q=ab", "Search for at least 3 characters"),
        ("q=+a++b+", "Search for at least 3 characters"),
        ("q=" + "x" * 201, "at most 200 characters"),
        ("q=period&after=garbage!!", "page link is not valid"),
    ],
)
def test_a_bad_search_is_a_400_that_says_why(viewer_client, estate, query, message):
    body = _search(viewer_client, query, status=400).content.decode()
    assert message in body and 'data-testid="item-results"' not in body


def test_no_search_shows_the_form_only(viewer_client, estate):
    body = _search(viewer_client, "").content.decode()
    assert 'data-testid="item-search-form"' in body and "item-results" not in body


def test_pages_walk_every_match_once_and_each_examines_a_bounded_stretch(
    viewer_client, db, monkeypatch
):
    monkeypatch.setattr(failed_items, "SCAN", 5)
    monkeypatch.setattr(failed_items, "PAGE_SIZE", 2)
    company = make_company()
    matching = []
    for n in range(9):
        message = "Account is archived" if n % 2 == 0 else "Something else"
        sync = make_sync(company, code=5130, ago=timedelta(minutes=n + 1), items=[(4, message)])
        if n % 2 == 0:
            matching.append(sync.pk)
    seen, notes, query = [], [], "q=archived"
    for _ in range(10):
        response = _search(viewer_client, query)
        seen += [row.sync.pk for row in _found(response)]
        body = response.content.decode()
        notes.append(re.search(r'data-testid="search-note">(.*?)</p>', body, re.S).group(1))
        link = re.search(r'<a rel="next" href="\?([^"]+)"', body)
        if link is None:
            break
        query = link.group(1).replace("&amp;", "&")
    assert seen == matching
    # A full page; then a stretch of five that holds fewer; then the rest, to the oldest.
    assert "The first 2 outstanding items whose message contains" in notes[0]
    assert "Searched the 5 most recent outstanding items failed before" in notes[1]
    assert "Searched every outstanding item failed before" in notes[-1]


def test_the_page_is_reachable_from_the_header_and_the_history(viewer_client, db):
    body = viewer_client.get(reverse("sync-history")).content.decode()
    assert body.count(f'href="{reverse("item-search")}"') == 2


def test_the_search_reads_a_bounded_number_of_queries(
    viewer_client, estate, django_assert_max_num_queries
):
    _search(viewer_client, "q=closed")
    with django_assert_max_num_queries(9):
        _search(viewer_client, "q=closed")
