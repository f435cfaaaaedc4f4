"""The hourly rollup of syncs behind the dashboard's totals and chart.

`SyncRollup` holds, per UTC hour, status code and category, how many syncs
started and their item counts. Triggers on the sync table (migration 0009)
log every hour whose syncs changed in `RollupDirty`; `refresh` rebuilds those
hours from the syncs. `counts` reads a range exactly at any moment: the rollup
for clean hours, the syncs themselves for marked hours and for the partial
hours at either end of the range (the reads themselves are in `dashboard.db.rollup`).

A mark is removed only by the rebuild that read it, inside the transaction
that rewrites its hour, so a change committed while a rebuild runs keeps its
own mark and is rebuilt next time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from django.db import transaction

from .db import rollup as db_rollup
from .db.locks import advisory_lock
from .db.rollup import Plan, hour_window, live
from .models import RollupDirty, SyncRollup

HOUR = timedelta(hours=1)
# Marks read per rebuild round, and hours per statement when deleting.
MARKS_PER_ROUND = 100_000
CHUNK = 500
# Any constant: the advisory lock that keeps two rebuilds from racing on PostgreSQL.
LOCK_KEY = 0x5F11C4EA1


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def spans(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """The fewest [start, end) spans that cover these hours exactly."""
    result: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if result and result[-1][1] == hour:
            result[-1] = (result[-1][0], hour + HOUR)
        else:
            result.append((hour, hour + HOUR))
    return result


def _plan(start: datetime | None, end: datetime) -> Plan:
    first = ceil_hour(start) if start is not None else None
    last = floor_hour(end)
    if first is not None and first >= last:
        return Plan(None, [], [(start, end)] if start is not None else [])
    # The hours read as marked, not a subquery: a mark made after this read
    # must not drop its hour from both parts.
    marked = spans(
        RollupDirty.objects.filter(hour_window(first, last))
        .order_by()
        .values_list("hour", flat=True)
        .distinct()
    )
    live = list(marked)
    if start is not None and first is not None and start < first:
        live.append((start, first))
    if last < end:
        live.append((last, end))
    return Plan((first, last), marked, live)


def counts(
    start: datetime | None, end: datetime, unit: str | None = "hour", zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Exact counts of the syncs that started in [start, end), per bucket, code and category.

    Buckets are hours or days in `zone`, whose offsets must be whole hours
    (the rollup's rows are UTC hours); no unit, no buckets: per code and category.
    Rows for the same key may repeat (rollup and live parts); callers add them up.
    """
    return db_rollup.counts(_plan(start, end), unit, zone)


def count(
    start: datetime | None,
    end: datetime,
    *,
    codes: Iterable[int] = (),
    category: int | None = None,
) -> int:
    """Exactly how many syncs started in [start, end), with one of these codes and this category."""
    return db_rollup.count(_plan(start, end), codes=codes, category=category)


def refresh() -> int:
    """Rebuild the rollup rows of every marked hour; returns how many hours."""
    rebuilt = 0
    while True:
        with transaction.atomic():
            advisory_lock(LOCK_KEY)
            marks = list(
                RollupDirty.objects.order_by("id").values_list("id", "hour")[:MARKS_PER_ROUND]
            )
            if not marks:
                return rebuilt
            hours = sorted({hour for _, hour in marks})
            for chunk in range(0, len(hours), CHUNK):
                SyncRollup.objects.filter(hour__in=hours[chunk : chunk + CHUNK]).delete()
            SyncRollup.objects.bulk_create(
                [
                    SyncRollup(
                        hour=row["bucket"],
                        status_code=row["status_code"],
                        category=row["category"],
                        syncs=row["syncs"],
                        items_completed=row["items_completed"] or 0,
                        items_failed=row["items_failed"] or 0,
                    )
                    for row in live(spans(hours))
                ],
                batch_size=2000,
            )
            ids = [pk for pk, _ in marks]
            for chunk in range(0, len(ids), 5000):
                RollupDirty.objects.filter(id__in=ids[chunk : chunk + 5000]).delete()
        rebuilt += len(hours)
        if len(marks) < MARKS_PER_ROUND:
            return rebuilt
