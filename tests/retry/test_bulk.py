"""Bulk retry: preview, confirm, one request per sync, inside the shared limits."""

from __future__ import annotations

import threading
import uuid
from unittest import mock

from django.db import connection
from django.test import Client
from django.urls import reverse

from dashboard import models as mirror
from dashboard import retry
from dashboard.tasks import fan_out_bulk_task, run_retry_task
from sandbox import models as sb
from tests.support.bulk_estate import (
    build_failed_estate,
    duplicate_posts,
    max_in_flight_per_company,
)

SCOPE = "range=all&code=5130"


def _confirm(client: Client, scope: str = SCOPE, key: uuid.UUID | None = None):
    return client.post(reverse("bulk-retry"), {"scope": scope, "key": str(key or uuid.uuid4())})


def test_the_preview_counts_syncs_items_and_companies(client, lead, aimed):
    estate = build_failed_estate(companies=4, syncs_per_company=3)
    client.force_login(lead)
    page = client.get(reverse("bulk-retry") + "?" + SCOPE).content.decode()
    assert f"<strong>{estate.syncs}</strong> syncs" in page
    assert f"<strong>{estate.items}</strong> items" in page
    assert "<strong>4</strong> companies" in page
    assert not mirror.BulkRetry.objects.exists()


def test_only_leads_may_retry_in_bulk_and_refusals_are_recorded(client, runner, aimed):
    build_failed_estate(companies=2, syncs_per_company=2)
    client.force_login(runner)
    assert client.get(reverse("bulk-retry") + "?" + SCOPE).status_code == 403
    assert _confirm(client).status_code == 403
    denied = mirror.BulkRetry.objects.get()
    assert denied.state == "denied" and denied.user == runner
    assert not mirror.RetryRequest.objects.exclude(state="denied").exists()
    history = client.get(reverse("sync-history") + "?" + SCOPE).content.decode()
    assert 'data-testid="bulk-retry-link"' not in history


def test_a_bulk_retry_skips_syncs_already_being_retried_and_reports(client, lead, aimed):
    build_failed_estate(companies=3, syncs_per_company=4)
    busy = mirror.Sync.objects.order_by("pk").first()
    retry.request_retry(sync=busy, user=lead, key=uuid.uuid4())
    client.force_login(lead)
    key = uuid.uuid4()
    with (
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
        mock.patch.object(run_retry_task, "delay"),
    ):
        first = _confirm(client, key=key)
        second = _confirm(client, key=key)  # double-submitted form
        bulk = mirror.BulkRetry.objects.get()
        assert first["Location"] == second["Location"] == reverse("bulk-detail", args=[bulk.pk])
        assert fan_out.call_count == 1
        fan_out_bulk_task(bulk.pk)
        fan_out_bulk_task(bulk.pk)  # a redelivered fan-out makes nothing new
    report = retry.bulk_report(bulk)
    total = mirror.Sync.objects.count()
    assert report["queued"] == total - 1
    assert report["skipped"] == 1
    skipped = mirror.RetryRequest.objects.get(bulk=bulk, state="skipped")
    assert skipped.sync == busy and "Already being retried" in skipped.reason
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-progress"' in page


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
    preview = retry.bulk_preview(mirror.Sync.objects.all())
    bulk, _ = retry.start_bulk(
        user=lead, key=uuid.uuid4(), scope=SCOPE, description="test", preview=preview
    )
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

    report = retry.bulk_report(bulk)
    assert report["submitted"] == estate.syncs, report
    assert duplicate_posts() == 0
    posts = sb.RequestLog.objects.filter(method="POST").count()
    assert posts == estate.syncs
    assert sb.Sync.objects.filter(kind="retry").count() == estate.syncs
    in_flight = max_in_flight_per_company()
    assert max(in_flight.values()) <= cap
    assert max(in_flight.values()) >= 2  # concurrency really happened
