"""Erasing one company's mirrored data: for offboarding, or a customer's erasure request.

`request_purge` records who asked, why and when (a `PurgeRecord`: the company's
upstream ID, never its name), and from then on the mirror neither fetches nor
stores anything of that company (ingest and the webhook receiver look for the
record). `purge` then deletes, in batches that are each one transaction under
the company's current-state lock: its syncs with their push items, states,
retry requests and bulk retry members, and the webhook events naming them;
then its configuration snapshots, refresh state, the webhook events naming it,
and the company row. The record counts what went and says when it finished.
A purge can stop anywhere (a worker killed, its time spent) and carry on: the
task queues itself again, and once the lease has passed the hourly retention
task finishes what a dead worker left.

What stays: the record; audit rows, which name a company by its ID and a label
of their own rather than by a key to its rows, so they keep their meaning; and
bulk retries that also retried other companies, without its members. The
dashboard's counts follow at once (the rollup's triggers mark the hours); the
rankings, which name companies, are counted again at the end.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .. import rankings
from ..ingest import state
from ..models import (
    BulkMember,
    BulkRetry,
    Company,
    ConfigSnapshot,
    PurgeRecord,
    RankingSnapshot,
    RefreshState,
    RetryRequest,
    Sync,
    TransactionState,
    WebhookEvent,
)
from ..platforms import forget_platform_names
from ..problems import upkeep as problem_upkeep
from .history import remove_syncs

# A worker holds a purge this long (renewed at every batch); past it, another may carry on.
LEASE = timedelta(minutes=10)


def request_purge(
    *, company_id: uuid.UUID, requested_by: str, reason: str
) -> tuple[PurgeRecord, bool]:
    """Record that this company is to be erased; (the record, whether it is new).

    From the moment it commits, nothing of the company is mirrored again.
    """
    return PurgeRecord.objects.get_or_create(
        company_id=company_id, defaults={"requested_by": requested_by, "reason": reason}
    )


def purge(
    record_pk: int,
    *,
    max_seconds: float | None = None,
    max_syncs: int | None = None,
    max_items: int | None = None,
) -> PurgeRecord | None:
    """Erase the record's company, batch by batch; None if another worker holds it, or it
    is finished. Stops after `max_seconds` with the record unfinished (run it again)."""
    now = timezone.now()
    claimed = (
        PurgeRecord.objects.filter(pk=record_pk, finished_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE)
    )
    if not claimed:
        return None
    record = PurgeRecord.objects.get(pk=record_pk)
    company_pk = (
        Company.objects.filter(company_id=record.company_id).values_list("pk", flat=True).first()
    )
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    if company_pk is not None:
        _purge_retries(record, company_pk)
        while _purge_batch(
            record,
            company_pk,
            max_syncs or settings.RETENTION_BATCH_SYNCS,
            max_items or settings.RETENTION_BATCH_ITEMS,
        ):
            if deadline is not None and time.monotonic() >= deadline:
                PurgeRecord.objects.filter(pk=record_pk).update(lease_until=None)
                record.refresh_from_db()
                return record
    _finish(record, company_pk)
    # The rankings name companies: count them again without it.
    rankings.refresh()
    forget_platform_names()
    record.refresh_from_db()
    return record


def _purge_retries(record: PurgeRecord, company_pk: int) -> None:
    """Delete the company's retry requests and bulk retry members (they protect its syncs),
    and the bulk retries left with neither: their scope and description may name it."""
    with transaction.atomic():
        state.lock_companies([company_pk])
        requests = RetryRequest.objects.filter(company_id=company_pk)
        members = BulkMember.objects.filter(Q(company_id=company_pk) | Q(request__in=requests))
        bulks = set(requests.exclude(bulk=None).values_list("bulk_id", flat=True))
        bulks |= set(members.values_list("bulk_id", flat=True))
        counts: Counter[str] = Counter()
        # The members, not what goes along with them (a problem's retry: deleted with them).
        counts["bulk retry members"] = members.delete()[1].get(BulkMember._meta.label, 0)
        counts["retry requests"] = requests.delete()[0]
        counts["bulk retries"] = (
            BulkRetry.objects.filter(pk__in=bulks)
            .filter(
                ~Exists(BulkMember.objects.filter(bulk_id=OuterRef("pk"))),
                ~Exists(RetryRequest.objects.filter(bulk_id=OuterRef("pk"))),
            )
            .delete()[0]
        )
        _count(record, counts, lease_until=timezone.now() + LEASE)


def _purge_batch(record: PurgeRecord, company_pk: int, max_syncs: int, max_items: int) -> bool:
    """Delete the company's next syncs; False once it has none left."""
    with transaction.atomic():
        state.lock_companies([company_pk])
        rows = list(
            Sync.objects.filter(company_id=company_pk)
            .order_by("pk")
            .values_list("pk", "sync_id", "items_total")[:max_syncs]
        )
        if not rows:
            return False
        taken: list[tuple[int, uuid.UUID]] = []
        items = 0
        for pk, sync_id, total in rows:
            items += total
            if taken and items > max_items:
                break
            taken.append((pk, sync_id))
        pks = [pk for pk, _ in taken]
        counts = remove_syncs(pks)
        # Its problems lose what the syncs and their states counted.
        problem_upkeep.recount([company_pk])
        counts["webhook events"] = WebhookEvent.objects.filter(
            sync_id__in=[sync_id for _, sync_id in taken]
        ).delete()[0]
        _count(record, counts, lease_until=timezone.now() + LEASE)
    return True


def _finish(record: PurgeRecord, company_pk: int | None) -> None:
    """Delete what is left of the company, and the company; mark the record finished."""
    counts: Counter[str] = Counter()
    with transaction.atomic():
        if company_pk is not None:
            state.lock_companies([company_pk])
            # Written meanwhile by a refresh or a retry that began before the record.
            leftover = list(Sync.objects.filter(company_id=company_pk).values_list("pk", flat=True))
            counts.update(remove_syncs(leftover))
            counts["transaction states"] += TransactionState.objects.filter(
                company_id=company_pk
            ).delete()[0]
            problem_upkeep.recount([company_pk])
            counts["configuration snapshots"] = ConfigSnapshot.objects.filter(
                company_id=company_pk
            ).delete()[0]
            counts["refresh states"] = RefreshState.objects.filter(company_id=company_pk).delete()[
                0
            ]
            _, by_model = Company.objects.filter(pk=company_pk).delete()
            counts["companies"] = by_model.get(Company._meta.label, 0)
        counts["webhook events"] = WebhookEvent.objects.filter(
            company_id=record.company_id
        ).delete()[0]
        RankingSnapshot.objects.all().delete()
        _count(record, counts, finished_at=timezone.now(), lease_until=None)


def _count(record: PurgeRecord, counts: Counter[str], **fields: object) -> None:
    """Add `counts` to the record's, in the transaction that removed them."""
    removed = Counter(PurgeRecord.objects.select_for_update().get(pk=record.pk).removed)
    removed.update({kind: n for kind, n in counts.items() if n})
    PurgeRecord.objects.filter(pk=record.pk).update(removed=dict(removed), **fields)


def resume(limit: int = 10) -> list[int]:
    """Purges left unfinished whose lease has passed (their worker died): their pks."""
    return list(
        PurgeRecord.objects.filter(finished_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .order_by("requested_at")
        .values_list("pk", flat=True)[:limit]
    )
