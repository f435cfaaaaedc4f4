"""A company whose last sync failed with N items, in the sandbox: the retry scenarios' start."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from sandbox import models as sb


def failed_company(items: int = 14, *, name: str = "Scenario Co") -> sb.Company:
    """Two good syncs, then one (an hour ago) whose `items` items all failed with 5130."""
    now = timezone.now()
    company = sb.Company.objects.create(
        name=name,
        created=now - timedelta(days=30),
        platform=sb.Platform.XERO,
        config={"bankAccount": {"id": "bank-1"}},
        config_modified=now - timedelta(days=30),
    )
    for days, code, status, count in ((3, 2000, sb.ItemStatus.COMPLETED, 3),
                                      (2, 2000, sb.ItemStatus.COMPLETED, 3),
                                      (0, 5130, sb.ItemStatus.PUSH_ERROR, items)):  # fmt: skip
        started = now - timedelta(days=days, hours=1)
        sync = sb.Sync.objects.create(
            company=company,
            kind=sb.SyncKind.EXPENSES,
            started_at=started,
            completes_at=started + timedelta(seconds=30),
            finalized=True,
            status_code=code,
            data_pushed=code == 2000,
            error_message="" if code == 2000 else "Some items could not be pushed.",
            item_count=count,
        )
        sb.Item.objects.bulk_create(
            sb.Item(
                sync=sync,
                position=position,
                transaction_id=uuid.uuid4(),
                integration_type=sb.IntegrationType.EXPENSES,
                data_type=sb.DataType.DIRECT_COSTS,
                status=status,
                message=None if status == sb.ItemStatus.COMPLETED else "The period is closed.",
            )
            for position in range(count)
        )
    return company
