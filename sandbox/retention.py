"""The sandbox's request log, kept for RETENTION_REQUEST_LOG_DAYS (0: for ever).

Every request the sandbox answers adds a row; beat's hourly
*sandbox-prune-request-log* deletes the old ones in batches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import RequestLog

BATCH = 5000


def prune_request_log(before: datetime, batch: int = BATCH) -> int:
    """Delete at most `batch` log rows of requests started before `before`; returns how many.

    Rows are written in time order, so the oldest come first by primary key:
    the walk reads from the start of that index and never scans the table.
    """
    first = list(RequestLog.objects.order_by("pk").values_list("pk", "started_at")[:batch])
    pks = [pk for pk, started in first if started < before]
    if not pks:
        return 0
    return RequestLog.objects.filter(pk__in=pks).delete()[0]


def apply_retention(now: datetime | None = None, *, max_batches: int = 1000) -> int:
    """Delete the log rows older than the setting allows, batch by batch; returns how many."""
    days = settings.RETENTION_REQUEST_LOG_DAYS
    if not days:
        return 0
    before = (now or timezone.now()) - timedelta(days=days)
    removed = 0
    for _ in range(max_batches):
        done = prune_request_log(before)
        removed += done
        if not done:
            break
    return removed
