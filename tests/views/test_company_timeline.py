"""A company's timeline: its syncs, retries, configuration versions and the events of the
problems it shares, merged newest first, paged exactly across entries at the same moment."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.companies import decode_timeline_cursor, timeline
from dashboard.companies.timeline import RANK
from dashboard.models import ProblemActivity, RetryRequest, Sync
from dashboard.problems import lifecycle
from dashboard.vocabulary import ItemStatus, ProblemEvent, RetryState
from tests.support.factories import make_company, make_config, make_sync, problem_of

FAILED = (ItemStatus.PUSH_ERROR, "The account period has closed.")


def _retry(sync: Sync, user, *, at, state=RetryState.COMPLETED, **fields) -> RetryRequest:
    return RetryRequest.objects.create(
        key=uuid.uuid4(),
        user=user,
        sync=sync,
        company=sync.company,
        created_at=at,
        state=state,
        item_count=sync.items_failed,
        **fields,
    )


@pytest.fixture
def busy(db, runner):
    """A company with each kind of entry, several at the very same moment."""
    company = make_company(name="Busy Ltd")
    other = make_company(name="Elsewhere Inc")
    failed = make_sync(company, code=5130, ago=timedelta(hours=6), items=[FAILED, FAILED])
    make_sync(company, code=2000, ago=timedelta(hours=1), items=[(ItemStatus.COMPLETED, None)])
    make_sync(company, code=1000, ago=timedelta(minutes=2))
    make_sync(other, code=2000, ago=timedelta(hours=2))
    problem = problem_of(failed)
    lifecycle.assign(problem.pk, runner, runner)
    lifecycle.note(problem.pk, runner, "Asked them to <b>reopen</b> March.")
    make_config(company, {"bankAccount": {"id": "1"}}, ago=timedelta(days=2))
    make_config(company, {"bankAccount": {"id": "2"}}, ago=timedelta(hours=3))
    make_config(other, {"bankAccount": {"id": "9"}}, ago=timedelta(hours=3))
    _retry(failed, runner, at=timezone.now() - timedelta(hours=5), completed=1, failed_again=1)
    # Three entries of different kinds, and two of one kind, at one moment.
    moment = (timezone.now() - timedelta(hours=4)).replace(microsecond=0)
    tie_sync = make_sync(company, code=5130, ago=timedelta(hours=4), items=[FAILED])
    Sync.objects.filter(pk=tie_sync.pk).update(sync_utc=moment)
    _retry(tie_sync, runner, at=moment, state=RetryState.CANCELLED, cancelled_by=runner)
    _retry(failed, runner, at=moment, state=RetryState.FAILED)
    ProblemActivity.objects.create(
        problem=problem, at=moment, user=runner, username=runner.username,
        event=ProblemEvent.TICKET, text="https://tickets.example/1",
    )  # fmt: skip
    return company


def _brute_force(company) -> list[tuple[str, int]]:
    """Every entry of the company, newest first, read without paging."""
    rows = [
        (s.sync_utc, "sync", s.pk) for s in Sync.objects.filter(company=company)
    ] + [
        (r.created_at, "retry", r.pk) for r in RetryRequest.objects.filter(company=company)
    ] + [
        (c.fetched_at, "config", c.pk) for c in company.configs.all()
    ] + [
        (a.at, "problem", a.pk)
        for a in ProblemActivity.objects.filter(
            problem__companies__company=company
        ).distinct()
    ]  # fmt: skip
    rows.sort(key=lambda row: (row[0], RANK[row[1]], row[2]), reverse=True)
    return [(kind, pk) for _, kind, pk in rows]


def test_it_merges_every_source_newest_first_and_pages_exactly_across_a_tie(busy):
    expected = _brute_force(busy)
    assert {kind for kind, _ in expected} == {"sync", "retry", "config", "problem"}
    for size in (1, 2, 3, 4, 50):
        seen, cursor = [], None
        while True:
            page = timeline(busy, cursor, size=size)
            seen += [(entry.kind, entry.pk) for entry in page.entries]
            if page.next_cursor is None:
                break
            cursor = decode_timeline_cursor(page.next_cursor)
        assert seen == expected, size


def test_each_entry_says_when_what_who_and_links_where(busy, runner):
    entries = timeline(busy).entries
    retry = next(e for e in entries if e.kind == "retry" and e.badge == "Completed")
    assert retry.who == runner.username
    assert retry.text.startswith("Retry of 2 items of sync ")
    assert "1 completed, 1 failed again" in retry.text
    assert retry.url == reverse("retry-detail", args=[retry.pk])
    cancelled = next(e for e in entries if e.kind == "retry" and e.badge == "Cancelled")
    assert f"cancelled by {runner.username}" in cancelled.text
    running = next(e for e in entries if e.kind == "sync" and e.badge == "In progress")
    assert "still running" in running.text and running.finished is None
    assert running.who == ""
    config = next(e for e in entries if e.kind == "config")
    assert config.url.startswith(reverse("config-download", args=[busy.company_id, config.pk]))
    note = next(e for e in entries if e.kind == "problem" and e.text.startswith("Note"))
    assert note.who == runner.username and "reopen" in note.text
    assert any(e.kind == "problem" and e.who == "mirror" for e in entries)


def test_the_company_page_shows_the_timeline_and_its_next_page(viewer_client, busy):
    url = reverse("company-detail", args=[busy.company_id])
    page = viewer_client.get(url).content.decode()
    assert 'data-testid="timeline"' in page
    # Untrusted text is text.
    assert "Asked them to &lt;b&gt;reopen&lt;/b&gt; March." in page
    kinds = re.findall(r'<li data-kind="(\w+)">', page)
    assert kinds == [kind for kind, _ in _brute_force(busy)][: len(kinds)]
    assert "Older »" not in page  # the busy company fits on one page (25)


def test_an_htmx_request_gets_the_timeline_page_alone(viewer_client, busy, settings):
    url = reverse("company-detail", args=[busy.company_id])
    first = timeline(busy, size=3)
    response = viewer_client.get(
        f"{url}?timeline_after={first.next_cursor}", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="timeline">')
    assert "« Newest" in body
    kinds = re.findall(r'<li data-kind="(\w+)">', body)
    assert kinds == [kind for kind, _ in _brute_force(busy)][3 : 3 + len(kinds)]


def test_a_bad_timeline_link_is_a_400_that_says_so(viewer_client, busy):
    url = reverse("company-detail", args=[busy.company_id])
    response = viewer_client.get(f"{url}?timeline_after=nonsense")
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert "That timeline link is not valid; start from the newest entries." in body
    assert busy.name in body


def test_a_company_with_nothing_yet_says_so(viewer_client, db):
    company = make_company(name="Quiet Co")
    page = viewer_client.get(reverse("company-detail", args=[company.company_id])).content
    assert "Nothing has happened to this company yet." in page.decode()


def test_a_page_of_the_timeline_costs_the_same_queries_however_long_the_history(
    viewer_client, busy, runner
):
    url = reverse("company-detail", args=[busy.company_id])

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as context:
            assert viewer_client.get(url).status_code == 200
        return len(context)

    queries()  # the first visit saves the session
    before = queries()
    failed = Sync.objects.filter(company=busy, status_code=5130).first()
    for n in range(30):
        make_sync(busy, code=2000, ago=timedelta(minutes=30 + n))
        _retry(failed, runner, at=timezone.now() - timedelta(minutes=n), state=RetryState.SKIPPED)
    assert queries() == before


def test_the_company_page_reads_no_configuration_document_nor_message(viewer_client, busy):
    """It lists snapshots by time and syncs by their columns: the documents (kilobytes
    each, twenty of them) and the messages are read by the pages that show them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("company-detail", args=[busy.company_id])
    with CaptureQueriesContext(connection) as captured:
        assert viewer_client.get(url).status_code == 200
    reads = " ".join(query["sql"] for query in captured)
    assert '"dashboard_configsnapshot"."config"' not in reads
    assert '"dashboard_sync"."error_message"' not in reads
