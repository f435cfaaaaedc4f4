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
from dataclasses import dataclass
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
# Counts that the rollup cannot answer stop here: past it, "more than".
COUNT_CAP = 10_000


def bounded_count(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """(count, capped): counts up to COUNT_CAP rows, never the whole table."""
    n = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
    return min(n, COUNT_CAP), n > COUNT_CAP


def advisory_lock(key: int, *, wait: bool = True) -> bool:
    """Take a transaction's advisory lock on PostgreSQL; False if taken and not waiting.

    SQLite needs none: its IMMEDIATE transactions already run one at a time.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


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


def grouped(syncs: QuerySet[Sync], unit: str | None, zone: tzinfo) -> QuerySet[Any]:
    """Rows of (bucket,) status_code, category, syncs and item counts of these syncs."""
    return (
        _bucketed(syncs, "sync_utc", unit, zone)
        .annotate(
            syncs=Count("*"),
            items_completed=Sum("items_completed"),
            items_failed=Sum("items_failed"),
        )
        .order_by()
    )


def _live_query(
    ranges: list[tuple[datetime, datetime]], unit: str | None, zone: tzinfo
) -> QuerySet[Any]:
    return grouped(Sync.objects.filter(_within(ranges)), unit, zone)


def live(
    ranges: list[tuple[datetime, datetime]], unit: str | None = "hour", zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Per bucket, code and category, straight from the syncs in these ranges."""
    return list(_live_query(ranges, unit, zone)) if ranges else []


@dataclass
class _Plan:
    """How a range is read: clean hours from the rollup, the rest from the syncs."""

    # The rollup's part, [first, last) without the marked spans; None if no whole hour.
    window: tuple[datetime | None, datetime] | None
    marked: list[tuple[datetime, datetime]]
    # Read from the syncs: the marked spans and the partial hours at either end.
    live: list[tuple[datetime, datetime]]


def _window(first: datetime | None, last: datetime) -> Q:
    return Q(hour__lt=last) if first is None else Q(hour__gte=first, hour__lt=last)


def _plan(start: datetime | None, end: datetime) -> _Plan:
    first = ceil_hour(start) if start is not None else None
    last = floor_hour(end)
    if first is not None and first >= last:
        return _Plan(None, [], [(start, end)] if start is not None else [])
    # The hours read as marked, not a subquery: a mark made after this read
    # must not drop its hour from both parts.
    marked = spans(
        RollupDirty.objects.filter(_window(first, last))
        .order_by()
        .values_list("hour", flat=True)
        .distinct()
    )
    live = list(marked)
    if start is not None and first is not None and start < first:
        live.append((start, first))
    if last < end:
        live.append((last, end))
    return _Plan((first, last), marked, live)


def _branches(spans_: list[tuple[datetime, datetime]]) -> list[list[tuple[datetime, datetime]]]:
    """Live spans as union branches: one span each (an index range), the rest in the last."""
    groups = [[span] for span in spans_[: MAX_BRANCHES - 1]]
    if len(spans_) >= MAX_BRANCHES:
        groups.append(spans_[MAX_BRANCHES - 1 :])
    return groups


def _union_sql(
    plan: _Plan, rollup_select: str, live_select: str, head_params: list[Any], extra: str,
    extra_params: list[Any], tail: str,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The plan as one UNION ALL of plain SQL (`... WHERE <condition><extra><tail>` each part).

    Only our table names, column names and placeholders are interpolated;
    every value is a parameter.
    """
    adapt = connection.ops.adapt_datetimefield_value
    parts: list[str] = []
    params: list[Any] = []
    if plan.window is not None:
        first, last = plan.window
        condition = "hour < %s"
        window_params = [adapt(last)]
        if first is not None:
            condition += " AND hour >= %s"
            window_params.append(adapt(first))
        for span_start, span_end in plan.marked:
            condition += " AND NOT (hour >= %s AND hour < %s)"
            window_params += [adapt(span_start), adapt(span_end)]
        parts.append(f"{rollup_select} WHERE {condition}{extra}{tail}")
        params += [*head_params, *window_params, *extra_params]
    for group in _branches(plan.live):
        condition = " OR ".join("(sync_utc >= %s AND sync_utc < %s)" for _ in group)
        parts.append(f"{live_select} WHERE ({condition}){extra}{tail}")
        params += head_params
        for span_start, span_end in group:
            params += [adapt(span_start), adapt(span_end)]
        params += extra_params
    return " UNION ALL ".join(parts), params


def counts(
    start: datetime | None, end: datetime, unit: str | None = "hour", zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Exact counts of the syncs that started in [start, end), per bucket, code and category.

    Buckets are hours or days in `zone`, whose offsets must be whole hours
    (the rollup's rows are UTC hours); no unit, no buckets: per code and category.
    Rows for the same key may repeat (rollup and live parts); callers add them up.
    """
    plan = _plan(start, end)
    if connection.vendor == "postgresql":
        return _counts_postgresql(plan, unit, zone)
    if plan.window is None:
        return live(plan.live, unit, zone)
    clean = SyncRollup.objects.filter(_window(*plan.window))
    if plan.marked:
        clean = clean.exclude(_within(plan.marked, "hour"))
    rolled = (
        _bucketed(clean, "hour", unit, zone)
        .annotate(
            syncs=Sum("syncs"),
            items_completed=Sum("items_completed"),
            items_failed=Sum("items_failed"),
        )
        .order_by()
    )
    if not plan.live:
        return list(rolled)
    # One round trip for both parts. Each span is a branch of its own: one
    # range is an index-only scan, where an OR of ranges reads the table.
    branches = [_live_query(group, unit, zone) for group in _branches(plan.live)]
    return list(rolled.union(*branches, all=True))


def _counts_postgresql(plan: _Plan, unit: str | None, zone: tzinfo) -> list[dict[str, Any]]:
    """`counts` as one statement of plain SQL: the dashboard asks on every view,
    and compiling the ORM's union of grouped queries cost more than running it."""
    if unit not in (None, "hour", "day"):
        raise ValueError(f"unknown unit {unit!r}")
    sums = (
        "SUM(items_completed)::bigint AS items_completed, SUM(items_failed)::bigint AS items_failed"
    )
    head = "date_trunc(%s, {} AT TIME ZONE %s) AS bucket, " if unit else ""
    head_params: list[Any] = [unit, getattr(zone, "key", None) or str(zone)] if unit else []
    group = " GROUP BY 1, 2, 3" if unit else " GROUP BY 1, 2"
    sql, params = _union_sql(
        plan,
        f"SELECT {head.format('hour')}status_code, category, SUM(syncs)::bigint AS syncs, {sums} "
        f"FROM {SyncRollup._meta.db_table}",
        f"SELECT {head.format('sync_utc')}status_code, category, COUNT(*) AS syncs, {sums} "
        f"FROM {Sync._meta.db_table}",
        head_params, "", [], group,
    )  # fmt: skip
    if not sql:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    if unit:
        for row in rows:
            row["bucket"] = row["bucket"].replace(tzinfo=zone)
    return rows


def count(
    start: datetime | None,
    end: datetime,
    *,
    codes: Iterable[int] = (),
    category: int | None = None,
) -> int:
    """Exactly how many syncs started in [start, end), with one of these codes and this category.

    The same parts as `counts`, summed by one statement of plain SQL: the
    history asks for a count on every page, and compiling the ORM's union of
    grouped queries cost more than running it.
    """
    extra, extra_params = "", []
    chosen = sorted(set(codes))
    if chosen:
        extra += f" AND status_code IN ({', '.join(['%s'] * len(chosen))})"
        extra_params += chosen
    if category is not None:
        extra += " AND category = %s"
        extra_params.append(category)
    sql, params = _union_sql(
        _plan(start, end),
        f"SELECT SUM(syncs) AS n FROM {SyncRollup._meta.db_table}",
        f"SELECT COUNT(*) AS n FROM {Sync._meta.db_table}",
        [], extra, extra_params, "",
    )  # fmt: skip
    if not sql:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(n), 0) FROM ({sql}) AS parts", params)
        return int(cursor.fetchone()[0])


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
