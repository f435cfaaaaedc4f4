"""The hourly rollup of syncs behind the dashboard's totals and chart.

`SyncRollup` holds, per UTC hour, status code and category, how many syncs
started and their item counts. Triggers on the sync table (migration 0009)
log every hour whose syncs changed in `RollupDirty`; `refresh` rebuilds those
hours from the syncs. `counts` reads a range exactly at any moment: the rollup
for clean hours, the syncs themselves for marked hours and for the partial
hours at either end of the range.

A mark is removed only by the rebuild that read it, inside the transaction
that rewrites its hour, so a change committed while a rebuild runs keeps its
own mark and is rebuilt next time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour

from .models import RollupDirty, Sync, SyncRollup

HOUR = timedelta(hours=1)
# Marks read per rebuild round, and hours per statement when deleting.
MARKS_PER_ROUND = 100_000
CHUNK = 500
# Live spans read as separate branches of the union; the rest share the last.
MAX_BRANCHES = 16
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


def _within(ranges: list[tuple[datetime, datetime]], column: str = "sync_utc") -> Q:
    condition = Q(pk__in=[])
    for start, end in ranges:
        condition |= Q(**{f"{column}__gte": start, f"{column}__lt": end})
    return condition


def _bucketed(
    queryset: QuerySet[Any], column: str, unit: str | None, zone: tzinfo
) -> QuerySet[Any]:
    if unit is None:
        return queryset.values("status_code", "category")
    trunc = (TruncHour if unit == "hour" else TruncDay)(column, tzinfo=zone)
    return queryset.annotate(bucket=trunc).values("bucket", "status_code", "category")


def _live_query(
    ranges: list[tuple[datetime, datetime]], unit: str | None, zone: tzinfo
) -> QuerySet[Any]:
    return (
        _bucketed(Sync.objects.filter(_within(ranges)), "sync_utc", unit, zone)
        .annotate(
            syncs=Count("*"),
            items_completed=Sum("items_completed"),
            items_failed=Sum("items_failed"),
        )
        .order_by()
    )


def live(
    ranges: list[tuple[datetime, datetime]], unit: str | None = "hour", zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Per bucket, code and category, straight from the syncs in these ranges."""
    return list(_live_query(ranges, unit, zone)) if ranges else []


def counts(
    start: datetime | None, end: datetime, unit: str | None = "hour", zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Exact counts of the syncs that started in [start, end), per bucket, code and category.

    Buckets are hours or days in `zone`, whose offsets must be whole hours
    (the rollup's rows are UTC hours); no unit, no buckets: per code and category.
    Rows for the same key may repeat (rollup and live parts); callers add them up.
    """
    first = ceil_hour(start) if start is not None else None
    last = floor_hour(end)
    if first is not None and first >= last:
        return live([(start, end)], unit, zone) if start is not None else []
    window = Q(hour__lt=last) if first is None else Q(hour__gte=first, hour__lt=last)
    dirty = spans(
        RollupDirty.objects.filter(window).order_by().values_list("hour", flat=True).distinct()
    )
    clean = SyncRollup.objects.filter(window)
    if dirty:
        # The hours read as marked, not a subquery: a mark made after that read
        # must not drop its hour from both parts.
        clean = clean.exclude(_within(dirty, "hour"))
    rolled = (
        _bucketed(clean, "hour", unit, zone)
        .annotate(
            syncs=Sum("syncs"),
            items_completed=Sum("items_completed"),
            items_failed=Sum("items_failed"),
        )
        .order_by()
    )
    edges = list(dirty)
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if last < end:
        edges.append((last, end))
    if not edges:
        return list(rolled)
    # One round trip for both parts. Each span is a branch of its own: one
    # range is an index-only scan, where an OR of ranges reads the table.
    branches = [_live_query([span], unit, zone) for span in edges[: MAX_BRANCHES - 1]]
    if len(edges) >= MAX_BRANCHES:
        branches.append(_live_query(edges[MAX_BRANCHES - 1 :], unit, zone))
    return list(rolled.union(*branches, all=True))


def count(
    start: datetime | None,
    end: datetime,
    *,
    codes: Iterable[int] = (),
    category: int | None = None,
) -> int:
    """Exactly how many syncs started in [start, end), with one of these codes and this category.

    The same parts as `counts` (clean hours from the rollup, marked and partial
    hours from the syncs), summed by one statement of plain SQL: the history
    asks for a count on every page, and compiling the ORM's union of grouped
    queries cost more than running it.
    """
    adapt = connection.ops.adapt_datetimefield_value
    codes = sorted(set(codes))
    extra, extra_params = "", []
    if codes:
        extra += f" AND status_code IN ({', '.join(['%s'] * len(codes))})"
        extra_params += codes
    if category is not None:
        extra += " AND category = %s"
        extra_params.append(category)
    first = ceil_hour(start) if start is not None else None
    last = floor_hour(end)
    parts: list[str] = []
    params: list[Any] = []
    live_spans: list[tuple[datetime, datetime]] = []
    if first is not None and first >= last:
        if start is not None:
            live_spans.append((start, end))
    else:
        window = Q(hour__lt=last) if first is None else Q(hour__gte=first, hour__lt=last)
        dirty = spans(
            RollupDirty.objects.filter(window).order_by().values_list("hour", flat=True).distinct()
        )
        condition = "hour < %s"
        params.append(adapt(last))
        if first is not None:
            condition += " AND hour >= %s"
            params.append(adapt(first))
        for span_start, span_end in dirty:
            condition += " AND NOT (hour >= %s AND hour < %s)"
            params += [adapt(span_start), adapt(span_end)]
        parts.append(
            f"SELECT SUM(syncs) AS n FROM {SyncRollup._meta.db_table} "  # noqa: S608 - see below
            f"WHERE {condition}{extra}"
        )
        params += extra_params
        live_spans += dirty
        if start is not None and first is not None and start < first:
            live_spans.append((start, first))
        if last < end:
            live_spans.append((last, end))
    # One branch per span (an index range each), the rest in the last branch.
    groups = [[span] for span in live_spans[: MAX_BRANCHES - 1]]
    if len(live_spans) >= MAX_BRANCHES:
        groups.append(live_spans[MAX_BRANCHES - 1 :])
    for group in groups:
        condition = " OR ".join("(sync_utc >= %s AND sync_utc < %s)" for _ in group)
        parts.append(
            f"SELECT COUNT(*) AS n FROM {Sync._meta.db_table} "  # noqa: S608 - see below
            f"WHERE ({condition}){extra}"
        )
        for span_start, span_end in group:
            params += [adapt(span_start), adapt(span_end)]
        params += extra_params
    if not parts:
        return 0
    # Only our table names and placeholders are interpolated; every value is a parameter.
    sql = f"SELECT COALESCE(SUM(n), 0) FROM ({' UNION ALL '.join(parts)}) AS parts"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def _lock() -> None:
    # SQLite needs none: its IMMEDIATE transactions already run one at a time.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def refresh() -> int:
    """Rebuild the rollup rows of every marked hour; returns how many hours."""
    rebuilt = 0
    while True:
        with transaction.atomic():
            _lock()
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
