"""Data types: which transaction was pushed as what, read from the push operations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..db import chunked
from ..db import items as db_items
from ..models import Company, RefreshState, Sync, TransactionState
from ..upstream import PushOperationRecord, Upstream
from . import state
from .records import parse_time, parse_uuid


def data_types(operations: Iterable[PushOperationRecord]) -> dict[uuid.UUID, str]:
    """Each transaction's data type, from the push operations that wrote or refused it.

    When operations name one transaction with several data types, the data
    type named first (in the operations' order) wins.
    """
    by_type: dict[str, list[uuid.UUID]] = {}
    for operation in operations:
        data_type = str(operation.get("dataType") or "")[:50]
        if not data_type:
            continue
        ids = [
            (change.get("recordRef") or {}).get("id") for change in operation.get("changes") or []
        ]
        ids += [
            error.get("itemId") for error in (operation.get("validation") or {}).get("errors") or []
        ]
        for raw in ids:
            tid = parse_uuid(raw)
            if tid is not None:
                by_type.setdefault(data_type, []).append(tid)
    chosen: dict[uuid.UUID, str] = {}
    for data_type, typed_ids in by_type.items():
        for tid in typed_ids:
            chosen.setdefault(tid, data_type)
    return chosen


def apply_types(company: Company, types: dict[uuid.UUID, str]) -> int:
    """Give the company's items that have no data type the one `types` names."""
    if not types:
        return 0
    sync_ids = list(Sync.objects.filter(company=company).values_list("pk", flat=True))
    if not sync_ids:
        return 0
    with transaction.atomic():
        state.lock_companies([company.pk])
        typed = db_items.set_types(sync_ids, types)
        if typed:
            # An outstanding item's problem names its data type: look again at
            # the outstanding ones that got one.
            outstanding = [
                tid
                for chunk in chunked(sorted(types), 1000)
                for tid in TransactionState.objects.filter(
                    company_id=company.pk, outstanding=True, transaction_id__in=chunk
                ).values_list("transaction_id", flat=True)
            ]
            if outstanding:
                state.recompute(company.pk, outstanding)
    return typed


def read_data_types(client: Upstream, company: Company, since: datetime) -> dict[uuid.UUID, str]:
    """Read push operations newest first, back to `since`: each transaction's data type."""
    types: dict[uuid.UUID, str] = {}
    for page in client.push_operation_pages(str(company.company_id)):
        for tid, data_type in data_types(page).items():
            types.setdefault(tid, data_type)  # an earlier page's data type wins
        times = [t for op in page if (t := parse_time(op.get("requestedOnUtc")))]
        if not times or min(times) < since:
            break
    RefreshState.objects.filter(company=company).update(push_fetched_at=timezone.now())
    return types


def refresh_data_types(client: Upstream, company: Company, since: datetime) -> int:
    """Read push operations newest first, back to `since`, and apply their data types."""
    return apply_types(company, read_data_types(client, company, since))
