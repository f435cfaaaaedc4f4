"""The sync page: each item's problem, the sync's own problems, whole messages, message search."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from dashboard.models import Problem, Sync
from dashboard.problems.rows import problem_url
from tests.support.factories import (
    make_company,
    make_failed_sync_without_items,
    make_sync,
    problem_of,
)

CLOSED = "The account period has closed."
MISSING = "Tax rate was not found in the company's mapping."


def _items(client, sync: Sync, query: str = "", status: int = 200) -> str:
    response = client.get(reverse("sync-detail", args=[sync.sync_id]) + "?tab=items" + query)
    assert response.status_code == status
    return response.content.decode()


def _item_row(body: str, transaction_id) -> str:
    match = re.search(
        r"<tr>(?:(?!</tr>).)*?" + str(transaction_id) + r"(?:(?!</tr>).)*</tr>", body, re.S
    )
    assert match, f"no row for {transaction_id}"
    return match.group(0)


def _link(problem: Problem) -> str:
    return (
        f'<a href="{escape(problem_url(problem.pk))}" title="{escape(problem.cause)}" '
        f'data-testid="item-problem">Problem #{problem.pk}</a>'
    )


@pytest.fixture
def retried(db):
    """An original whose first item a retry failed again for another cause."""
    company = make_company()
    original = make_sync(
        company, code=5130, ago=timedelta(hours=2), items=[(4, CLOSED), (4, CLOSED), (3, None)]
    )
    tids = list(original.items.order_by("pk").values_list("transaction_id", flat=True))
    retry = make_sync(
        company, code=5130, items=[(4, MISSING)], transaction_ids=tids[:1], retry_of=original
    )
    return {
        "original": original,
        "retry": retry,
        "tids": tids,
        "closed": problem_of(original, tids[1]),
        "missing": problem_of(retry),
    }


def test_each_failed_item_links_its_problem(viewer_client, retried):
    original, retry, tids = retried["original"], retried["retry"], retried["tids"]
    closed, missing = retried["closed"], retried["missing"]
    body = _items(viewer_client, original)
    # Outstanding here (this is where it last failed): the problem it is outstanding with.
    assert _link(closed) in _item_row(body, tids[1])
    # Outstanding at the retry now: here, the problem its failure here names.
    assert _link(closed) in _item_row(body, tids[0])
    # Completed: no problem.
    assert "item-problem" not in _item_row(body, tids[2])
    # At the retry, the problem it is outstanding with now.
    assert _link(missing) in _item_row(_items(viewer_client, retry), tids[0])


def test_an_item_whose_failure_names_no_problem_has_no_link(viewer_client, retried):
    original, tids = retried["original"], retried["tids"]
    # Resolved by a later push: no longer outstanding, and its key named no problem.
    make_sync(original.company, code=2000, items=[(3, None)], transaction_ids=tids[1:2])
    Problem.objects.all().delete()
    body = _items(viewer_client, original)
    assert "item-problem" not in body


def test_the_sync_shows_the_problems_of_its_outstanding_items(viewer_client, retried):
    original, closed, missing = retried["original"], retried["closed"], retried["missing"]
    body = viewer_client.get(reverse("sync-detail", args=[original.sync_id])).content.decode()
    problems = re.search(r'<p class="problems" data-testid="sync-problems">(.*?)</p>', body, re.S)
    assert problems, body
    text = problems.group(1)
    assert "Problems:" in text
    assert (
        f'Problem #{closed.pk}</a> {escape(CLOSED)} <span class="muted">(1 outstanding item)'
        in text
    )
    assert (
        f'Problem #{missing.pk}</a> {escape(MISSING)} <span class="muted">(1 outstanding item)'
        in text
    )


def test_a_failed_sync_without_items_links_its_problem_beside_its_error(viewer_client, db):
    sync, problem = make_failed_sync_without_items(make_company(), "Company <b>not</b> configured")
    body = viewer_client.get(reverse("sync-detail", args=[sync.sync_id])).content.decode()
    problems = re.search(r'data-testid="sync-problems">(.*?)</p>', body, re.S).group(1)
    assert f'<a href="{escape(problem_url(problem.pk))}"' in problems
    assert f"Problem #{problem.pk}</a> Company &lt;b&gt;not&lt;/b&gt; configured" in problems
    assert "outstanding item" not in problems
    # Right before the error message.
    assert body.index("sync-problems") < body.index('data-testid="error-message"')


def test_a_sync_with_nothing_outstanding_names_no_problem(viewer_client, db):
    sync = make_sync(make_company(), code=2000, items=[(3, None)])
    body = viewer_client.get(reverse("sync-detail", args=[sync.sync_id])).content.decode()
    assert "sync-problems" not in body


def test_item_messages_are_shown_whole_and_escaped(viewer_client, db):
    message = "Line one <script>x</script>. " + "word " * 120 + "THE END"
    sync = make_sync(make_company(), code=5130, items=[(4, message)])
    body = _items(viewer_client, sync)
    cell = re.search(r'<td class="message" data-label="Message">(.*?)</td>', body, re.S).group(1)
    assert "<script>" not in cell
    assert escape(message) in cell and "…" not in cell
    assert cell.count("THE END") == 1


def test_the_items_tab_searches_this_syncs_messages(viewer_client, db):
    company = make_company()
    sync = make_sync(
        company,
        code=5130,
        items=[(4, CLOSED), (4, "Tax RATE missing"), (4, "Tax rate missing"), (3, None)],
    )
    other = make_sync(company, code=5130, items=[(4, "Tax rate missing")])
    body = _items(viewer_client, sync, "&q=tax+rate")
    assert body.count('<td class="mono" data-label="Core ID">') == 2
    assert str(other.items.get().transaction_id) not in body
    assert (
        _items(viewer_client, sync, "&q=period+has").count('<td class="mono" data-label="Core ID">')
        == 1
    )
    assert "No items match." in _items(viewer_client, sync, "&q=nothing+like+it")
    # A status and a message together.
    assert (
        _items(viewer_client, sync, "&q=tax&status=completed").count(
            '<td class="mono" data-label="Core ID">'
        )
        == 0
    )
    too_long = _items(viewer_client, sync, "&q=" + "x" * 201, status=400)
    assert "at most 200 characters" in too_long
