"""The history's cause column, its filter by problem, and both in the CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from dashboard.models import Company, Problem, Sync
from dashboard.problems.rows import problem_url
from tests.support.factories import (
    make_company,
    make_failed_sync_without_items,
    make_sync,
    problem_of,
)

CLOSED = "The account period has closed."
ARCHIVED = "The account is archived."
MISSING = "Tax rate <script>alert</script> was not found."


def _href(problem: Problem) -> str:
    """The link to a problem's page, as HTML writes it."""
    return escape(problem_url(problem.pk))


def _history(client, query: str = "range=all", status: int = 200):
    response = client.get(reverse("sync-history") + "?" + query)
    assert response.status_code == status, response.content.decode()[:2000]
    return response


def _row(body: str, sync: Sync) -> str:
    """The history row of a sync."""
    match = re.search(r"<tr>(?:(?!</tr>).)*?" + str(sync.sync_id) + r"(?:(?!</tr>).)*</tr>", body)
    assert match, f"no row for {sync.sync_id}"
    return match.group(0)


def _cause(body: str, sync: Sync) -> str:
    return re.search(r'<td class="cause">(.*?)</td>', _row(body, sync)).group(1)


def _pks(response) -> set[int]:
    return {row.pk for row in response.context["page"].rows}


@pytest.fixture
def chain(db):
    """An original with two causes among its failed items, a retry that failed one of them
    again for another cause, and another company's sync with a third."""
    acme = make_company(name="Acme")
    original = make_sync(
        acme,
        code=5130,
        ago=timedelta(hours=3),
        items=[(4, CLOSED), (4, CLOSED), (4, CLOSED), (4, ARCHIVED), (3, None)],
    )
    tids = list(original.items.order_by("pk").values_list("transaction_id", flat=True))
    retry = make_sync(
        acme,
        code=5130,
        ago=timedelta(hours=2),
        items=[(4, MISSING)],
        transaction_ids=tids[3:4],
        retry_of=original,
    )
    other = make_sync(make_company(name="Globex"), code=5130, items=[(4, MISSING)])
    original.refresh_from_db()
    return {
        "original": original,
        "retry": retry,
        "other": other,
        "closed": problem_of(original),
        "missing": problem_of(retry),
        "tids": tids,
    }


def test_a_sync_shows_the_problems_of_its_outstanding_items_most_items_first(viewer_client, chain):
    body = _history(viewer_client).content.decode()
    closed, missing = chain["closed"], chain["missing"]
    cause = _cause(body, chain["original"])
    # Three items of one cause, and the fourth now outstanding at its retry with another.
    assert cause.startswith(f'<a href="{_href(closed)}" title="{closed.cause}">')
    assert f"Problem #{closed.pk}</a> {CLOSED}" in cause
    assert f'title="Also: Problem #{missing.pk}">+1 more</span>' in cause
    # The retry holds one outstanding item: its tip.
    assert f"Problem #{missing.pk}</a>" in _cause(body, chain["retry"])
    assert "more" not in _cause(body, chain["retry"])
    assert f"Problem #{missing.pk}</a>" in _cause(body, chain["other"])


def test_the_cause_is_escaped_and_its_full_text_is_in_its_title(viewer_client, chain):
    body = _history(viewer_client).content.decode()
    cause = _cause(body, chain["other"])
    assert "<script>" not in body
    assert "Tax rate &lt;script&gt;alert&lt;/script&gt; was not found." in cause
    long_message = "Error: " + "x" * 500 + " <b>end</b>"
    sync = make_sync(make_company(), code=5000, error_message=long_message)
    row = _cause(_history(viewer_client).content.decode(), sync)
    assert "<b>" not in row and "&lt;b&gt;end&lt;/b&gt;" in row  # whole, in the title
    shown = re.search(r'">(.*?)</span>', row).group(1)
    assert len(shown) <= 140 and shown.endswith("…")


def test_a_failed_sync_without_items_shows_its_problem(viewer_client, db):
    sync, problem = make_failed_sync_without_items(make_company(), "Company <i>not</i> configured")
    cause = _cause(_history(viewer_client).content.decode(), sync)
    assert f'<a href="{_href(problem)}"' in cause
    assert f"Problem #{problem.pk}</a> Company &lt;i&gt;not&lt;/i&gt; configured" in cause


def test_without_a_problem_the_cause_is_the_syncs_own_message(viewer_client, db):
    company = make_company()
    failed = make_sync(company, code=4220, error_message="Company de-authorized")
    fine = make_sync(company, code=2000, items=[(3, None)])
    body = _history(viewer_client).content.decode()
    assert (
        _cause(body, failed) == '<span title="Company de-authorized">Company de-authorized</span>'
    )
    assert _cause(body, fine) == ""


def test_the_problem_filter_selects_exactly_the_syncs_holding_its_outstanding_items(
    viewer_client, chain
):
    original, retry, other = chain["original"], chain["retry"], chain["other"]
    closed, missing = chain["closed"], chain["missing"]
    # Closed: its three items are outstanding at the original (never retried).
    assert _pks(_history(viewer_client, f"range=all&problem={closed.pk}")) == {original.pk}
    # Missing: one item's tip is the retry, another company's at its sync; the
    # original, whose item the retry holds now, is not a tip.
    assert _pks(_history(viewer_client, f"range=all&problem={missing.pk}")) == {
        retry.pk,
        other.pk,
    }
    # A failed sync without items, by its own problem.
    sync, problem = make_failed_sync_without_items(make_company(), "Company not configured")
    assert _pks(_history(viewer_client, f"range=all&problem={problem.pk}")) == {sync.pk}


def test_the_problem_filter_counts_its_syncs_and_keeps_the_other_filters(viewer_client, chain):
    missing = chain["missing"]
    body = _history(viewer_client, f"range=all&problem={missing.pk}").content.decode()
    assert '<span data-testid="result-count">2 syncs</span>' in body
    # With another filter, the count is of the selection as usual.
    narrowed = _history(
        viewer_client, f"range=all&problem={missing.pk}&company={chain['other'].company.company_id}"
    )
    assert _pks(narrowed) == {chain["other"].pk}
    assert '<span data-testid="result-count">1 sync</span>' in narrowed.content.decode()
    # Outside the date range: nothing (the retry and the other are an hour or two old).
    assert _pks(_history(viewer_client, f"range=24h&problem={missing.pk}")) == {
        chain["retry"].pk,
        chain["other"].pk,
    }
    old = make_sync(make_company(), code=5130, ago=timedelta(days=40), items=[(4, MISSING)])
    assert _pks(_history(viewer_client, f"range=30d&problem={missing.pk}")) == {
        chain["retry"].pk,
        chain["other"].pk,
    }
    assert old.pk in _pks(_history(viewer_client, f"range=all&problem={missing.pk}"))


def test_a_problem_with_items_and_syncs_without_items_selects_both(viewer_client, db):
    company = make_company()
    message = "The connection was refused."
    with_items = make_sync(company, code=5000, items=[(4, None)], error_message=message)
    problem = problem_of(with_items)
    without = make_sync(company, code=5000, error_message=message)
    Sync.objects.filter(pk=without.pk).update(problem=problem)
    # Both in the company's failing streak (a refresh counts it).
    Company.objects.filter(pk=company.pk).update(
        failing_streak=2, failing_since=with_items.sync_utc
    )
    response = _history(viewer_client, f"range=all&problem={problem.pk}")
    assert _pks(response) == {with_items.pk, without.pk}
    assert '<span data-testid="result-count">2 syncs</span>' in response.content.decode()


def test_the_problem_filter_shows_a_named_chip_not_a_number(viewer_client, chain):
    closed = chain["closed"]
    Problem.objects.filter(pk=closed.pk).update(cause="Period <b>closed</b> " + "y" * 300)
    body = _history(viewer_client, f"range=all&problem={closed.pk}").content.decode()
    chip = re.search(
        r'<span class="chip filter-chip" data-testid="problem-chip">(.*?)</span>', body
    )
    assert chip, body
    text = chip.group(1)
    assert f">Problem #{closed.pk}</a>: Period &lt;b&gt;closed&lt;/b&gt; y" in text
    assert "…" in text and "y" * 200 not in text.split("title=")[0]
    # Removing it keeps the other filters.
    assert 'href="?range=all" title="Show every problem' in text
    # It stays in the filter form.
    assert f'<input type="hidden" name="problem" value="{closed.pk}">' in body


def test_a_merged_problem_shows_the_syncs_of_the_one_it_was_merged_into(viewer_client, chain):
    closed, missing = chain["closed"], chain["missing"]
    Problem.objects.filter(pk=closed.pk).update(merged_into=missing)
    response = _history(viewer_client, f"range=all&problem={closed.pk}")
    assert f">Problem #{missing.pk}</a>" in response.content.decode()
    assert _pks(response) == {chain["retry"].pk, chain["other"].pk}


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "That problem is not valid"),
        ("0", "That problem is not valid"),
        ("-3", "That problem is not valid"),
        ("1.5", "That problem is not valid"),
        (str(2**63), "That problem is not valid"),
        ("99999999", "There is no problem #99999999."),
    ],
)
def test_a_bad_problem_filter_is_a_400_with_a_clear_message(viewer_client, db, value, message):
    body = _history(viewer_client, f"problem={value}", status=400).content.decode()
    assert "Some filters are not valid" in body and message in body
    assert "<tbody>" not in body
    csv_response = viewer_client.get(reverse("sync-history-csv") + f"?problem={value}")
    assert csv_response.status_code == 400 and message in csv_response.content.decode()


def test_the_error_group_filter_still_selects_its_syncs(viewer_client, db):
    company = make_company()
    one = make_sync(company, code=4000, error_message="Company not configured")
    make_sync(company, code=4000, error_message="Something else entirely")
    response = _history(viewer_client, f"range=all&fingerprint={one.error_fingerprint}")
    assert _pks(response) == {one.pk}


def _csv(client, query: str = "range=all") -> list[dict[str, str]]:
    response = client.get(reverse("sync-history-csv") + "?" + query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_has_the_cause_and_problem_of_each_sync(viewer_client, chain):
    formula = make_sync(make_company(), code=5000, error_message='=HYPERLINK("http://x","y")')
    rows = {row["sync_id"]: row for row in _csv(viewer_client)}
    closed, missing = chain["closed"], chain["missing"]
    original = rows[str(chain["original"].sync_id)]
    assert original["cause"] == f"Problem #{closed.pk}: {CLOSED} (+1 more)"
    assert original["problem_id"] == str(closed.pk)
    assert rows[str(chain["other"].sync_id)]["cause"] == f"Problem #{missing.pk}: {MISSING}"
    # A message that a spreadsheet would run is neutralised, in the cause as elsewhere.
    assert rows[str(formula.sync_id)]["cause"] == '\'=HYPERLINK("http://x","y")'
    assert rows[str(formula.sync_id)]["problem_id"] == ""
    # The problem filter narrows the export too.
    only = _csv(viewer_client, f"range=all&problem={closed.pk}")
    assert [row["sync_id"] for row in only] == [str(chain["original"].sync_id)]


def test_the_csv_reads_causes_in_batches(viewer_client, db, monkeypatch):
    from dashboard import views

    monkeypatch.setattr(views, "CAUSE_BATCH", 2)
    company = make_company()
    syncs = [
        make_sync(company, code=5130, ago=timedelta(minutes=n + 1), items=[(4, f"Cause {n}")])
        for n in range(5)
    ]
    rows = {row["sync_id"]: row for row in _csv(viewer_client)}
    for sync in syncs:
        problem = problem_of(sync)
        assert rows[str(sync.sync_id)]["cause"] == f"Problem #{problem.pk}: {problem.cause}"
        assert rows[str(sync.sync_id)]["problem_id"] == str(problem.pk)


def test_the_cause_column_costs_the_same_queries_for_a_page_of_any_size(
    viewer_client, db, django_assert_max_num_queries
):
    company, quiet = make_company(), make_company()

    def add(n: int) -> None:
        for i in range(n):
            original = make_sync(
                company, code=5130, items=[(4, f"Cause {i % 7}"), (4, f"Other {i % 3}")]
            )
            tids = list(original.items.values_list("transaction_id", flat=True))
            make_sync(company, code=5130, items=[(4, "Again")], transaction_ids=tids[:1],
                      retry_of=original)  # fmt: skip
            make_failed_sync_without_items(company, f"Not configured {i % 4}")
            # A company whose failing streak was never counted: its sync has no problem.
            make_sync(quiet, code=4220, error_message="Company de-authorized")

    add(1)
    _history(viewer_client)  # the caches (platforms, rankings) filled
    with django_assert_max_num_queries(10) as few:
        _history(viewer_client)
    add(12)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        body = _history(viewer_client).content.decode()
    # Of 50 rows, each of the three kinds with a problem, and the syncs with only a message.
    assert body.count('<td class="cause"><a href=') >= 36
    assert body.count('<td class="cause"><span title="Company de-authorized">') >= 12
    assert len(many.captured_queries) == len(few.captured_queries)


def _walk(filters, size: int) -> tuple[list[int], list[int], list[int]]:
    """A selection's pages of `size`: forward from the first, backward from the last
    page, and the last page itself (primary keys, in the page order)."""
    from dataclasses import replace

    from dashboard import selectors

    forward: list[int] = []
    page = selectors.history_page(filters, size=size)
    while True:
        forward += [row.pk for row in page.rows]
        if page.next_cursor is None:
            break
        page = selectors.history_page(replace(filters, after=_key(page.rows[-1])), size=size)
    last = selectors.history_page(replace(filters, last_page=True), size=size)
    backward = [row.pk for row in last.rows]
    page = last
    while not page.at_start:
        page = selectors.history_page(replace(filters, before=_key(page.rows[0])), size=size)
        # Back at the start, the first page comes whole: it may hold rows already read.
        backward = list(dict.fromkeys([row.pk for row in page.rows] + backward))
    return forward, backward, [row.pk for row in last.rows]


def _key(row) -> tuple:
    return (row.sync_utc, row.pk)


@pytest.mark.parametrize("range_", ["all", "7d"])
def test_a_problems_pages_read_from_its_items_are_the_pages_of_its_syncs(db, monkeypatch, range_):
    """The history of one problem of items reads each page's syncs from the problem's
    outstanding items: the same pages, forward and back, as probing every sync."""
    from dashboard import selectors
    from dashboard.forms import SyncFilterForm

    cause = "Tax rate INPUT2 is missing for this supplier."
    companies = [make_company(name=f"Company {n}") for n in range(3)]
    for n in range(11):
        items = [(4, cause)] * (1 + n % 3)
        make_sync(companies[n % 3], code=5130, ago=timedelta(hours=5 * n), items=items)
    # Syncs of other causes and successes between them: not the problem's.
    for n in range(6):
        make_sync(companies[n % 3], code=5130, ago=timedelta(hours=7 * n), items=[(4, "Other")])
        make_sync(companies[n % 3], code=2000, ago=timedelta(hours=3 * n), items=[(3, None)])
    problem = problem_of(
        Sync.objects.filter(status_code=5130, items__message=cause).distinct().first()
    )
    form = SyncFilterForm({"range": range_, "problem": str(problem.pk)})
    assert form.is_valid(), form.errors
    filters = form.filters()
    assert filters.problem_only and selectors._tips_only(filters)
    for size in (1, 2, 4, 50):
        fast = _walk(filters, size)
        monkeypatch.setattr(selectors, "_tips_only", lambda filters: False)
        probed = _walk(filters, size)
        monkeypatch.undo()
        assert fast == probed
        assert fast[0] == fast[1] and len(fast[0]) == len(set(fast[0]))
    expected = set(Sync.objects.filter(items__message=cause).values_list("pk", flat=True))
    if range_ == "all":
        assert set(fast[0]) == expected and len(expected) == 11
