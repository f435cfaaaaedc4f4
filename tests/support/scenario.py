"""A company whose last sync failed with N items, in the sandbox: the retry scenarios' start."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone

from sandbox import models as sb

CLOSED = "The period is closed."


def failed_company(
    items: int = 14, *, name: str = "Scenario Co", messages: Sequence[str] = (CLOSED,)
) -> sb.Company:
    """Two good syncs, then one (an hour ago) whose `items` items all failed with 5130
    (taking the `messages` in turn)."""
    now = timezone.now()
    company = sb.Company.objects.create(
        name=name,
        created=now - timedelta(days=30),
        platform=sb.Platform.XERO,
        config={"bankAccount": {"id": "bank-1"}},
        config_modified=now - timedelta(days=30),
    )
    for days, code, count in ((3, 2000, 3), (2, 2000, 3), (0, 5130, items)):
        started = now - timedelta(days=days, hours=1)
        finished_sync(company, started=started, code=code, items=count, messages=messages)
    return company


def finished_sync(
    company: sb.Company,
    *,
    started: datetime,
    code: int,
    items: int,
    messages: Sequence[str] = (CLOSED,),
) -> sb.Sync:
    """A finished expense sync: every item completed (2000), or every one failed, the items
    taking the `messages` in turn."""
    status = sb.ItemStatus.COMPLETED if code == 2000 else sb.ItemStatus.PUSH_ERROR
    sync = sb.Sync.objects.create(
        company=company,
        kind=sb.SyncKind.EXPENSES,
        started_at=started,
        completes_at=started + timedelta(seconds=30),
        finalized=True,
        status_code=code,
        data_pushed=code == 2000,
        error_message="" if code == 2000 else "Some items could not be pushed.",
        item_count=items,
    )
    sb.Item.objects.bulk_create(
        sb.Item(
            sync=sync,
            position=position,
            transaction_id=uuid.uuid4(),
            integration_type=sb.IntegrationType.EXPENSES,
            data_type=sb.DataType.DIRECT_COSTS,
            status=status,
            message=None
            if status == sb.ItemStatus.COMPLETED
            else messages[position % len(messages)],
        )
        for position in range(items)
    )
    return sync
