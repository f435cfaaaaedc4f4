"""A sandbox estate of failed syncs and its mirror, and what its request log shows.

Used by the bulk-retry tests and by `bench/bulk_retry.py`. It writes both
sides directly (the subject is the retry, not ingestion): the sandbox's syncs
all end in 5130 with every item refused, and the dashboard's tables hold the
same syncs and items as a refresh would have written them, every item
outstanding (the candidates of a bulk retry).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Count
from django.utils import timezone


@dataclass
class FailedEstate:
    companies: int
    syncs: int
    items: int


def build_failed_estate(
    companies: int, syncs_per_company: int, items_per_sync: int = 2
) -> FailedEstate:
    from dashboard import models as mirror
    from dashboard import vocabulary
    from dashboard.ingest import state, sync_category
    from sandbox import catalogue, estate
    from sandbox import models as sb

    estate.build_estate(
        companies=companies,
        syncs_per_company=syncs_per_company,
        items_per_sync=items_per_sync,
        days=5,
        seed=11,
    )
    # Every sync failed with a push error; every item was refused.
    now = timezone.now()
    sb.Sync.objects.update(
        finalized=True,
        status_code=5130,
        data_pushed=False,
        completes_at=now - timedelta(minutes=1),
        error_message="Data push error",
    )
    sb.Item.objects.update(
        status=sb.ItemStatus.PUSH_ERROR, message="The account period has closed."
    )
    sb.Sync.objects.filter(item_count=0).delete()

    companies_by_pk = {}
    for company in sb.Company.objects.all():
        companies_by_pk[company.pk] = mirror.Company(
            company_id=company.company_id,
            name=company.name,
            platform_name=sb.Platform(company.platform).label,
            platform_key=company.platform,
        )
    mirror.Company.objects.bulk_create(companies_by_pk.values(), batch_size=1000)
    mirror_company = {c.company_id: c.pk for c in mirror.Company.objects.only("pk", "company_id")}
    counts: dict[int, int] = defaultdict(int)
    for row in sb.Item.objects.values("sync_id").annotate(n=Count("id")):
        counts[row["sync_id"]] = row["n"]
    syncs = []
    for sync in sb.Sync.objects.select_related("company").iterator(chunk_size=2000):
        n = counts.get(sync.pk, 0)
        syncs.append(
            mirror.Sync(
                sync_id=sync.sync_id,
                company_id=mirror_company[sync.company.company_id],
                platform_name=sb.Platform(sync.company.platform).label,
                status_code=5130,
                status_text=catalogue.STATUS_TEXT[5130],
                error_message=sync.error_message,
                sync_utc=sync.started_at,
                category=sync_category(5130, n),
                items_total=n,
                items_failed=n,
                # Every item failed once and was never pushed again: all outstanding.
                items_outstanding=n,
                items_status_code=5130,
            )
        )
    mirror.Sync.objects.bulk_create(syncs, batch_size=2000)
    mirror_sync = {s.sync_id: s.pk for s in mirror.Sync.objects.only("pk", "sync_id")}
    items = [
        mirror.PushItem(
            sync_id=mirror_sync[sync_id],
            transaction_id=tid,
            status=vocabulary.ItemStatus.PUSH_ERROR,
            message=message,
            data_type="directCosts",
        )
        for sync_id, tid, message in sb.Item.objects.values_list(
            "sync__sync_id", "transaction_id", "message"
        ).iterator(chunk_size=5000)
    ]
    mirror.PushItem.objects.bulk_create(items, batch_size=5000)
    for company_pk in state.companies_to_build():
        state.build_company(company_pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return FailedEstate(len(companies_by_pk), len(syncs), len(items))


def max_in_flight_per_company() -> dict[str, int]:
    """From the sandbox's request log: most requests any company had open at once."""
    from sandbox.models import RequestLog

    spans: dict[str, list[tuple]] = defaultdict(list)
    for company_id, started, finished in RequestLog.objects.exclude(company_id=None).values_list(
        "company_id", "started_at", "finished_at"
    ):
        spans[str(company_id)].append((started, finished))
    return {company_id: max_overlap(items) for company_id, items in spans.items()}


def max_overlap(spans: list[tuple[Any, Any]]) -> int:
    """The most of these (start, end) spans open at one moment; an end before a start."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    current = best = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def duplicate_posts() -> int:
    """Initiate-sync POSTs beyond the first for any idempotency key."""
    from sandbox.models import RequestLog

    rows = (
        RequestLog.objects.filter(
            method="POST", path__endswith="/sync/expenses/syncs", status__lt=300
        )
        .values("idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    return sum(row["n"] - 1 for row in rows)
