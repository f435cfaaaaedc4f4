"""Bulk retry: preview, confirm, one request per sync, inside the shared limits."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import bulk_retry, live, retry, selectors
from dashboard import models as mirror
from dashboard.filters import Range, SyncFilter
from dashboard.forms import SyncFilterForm
from dashboard.tasks import fan_out_bulk_task, run_retry_task
from sandbox import models as sb
from tests.support.bulk import listed_syncs, open_preview, review_post
from tests.support.bulk_estate import (
    build_failed_estate,
    duplicate_posts,
    max_in_flight_per_company,
)
from tests.support.factories import make_company, make_sync
from tests.support.users import make_user

SCOPE = "range=all&code=5130"
# Tests that build the sandbox's estate use `transactional_db`: on PostgreSQL it
# loads with COPY and rebuilds indexes, which a test's transaction forbids.


def test_the_preview_freezes_the_candidates_and_counts_syncs_items_and_companies(
    client, lead, transactional_db
):
    estate = build_failed_estate(companies=4, syncs_per_company=3)
    client.force_login(lead)
    bulk = open_preview(client, SCOPE)
    assert bulk.state == "draft" and bulk.user == lead and bulk.scope == SCOPE
    assert bulk.members.count() == estate.syncs
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert f'data-testid="bulk-syncs">{estate.syncs}<' in page
    assert f'data-testid="bulk-items">{estate.items}<' in page
    assert 'data-testid="bulk-companies">4<' in page
    # One group (5130, one message), every sync listed with a box to untick.
    assert page.count('data-testid="bulk-group-5130:') == 1
    assert len(listed_syncs(page)) == min(estate.syncs, 10)
    assert not mirror.RetryRequest.objects.exists()


def test_only_leads_may_retry_in_bulk_and_refusals_are_recorded(
    client, lead, runner, transactional_db
):
    build_failed_estate(companies=2, syncs_per_company=2)
    client.force_login(lead)
    draft = open_preview(client, SCOPE)
    client.force_login(runner)
    assert client.get(reverse("bulk-retry") + "?" + SCOPE).status_code == 403
    confirm = {"key": str(draft.key), "expected": 4, "confirm": "1"}
    assert client.post(reverse("bulk-review", args=[draft.pk]), confirm).status_code == 403
    denied = mirror.BulkRetry.objects.get(state="denied")
    assert denied.user == runner and f"preview {draft.pk}" in denied.description
    draft.refresh_from_db()
    assert draft.state == "draft"
    assert not mirror.RetryRequest.objects.exists()
    history = client.get(reverse("sync-history") + "?" + SCOPE).content.decode()
    assert 'data-testid="bulk-retry-link"' not in history


def test_a_preview_is_its_authors_alone(client, lead, transactional_db):
    build_failed_estate(companies=1, syncs_per_company=2)
    client.force_login(lead)
    draft = open_preview(client, SCOPE)
    other = make_user("other-lead", "Support lead")
    client.force_login(other)
    assert client.get(reverse("bulk-review", args=[draft.pk])).status_code == 404
    assert client.get(reverse("bulk-detail", args=[draft.pk])).status_code == 404
    answer = client.post(
        reverse("bulk-review", args=[draft.pk]),
        {"key": str(draft.key), "expected": 2, "confirm": "1"},
    )
    assert answer.status_code == 404
    draft.refresh_from_db()
    assert draft.state == "draft"


def test_a_double_submitted_confirm_makes_one_bulk_retry_that_skips_syncs_already_being_retried(
    client, lead, transactional_db, django_capture_on_commit_callbacks
):
    build_failed_estate(companies=3, syncs_per_company=4)
    busy = mirror.Sync.objects.order_by("pk").first()
    assert busy is not None
    with mock.patch.object(run_retry_task, "delay"):
        retry.request_retry(sync=busy, user=lead, key=uuid.uuid4())
    client.force_login(lead)
    bulk = open_preview(client, SCOPE)
    total = mirror.Sync.objects.count()
    with (
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
        mock.patch.object(run_retry_task, "delay"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            first = review_post(client, bulk, confirm=True)
            second = review_post(client, bulk, confirm=True, expected=total)  # the same form again
        detail = reverse("bulk-detail", args=[bulk.pk])
        assert first["Location"] == second["Location"] == detail
        assert fan_out.call_count == 1
        assert mirror.BulkRetry.objects.exclude(state="denied").count() == 1
        fan_out_bulk_task(bulk.pk)
        fan_out_bulk_task(bulk.pk)  # a redelivered fan-out makes nothing new
    figures = bulk_retry.report(bulk)
    assert figures.states["queued"] == total - 1
    assert figures.states["skipped"] == 1
    assert mirror.RetryRequest.objects.filter(bulk=bulk).count() == total
    skipped = mirror.RetryRequest.objects.get(bulk=bulk, state="skipped")
    assert skipped.sync == busy and "Already being retried" in skipped.reason
    assert skipped.bulk_member.sync == busy
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-progress"' in page
    assert f"{total - 1} of {total} settled" not in page  # queued requests are in flight
    assert f"1 of {total} settled" in page


def test_a_selection_with_nothing_outstanding_or_too_many_syncs_says_so(
    client, lead, transactional_db, settings
):
    build_failed_estate(companies=2, syncs_per_company=2)
    client.force_login(lead)
    empty = client.get(reverse("bulk-retry") + "?range=all&code=2000")
    assert empty.status_code == 200
    assert 'data-testid="bulk-nothing"' in empty.content.decode()
    settings.BULK_RETRY_MAX_SYNCS = 3
    wide = client.get(reverse("bulk-retry") + "?" + SCOPE)
    assert wide.status_code == 400
    assert "More than 3 syncs" in wide.content.decode()
    invalid = client.get(reverse("bulk-retry") + "?range=custom&start=2026-02-03&end=2026-02-01")
    assert invalid.status_code == 400
    assert "must not be after" in invalid.content.decode()
    assert not mirror.BulkRetry.objects.exists()


def test_only_originals_with_outstanding_items_are_candidates(db):
    company = make_company()
    failed = [(4, "The account period has closed.")]
    original = make_sync(company, code=5130, items=failed, ago=timedelta(hours=3))
    tids = list(original.items.values_list("transaction_id", flat=True))
    make_sync(company, code=5130, items=failed, transaction_ids=tids, retry_of=original)
    settled = make_sync(company, code=5130, items=failed, ago=timedelta(hours=2))
    make_sync(  # resolved since, by its retry
        company, code=2000, items=[(3, None)], retry_of=settled,
        transaction_ids=settled.items.values_list("transaction_id", flat=True),
    )  # fmt: skip
    everything = SyncFilter(span=Range(None, timezone.now(), "All time"), preset="all")
    assert list(bulk_retry.candidates(selectors.filtered_syncs(everything))) == [original]


def _confirmed(lead, scope: str = SCOPE) -> mirror.BulkRetry:
    """A bulk retry of the filter, opened and confirmed through the services."""
    form = SyncFilterForm(QueryDict(scope))
    assert form.is_valid(), form.errors
    draft = bulk_retry.open_draft(
        user=lead, filters=form.filters(), scope=scope, time_zone="UTC", description="test",
        limit=10_000,
    )  # fmt: skip
    assert draft is not None
    assert selectors.filtered_syncs(form.filters()).count() == draft.members.count()
    with mock.patch.object(fan_out_bulk_task, "delay"):
        bulk, confirmed = bulk_retry.confirm(
            draft.pk, expected=draft.members.count(), typed=draft.members.count(), threshold=100
        )
    assert confirmed
    return bulk


@pytest.mark.system  # takes seconds: `make test` and CI run it
def test_many_workers_retry_many_companies_once_each_inside_the_per_company_cap(
    lead, aimed, sandbox_config, settings
):
    """No duplicate upstream POST, never more requests in flight per company than the cap.

    The same invariants as `bench/bulk_retry.py`, which checks them on 2,000+
    syncs through a real Celery worker; here on a small estate, with a cap
    below the number of workers so that it has to hold requests back.
    """
    cap = settings.CODAT_MAX_IN_FLIGHT_PER_COMPANY = 3  # fewer than the workers below
    sandbox_config.latency_ms = 10  # requests overlap, so the per-company cap is exercised
    sandbox_config.save()
    estate = build_failed_estate(companies=20, syncs_per_company=6, items_per_sync=1)
    assert estate.companies == 20
    sb.RequestLog.objects.all().delete()
    bulk = _confirmed(lead)
    with mock.patch.object(run_retry_task, "delay"):
        fan_out_bulk_task(bulk.pk)
    pending = list(
        mirror.RetryRequest.objects.filter(bulk=bulk, state="queued")
        .order_by("company_id", "pk")
        .values_list("pk", flat=True)
    )
    assert len(pending) == estate.syncs
    lock = threading.Lock()

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    pk = pending.pop(0)
                # Ordered by company: many workers hit the same company at once.
                run_retry_task(pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    figures = bulk_retry.report(bulk)
    assert figures.states["submitted"] == estate.syncs, figures
    assert duplicate_posts() == 0
    posts = sb.RequestLog.objects.filter(method="POST").count()
    assert posts == estate.syncs
    assert sb.Sync.objects.filter(kind="retry").count() == estate.syncs
    in_flight = max_in_flight_per_company()
    assert max(in_flight.values()) <= cap
    assert max(in_flight.values()) >= 2  # concurrency really happened


def _queries(client, url: str) -> int:
    # Every page shows the first import's progress, read once a poll and kept in the
    # cache: each page counted here reads it, so that a warm cache changes no count.
    cache.delete(live.IMPORT_CACHE_KEY)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.system  # takes seconds (150 syncs, each fanned out): `make test` and CI run it
def test_the_preview_and_the_report_cost_the_same_queries_for_5_or_150_syncs(client, lead, db):
    """Groups are counted in one query and their syncs sampled in another, the report paged."""
    counts = []
    for size in (5, 150):
        company = make_company()
        for n in range(size):
            make_sync(
                company, code=5130 if n % 2 else 5000, items=[(4, f"Error {n % 3}")],
                items_outstanding=1, error_message=f"Error {n % 3}",
            )  # fmt: skip
        client.force_login(lead)
        bulk = open_preview(client, f"range=7d&q={company.company_id}")
        review = _queries(client, reverse("bulk-review", args=[bulk.pk]))
        with (
            mock.patch.object(fan_out_bulk_task, "delay"),
            mock.patch.object(run_retry_task, "delay"),
        ):
            review_post(client, bulk, confirm=True, typed=str(size))
            fan_out_bulk_task(bulk.pk)
        counts.append((review, _queries(client, reverse("bulk-detail", args=[bulk.pk]))))
    assert counts[0] == counts[1]


def test_the_bulk_pages_show_upstream_text_as_text(client, lead, db):
    hostile = "<x>"
    company = make_company(name=hostile, platform_name=hostile)
    make_sync(company, code=5130, items=[(4, hostile)], items_outstanding=1, error_message=hostile)
    client.force_login(lead)
    bulk = open_preview(client, "range=7d&q=%3Cx%3E")
    assert "matching “<x>”" in bulk.description
    group = bulk_retry.groups(bulk)[0]
    review = reverse("bulk-review", args=[bulk.pk])
    bodies = {
        url: client.get(url).content.decode() for url in (review, f"{review}?group={group.key}")
    }
    with (
        mock.patch.object(fan_out_bulk_task, "delay"),
        mock.patch.object(run_retry_task, "delay"),
    ):
        review_post(client, bulk, confirm=True)
        fan_out_bulk_task(bulk.pk)
    mirror.RetryRequest.objects.filter(bulk=bulk).update(state="failed", reason=hostile)
    detail = reverse("bulk-detail", args=[bulk.pk])
    bodies[detail] = client.get(detail).content.decode()
    for url, body in bodies.items():
        assert 'data-testid="bulk-member"' in body, url
        assert hostile not in body, url
        assert "&lt;x&gt;" in body, url


@pytest.mark.parametrize(
    "shown",
    [pytest.param(["9" * 20], id="an-id-no-column-holds"), pytest.param(["-1"], id="negative")],
)
def test_a_forged_member_id_is_refused_with_a_400_that_says_why(client, lead, db, shown):
    company = make_company()
    make_sync(company, code=5130, items=[(4, "Error")], items_outstanding=1, error_message="Error")
    client.force_login(lead)
    bulk = open_preview(client, f"range=7d&q={company.company_id}")

    response = review_post(client, bulk, extra={"shown": shown, "keep": shown})

    assert response.status_code == 400
    assert "The form was incomplete or not valid; reload the page." in response.content.decode()
    assert mirror.BulkMember.objects.filter(bulk=bulk, included=True).count() == 1
