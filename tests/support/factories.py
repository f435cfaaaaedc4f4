"""Mirror rows built directly: companies, syncs with their items, config snapshots."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from django.utils import timezone

from dashboard.fingerprint import fingerprint
from dashboard.ingest import state, sync_category
from dashboard.models import Company, ConfigSnapshot, Problem, PushItem, Sync, TransactionState
from dashboard.vocabulary import FAILED_ITEM_STATUSES, OPEN_ITEM_STATUSES, ItemStatus

_n = itertools.count(1)


def make_company(**fields) -> Company:
    n = next(_n)
    values = {
        "company_id": uuid.uuid4(),
        "name": f"Company {n}",
        "platform_name": "Xero",
        "platform_key": "gbol",
    }
    values.update(fields)
    return Company.objects.create(**values)


def make_sync(
    company: Company,
    *,
    code: int = 2000,
    ago: timedelta = timedelta(hours=1),
    items=(),
    transaction_ids=(),
    **fields,
) -> Sync:
    """A sync and its items, and the current state they make (as ingest keeps it).

    `items` are (status, message) pairs; `transaction_ids`, if given, names the
    first items' transactions (a retry re-pushes the same ones).
    """
    started = timezone.now() - ago
    failed = sum(1 for status, _ in items if status in FAILED_ITEM_STATUSES)
    values = {
        "sync_id": uuid.uuid4(),
        "company": company,
        "status_code": code,
        "sync_utc": started,
        "category": sync_category(code, failed),
        "items_total": len(items),
        "items_failed": failed,
        "items_completed": sum(1 for status, _ in items if status == ItemStatus.COMPLETED),
        "items_pending": sum(1 for status, _ in items if status in OPEN_ITEM_STATUSES),
        "items_status_code": code,
        "data_pushed": code == 2000,
        "platform_name": company.platform_name,
    }
    if code not in (1000, 1010):
        values["completed_at"] = started + timedelta(seconds=90)
        values["duration_s"] = 90
    values.update(fields)
    retry_of = values.get("retry_of") or values.get("retry_of_id")
    values.setdefault("chain_category", None if retry_of else values["category"])
    if values.get("error_message"):
        values["error_fingerprint"] = fingerprint(values["error_message"])
    sync = Sync.objects.create(**values)
    ids = list(transaction_ids)
    ids += [uuid.uuid4() for _ in range(len(items) - len(ids))]
    PushItem.objects.bulk_create(
        [
            PushItem(
                sync=sync,
                transaction_id=tid,
                status=status,
                message=message,
                data_type="directCosts" if status != ItemStatus.PENDING else "",
                fingerprint=fingerprint(message),
            )
            for tid, (status, message) in zip(ids, items, strict=False)
        ]
    )
    pushed = list(zip(ids, (status for status, _ in items), strict=False))
    state.track(
        {
            company.pk: (
                {tid for tid, status in pushed if status != ItemStatus.COMPLETED},
                {tid for tid, status in pushed if status == ItemStatus.COMPLETED},
            )
        }
    )
    sync.refresh_from_db()
    return sync


def make_config(
    company: Company, config: dict, *, ago: timedelta = timedelta(days=1)
) -> ConfigSnapshot:
    from dashboard.ingest import config_digest

    return ConfigSnapshot.objects.create(
        company=company,
        config=config,
        digest=config_digest(config),
        fetched_at=timezone.now() - ago,
    )


def problem_of(sync: Sync, transaction_id: uuid.UUID | None = None) -> Problem:
    """The problem a transaction of the sync (else its first failed one) is outstanding with."""
    if transaction_id is None:
        transaction_id = (
            sync.items.filter(status__in=FAILED_ITEM_STATUSES)
            .order_by("pk")
            .values_list("transaction_id", flat=True)[0]
        )
    state = TransactionState.objects.get(
        company_id=sync.company_id, transaction_id=transaction_id, outstanding=True
    )
    return Problem.objects.get(pk=state.problem_id)


def make_failed_sync_without_items(
    company: Company, message: str, *, code: int = 4000, **fields
) -> tuple[Sync, Problem]:
    """A failed sync without items, given its problem as a refresh does: by the company's
    failing streak, which it is part of."""
    from dashboard.ingest.refresh import update_streak

    sync = make_sync(company, code=code, error_message=message, **fields)
    update_streak(Company.objects.get(pk=company.pk))
    sync.refresh_from_db()
    assert sync.problem_id is not None, "the sync is in its company's failing streak"
    return sync, Problem.objects.get(pk=sync.problem_id)
