"""Reading the hourly rollup: clean hours from `SyncRollup`, the rest from the syncs.

`dashboard.rollup` decides which hours are clean (a `Plan`); this module reads
them, as one statement of plain SQL where that beats compiling the ORM's union
of grouped queries (the dashboard and the history ask on every view).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour

from ..models import Sync, SyncRollup
from . import twins

Span = tuple[datetime, datetime]
# Live spans read as separate branches of the union; the rest share the last.
MAX_BRANCHES = 16


@dataclass
class Plan:
    """How a range is read: clean hours from the rollup, the rest from the syncs."""

    # The rollup's part, [first, last) without the marked spans; None if no whole hour.
    window: tuple[datetime | None, datetime] | None
    marked: list[Span]
    # Read from the syncs: the marked spans and the partial hours at either end.
    live: list[Span]


def hour_window(first: datetime | None, last: datetime) -> Q:
    return Q(hour__lt=last) if first is None else Q(hour__gte=first, hour__lt=last)


def within(ranges: list[Span], column: str = "sync_utc") -> Q:
    condition = Q(pk__in=[])
    for start, end in ranges:
        condition |= Q(**{f"{column}__gte": start, f"{column}__lt": end})
    return condition


def _grouped(
    queryset: QuerySet[Any], column: str, syncs: Aggregate, unit: str | None, zone: tzinfo
) -> QuerySet[Any]:
    if unit is None:
        keyed = queryset.values("status_code", "category")
    else:
        trunc = (TruncHour if unit == "hour" else TruncDay)(column, tzinfo=zone)
        keyed = queryset.annotate(bucket=trunc).values("bucket", "status_code", "category")
    return keyed.annotate(
        syncs=syncs, items_completed=Sum("items_completed"), items_failed=Sum("items_failed")
    ).order_by()


def grouped(syncs: QuerySet[Sync], unit: str | None, zone: tzinfo) -> QuerySet[Any]:
    """Rows of (bucket,) status_code, category, syncs and item counts of these syncs."""
    return _grouped(syncs, "sync_utc", Count("*"), unit, zone)


def _live_query(ranges: list[Span], unit: str | None, zone: tzinfo) -> QuerySet[Any]:
    return grouped(Sync.objects.filter(within(ranges)), unit, zone)


def live(ranges: list[Span], unit: str | None = "hour", zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """Per bucket, code and category, straight from the syncs in these ranges."""
    return list(_live_query(ranges, unit, zone)) if ranges else []


def _branches(spans: list[Span]) -> list[list[Span]]:
    """Live spans as union branches: one span each (an index range), the rest in the last."""
    groups = [[span] for span in spans[: MAX_BRANCHES - 1]]
    if len(spans) >= MAX_BRANCHES:
        groups.append(spans[MAX_BRANCHES - 1 :])
    return groups


def _union_sql(
    plan: Plan, rollup_select: str, live_select: str, head_params: list[Any], extra: str,
    extra_params: list[Any], tail: str,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The plan as one UNION ALL of plain SQL (`... WHERE <condition><extra><tail>` each part)."""
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


def counts_postgresql(plan: Plan, unit: str | None, zone: tzinfo) -> list[dict[str, Any]]:
    """The plan's counts as one statement of plain SQL."""
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


def counts_portable(plan: Plan, unit: str | None, zone: tzinfo) -> list[dict[str, Any]]:
    """The plan's counts as the ORM's union of grouped queries, in one round trip."""
    if plan.window is None:
        return live(plan.live, unit, zone)
    clean = SyncRollup.objects.filter(hour_window(*plan.window))
    if plan.marked:
        clean = clean.exclude(within(plan.marked, "hour"))
    rolled = _grouped(clean, "hour", Sum("syncs"), unit, zone)
    if not plan.live:
        return list(rolled)
    # Each span is a branch of its own: one range is an index-only scan, where
    # an OR of ranges reads the table.
    branches = [_live_query(group, unit, zone) for group in _branches(plan.live)]
    return list(rolled.union(*branches, all=True))


# Rows of (bucket,) status_code, category, syncs and item counts, per part of the
# plan: rows for the same key may repeat, callers add them up.
counts = twins(counts_postgresql, counts_portable)


def count(plan: Plan, *, codes: Iterable[int] = (), category: int | None = None) -> int:
    """How many syncs the plan covers, with one of these codes and this category.

    One statement of plain SQL, the same on every database.
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
        plan,
        f"SELECT SUM(syncs) AS n FROM {SyncRollup._meta.db_table}",
        f"SELECT COUNT(*) AS n FROM {Sync._meta.db_table}",
        [], extra, extra_params, "",
    )  # fmt: skip
    if not sql:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(n), 0) FROM ({sql}) AS parts", params)
        return int(cursor.fetchone()[0])
