"""Each company's last sync and last success, kept on its row by ingest (the companies
index sorts by them): right after a refresh, a new failing sync, a new success and a retry
that fixed everything, and as the migration counts them for an existing estate."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dashboard import ingest
from dashboard import models as mirror
from dashboard.ingest.refresh import update_streak
from dashboard.tasks import follow_retries_task, run_retry_task
from dashboard.vocabulary import Category
from sandbox import models as sb
from sandbox import services
from tests.support.factories import make_company, make_sync
from tests.support.scenario import failed_company, finished_sync


def _times(company: mirror.Company) -> tuple:
    company.refresh_from_db()
    return company.last_sync_at, company.last_success_at


def _truth(company: mirror.Company) -> tuple:
    """The newest sync's start and the newest successful one's, counted from every sync."""
    syncs = list(mirror.Sync.objects.filter(company=company))
    return (
        max((s.sync_utc for s in syncs), default=None),
        max((s.sync_utc for s in syncs if s.category == Category.SUCCESS), default=None),
    )


def test_a_refresh_notes_the_last_sync_and_the_last_success(aimed, in_process_upstream):
    upstream = failed_company(items=3)
    company = ingest.ensure_company(in_process_upstream, str(upstream.company_id))
    assert _times(company) == (None, None)
    ingest.refresh_company(in_process_upstream, company)
    last_sync, last_success = _times(company)
    failed = mirror.Sync.objects.get(company=company, status_code=5130)
    assert last_sync == failed.sync_utc
    assert last_success is not None and last_success < last_sync
    assert (last_sync, last_success) == _truth(company)

    # A new failing sync moves the last sync, not the last success.
    started = timezone.now() - timedelta(minutes=20)
    finished_sync(upstream, started=started, code=5130, items=2)
    ingest.refresh_company(in_process_upstream, company)
    assert _times(company) == (started, last_success) == _truth(company)

    # A new success moves both.
    later = timezone.now() - timedelta(minutes=5)
    finished_sync(upstream, started=later, code=2000, items=1)
    ingest.refresh_company(in_process_upstream, company)
    assert _times(company) == (later, later) == _truth(company)


def test_a_retry_that_pushes_everything_is_the_last_sync_and_the_last_success(
    client, runner, aimed, in_process_upstream, sandbox_config
):
    upstream = failed_company(items=4)
    company = ingest.ensure_company(in_process_upstream, str(upstream.company_id))
    ingest.refresh_company(in_process_upstream, company)
    before = _times(company)
    original = mirror.Sync.objects.get(company=company, status_code=5130)

    services.script_next_retry(sb.Company.objects.get(company_id=company.company_id), complete=4)
    client.force_login(runner)
    confirm = client.get(reverse("sync-retry", args=[original.sync_id])).content.decode()
    key = re.search(r'name="key" value="([^"]+)"', confirm).group(1)
    assert (
        client.post(reverse("sync-retry", args=[original.sync_id]), {"key": key}).status_code == 302
    )
    request = mirror.RetryRequest.objects.get(key=uuid.UUID(key))
    run_retry_task(request.pk)
    request.refresh_from_db()
    services.finalize_sync(sb.Sync.objects.get(sync_id=request.new_sync_id).pk)
    follow_retries_task()
    request.refresh_from_db()
    assert request.state == "completed", request.reason

    retry_sync = mirror.Sync.objects.get(sync_id=request.new_sync_id)
    assert retry_sync.category == Category.SUCCESS
    after = _times(company)
    assert after == (retry_sync.sync_utc, retry_sync.sync_utc) == _truth(company)
    assert after[0] > before[0] and after[1] > before[1]


def test_a_success_whose_items_turn_out_failed_is_no_longer_the_last_success(db):
    company = make_company()
    good = make_sync(company, code=2000, ago=timedelta(hours=5))
    seemed_good = make_sync(company, code=2000, ago=timedelta(hours=1))
    update_streak(company)
    assert _times(company) == (seemed_good.sync_utc, seemed_good.sync_utc)
    mirror.Sync.objects.filter(pk=seemed_good.pk).update(category=Category.FAILED, items_failed=1)
    update_streak(mirror.Company.objects.get(pk=company.pk))
    assert _times(company) == (seemed_good.sync_utc, good.sync_utc)


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_them_for_an_existing_estate_in_batches():
    from importlib import import_module

    migration = import_module("dashboard.migrations.0032_company_index").Migration
    backfill = migration.operations[1]
    backfill.batch_size = 2
    companies = [make_company() for _ in range(5)]
    for n, company in enumerate(companies[:4]):
        make_sync(company, code=2000, ago=timedelta(hours=10 + n))
        make_sync(company, code=5130 if n % 2 else 2000, ago=timedelta(hours=n + 1))
    mirror.Company.objects.update(last_sync_at=None, last_success_at=None)
    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
    backfill.database_forwards("dashboard", editor, None, None)
    for company in companies:
        assert _times(company) == _truth(company)
    assert _times(companies[4]) == (None, None)
