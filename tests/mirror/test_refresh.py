"""A full refresh against the sandbox over real HTTP leaves an exact mirror."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from dashboard import ingest, vocabulary
from dashboard import models as mirror
from sandbox import models as sb
from tests.support.mirror import assert_mirror_exact


def _refresh_all(upstream) -> ingest.Stats:
    total = ingest.Stats()
    for company in ingest.refresh_companies(upstream):
        total.add(ingest.refresh_company(upstream, company))
    return total


def test_a_full_refresh_mirrors_every_company_sync_and_item(upstream, small_estate):
    stats = _refresh_all(upstream)

    assert_mirror_exact()
    assert stats.items_seen == sb.Item.objects.count()
    # Every item that was pushed or failed carries the data type it was pushed as.
    by_id = {
        (str(i.sync.sync_id), str(i.transaction_id)): sb.DataType(i.data_type).label
        for i in sb.Item.objects.select_related("sync").exclude(
            status__in=[sb.ItemStatus.PENDING, sb.ItemStatus.UNKNOWN]
        )
    }
    typed = {
        (str(i.sync.sync_id), str(i.transaction_id)): i.data_type
        for i in mirror.PushItem.objects.select_related("sync").exclude(
            status__in=vocabulary.OPEN_ITEM_STATUSES
        )
    }
    assert typed == by_id
    assert mirror.ConfigSnapshot.objects.count() == sb.Company.objects.count()


def test_a_second_refresh_changes_nothing(upstream, small_estate):
    _refresh_all(upstream)
    before = set(mirror.Sync.objects.values_list("pk", "last_refreshed", "category"))
    stats = _refresh_all(upstream)
    assert stats.syncs_written == 0
    assert stats.items_written == 0
    assert set(mirror.Sync.objects.values_list("pk", "last_refreshed", "category")) == before
    assert_mirror_exact()


def test_the_refresh_command_prints_a_summary(
    upstream, small_estate, settings, sandbox_url, api_key, capsys
):
    settings.CODAT_BASE_URL = sandbox_url
    settings.CODAT_API_KEY = api_key
    call_command("refresh", "--all", "--workers", "2")
    out = capsys.readouterr()
    assert "companies 6," in out.out
    assert f"items {sb.Item.objects.count()} " in out.out
    assert "requests " in out.out
    assert "6/6 companies" in out.err
    assert_mirror_exact()
    # It leaves the dashboard's rollup current, as beat's task would.
    assert "hours rolled up " in out.out
    assert not mirror.RollupDirty.objects.exists()
    assert sum(mirror.SyncRollup.objects.values_list("syncs", flat=True)) == (
        mirror.Sync.objects.count()
    )
    # And the dashboard's rankings counted for every preset range.
    assert mirror.RankingSnapshot.objects.count() == 5


def _write_statements(queries) -> list[str]:
    verbs = ("INSERT", "UPDATE", "DELETE")
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(verbs)]


def test_an_idle_refresh_costs_one_request_per_company_and_writes_nothing(upstream, small_estate):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    companies = ingest.refresh_companies(upstream)
    for company in companies:
        ingest.refresh_company(upstream, company)

    before = upstream.requests_made
    with CaptureQueriesContext(connection) as queries:
        for company in companies:
            ingest.refresh_company(upstream, company)
    assert upstream.requests_made - before == len(companies)
    assert _write_statements(queries.captured_queries) == []


@pytest.mark.system  # takes seconds: `make test` and CI run it
def test_one_changed_sync_costs_one_more_request_per_page_of_its_items(
    api, sandbox_url, api_key, limiter, small_estate
):
    import uuid

    from dashboard.upstream import Upstream
    from sandbox import services

    company = sb.Company.objects.order_by("pk").first()
    body = [
        {"id": str(uuid.uuid4()), "type": "Payment", "issueDate": "2026-11-01", "currency": "GBP"}
        for _ in range(5)
    ]
    # Page size 2: the new sync's five items come in three pages.
    with Upstream(
        base_url=sandbox_url, api_key=api_key, limiter=limiter, page_size=2, backoff_base=0.01
    ) as client:
        mirrored = ingest.upsert_companies([client.get_company(str(company.company_id))])[0]
        ingest.refresh_company(client, mirrored)
        new_id = api.post(
            f"/companies/{company.company_id}/sync/expenses/expense-transactions", json=body
        ).json()["syncId"]

        before = client.requests_made
        stats = ingest.refresh_company(client, mirrored)
        # The sync list, then three pages of the new (in-progress) sync's items.
        assert client.requests_made - before == 1 + 3
        assert stats.syncs_written == 1
        assert mirror.Sync.objects.get(sync_id=new_id).items_pending == 5

        services.finalize_sync(sb.Sync.objects.get(sync_id=new_id).pk)
        before = client.requests_made
        ingest.refresh_company(client, mirrored)
        finished = mirror.Sync.objects.get(sync_id=new_id)
        pushed = finished.items.exclude(status__in=vocabulary.OPEN_ITEM_STATUSES).exists()
        # The list, three pages of items and, once items were pushed, the
        # push operations for their data types: newest first, so only the
        # pages that hold this sync's five operations (three of two).
        assert client.requests_made - before == 1 + 3 + (3 if pushed else 0)
        assert finished.is_terminal
        # The outcome is drawn from the sync's random ID: some failure codes
        # leave items pending upstream. The mirror shows exactly what is there.
        assert finished.items_pending == (
            sb.Item.objects.filter(
                sync__sync_id=new_id, status__in=[sb.ItemStatus.UNKNOWN, sb.ItemStatus.PENDING]
            ).count()
        )
    assert_mirror_exact_for(company)


def assert_mirror_exact_for(company) -> None:
    truth = {
        (str(i.sync.sync_id), str(i.transaction_id), sb.ItemStatus(i.status).label, i.message)
        for i in sb.Item.objects.filter(sync__company=company).select_related("sync")
    }
    seen = {
        (
            str(i.sync.sync_id),
            str(i.transaction_id),
            vocabulary.ItemStatus(i.status).label,
            i.message,
        )
        for i in mirror.PushItem.objects.filter(
            sync__company__company_id=company.company_id
        ).select_related("sync")
    }
    assert seen == truth


@pytest.mark.system  # takes seconds: `make test` and CI run it
def test_faults_lose_and_duplicate_nothing(upstream, small_estate, sandbox_config):
    sandbox_config.error_rate = 0.2
    sandbox_config.rate_limit_storm_rate = 0.03
    sandbox_config.truncated_body_rate = 0.1
    sandbox_config.slow_body_ms = 2
    sandbox_config.save()

    stats = _refresh_all(upstream)

    assert_mirror_exact()
    # Retries happened: more requests than the fault-free minimum.
    assert upstream.requests_made > stats.companies + stats.syncs_fetched
