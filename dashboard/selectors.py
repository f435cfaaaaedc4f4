"""Reads that shape the pages' queries. Views call these; nothing here writes.

Every list is bounded and index-backed: history pages by keyset (no deep
OFFSET), counts capped (no full-table COUNT(*)).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from . import cursors, rankings, rollup, search
from .db import rollup as db_rollup
from .db.capped import COUNT_CAP, bounded_count
from .filters import Range, SyncFilter, encode_cursor
from .models import Company, ConfigSnapshot, PushItem, Sync, TransactionState
from .problems import rows as problem_rows
from .problems.rows import Cause
from .vocabulary import IN_PROGRESS_CODES, STATUS_CODES, Category, ItemStatus, status_label

PAGE_SIZE = 50

SORT_COLUMNS = {
    "time": "sync_utc",
    "company": "company__name",
    "platform": "platform_name",
    "status": "status_code",
    "items": "items_total",
    "duration": "duration_s",
}


def filtered_syncs(filters: SyncFilter) -> QuerySet[Sync]:
    """The syncs a filter selects (unordered)."""
    return _in_range(_selected(filters), filters.span)


def _in_range(syncs: QuerySet[Sync], span: Range) -> QuerySet[Sync]:
    syncs = syncs.filter(sync_utc__lt=span.end)
    if span.start is not None:
        syncs = syncs.filter(sync_utc__gte=span.start)
    return syncs


def _selected(filters: SyncFilter) -> QuerySet[Sync]:
    """The syncs a filter selects over all time: every filter but the date range."""
    syncs = Sync.objects.all()
    if filters.codes:
        syncs = syncs.filter(status_code__in=filters.codes)
    if filters.category is not None:
        syncs = syncs.filter(category=filters.category)
    if filters.platform:
        syncs = syncs.filter(platform_name=filters.platform)
    if filters.failed_items:
        syncs = syncs.filter(items_failed__gt=0)
    if filters.company:
        syncs = syncs.filter(company__company_id=filters.company)
    if filters.fingerprint:
        syncs = syncs.filter(error_fingerprint=filters.fingerprint)
    if filters.problem is not None:
        syncs = syncs.filter(problem_syncs(filters.problem))
    if filters.state == "outstanding":
        # Originals: a retry's outstanding items are its original's, counted there.
        syncs = syncs.filter(items_outstanding__gt=0, retry_of__isnull=True)
    elif filters.state == "resolved":
        syncs = syncs.filter(resolved_at__isnull=False)
    elif filters.state == "failing":
        # What the failing companies count: originals whose chain still counts as failed.
        syncs = syncs.filter(chain_category=Category.FAILED)
    if filters.q:
        syncs = _searched(syncs, filters)
    return syncs


def problem_syncs(problem: int) -> Q:
    """A problem's syncs: the tips holding its outstanding items (each where it last
    failed), and its failed syncs without items.

    Each part alone is a semi-join the planner can read in the history's order,
    probing each sync's outstanding tips (`transaction_state_tip`) and stopping
    at a page, or read from the problem's own partial index when it is small;
    a union of the two (rare: a problem of both items and syncs without items)
    is always read whole. So the parts are asked for first: two index probes.
    """
    tips = TransactionState.objects.filter(problem_id=problem, outstanding=True)
    failed = Sync.objects.filter(_streak_failure(problem))
    has_tips, has_failed = tips.exists(), failed.exists()
    if has_tips and has_failed:
        return Q(pk__in=tips.values("last_sync_id").union(failed.values("pk")))
    if has_failed:
        return _streak_failure(problem)
    return Q(pk__in=tips.values("last_sync_id"))


def _tips_only(filters: SyncFilter) -> bool:
    """Whether the selection is a problem's tips alone (no other filter; a problem of
    items, without failed syncs of its own): its pages are read from its items."""
    if not filters.problem_only:
        return False
    assert filters.problem is not None
    return not Sync.objects.filter(_streak_failure(filters.problem)).exists()


def _tips_page(
    problem: int, span: Range, cursor: tuple | None, down: bool, limit: int
) -> list[int]:
    """The primary keys of a problem's next `limit` tips in the history's time order,
    after the cursor: read from its outstanding items' own index, where each item's
    `last_sync_utc` is its tip's start, not by probing every sync of the range for
    one (12,000 probes for a page of a problem with 35,000 items among a million)."""
    tips = TransactionState.objects.filter(
        problem_id=problem, outstanding=True, last_sync_utc__lt=span.end
    )
    if span.start is not None:
        tips = tips.filter(last_sync_utc__gte=span.start)
    if cursor is not None:
        value, pk = cursor
        tips = tips.filter(cursors.after("last_sync_utc", down, value, pk, key="last_sync_id"))
    sign = "-" if down else ""
    ordered = tips.order_by(f"{sign}last_sync_utc", f"{sign}last_sync_id")
    return list(ordered.values_list("last_sync_id", flat=True).distinct()[:limit])


def _streak_failure(problem: int) -> Q:
    """A failed sync without items of the problem that still counts: in its company's
    current failing streak (an older one keeps its problem as its cause, resolved)."""
    return Q(
        problem_id=problem,
        company__failing_streak__gt=0,
        sync_utc__gte=F("company__failing_since"),
    )


def problem_count(problem: int, span: Range) -> tuple[int, bool]:
    """(count, capped) of a problem's syncs in the range, without reading a sync.

    Its tips are counted from its outstanding items' own index (an item's
    `last_sync_utc` is its tip's start), distinct; its failed syncs without
    items from theirs. The two never share a sync: a tip has items.
    """
    tips = TransactionState.objects.filter(problem_id=problem, outstanding=True)
    tips = tips.filter(last_sync_utc__lt=span.end)
    if span.start is not None:
        tips = tips.filter(last_sync_utc__gte=span.start)
    distinct = tips.order_by().values("last_sync_id").distinct()[: COUNT_CAP + 1].count()
    failed, _ = bounded_count(_in_range(Sync.objects.filter(_streak_failure(problem)), span))
    total = distinct + failed
    return min(total, COUNT_CAP), total > COUNT_CAP


def _searched(syncs: QuerySet[Sync], filters: SyncFilter) -> QuerySet[Sync]:
    """The syncs a search finds: by ID (or its start), else by company name.

    An ID names companies, syncs or transactions; each is resolved to keys
    on its own index first (an OR across the joins would scan). A search
    shaped like an ID that matches none is read as a name ("Facade").
    """
    ids = filters.id_range
    if ids is not None:
        keys = search.keys(ids)
        if not keys.empty:
            return syncs.filter(keys.condition)
    named = search.companies_named(filters.q).values_list("pk", flat=True)
    return syncs.filter(company_id__in=list(named[: search.COMPANY_MATCH_CAP]))


def outside_range(
    filters: SyncFilter, selected: QuerySet[Sync] | None = None
) -> tuple[int, bool] | None:
    """(count, capped) of the syncs an ID search finds outside the date range, if any.

    An ID names its syncs whatever the range; the history keeps the range the
    page shows, and says how many more there are beyond it.
    """
    span = filters.span
    if filters.search_kind != "id" or (span.start is None and filters.preset != "custom"):
        return None
    outside = Q(sync_utc__gte=span.end)
    if span.start is not None:
        outside |= Q(sync_utc__lt=span.start)
    if selected is None:
        selected = _selected(filters)
    count, capped = bounded_count(selected.filter(outside))
    return (count, capped) if count else None


def history_count(filters: SyncFilter, syncs: QuerySet[Sync]) -> tuple[int, bool]:
    """(count, capped): exact from the rollup when it can tell, else bounded."""
    if filters.problem_only:
        assert filters.problem is not None
        return problem_count(filters.problem, filters.span)
    if not filters.rollup_countable:
        return bounded_count(syncs)
    span = filters.span
    count = rollup.count(span.start, span.end, codes=filters.codes, category=filters.category)
    return count, False


class HistoryRow(NamedTuple):
    """What a history row shows and sorts by, read as plain values.

    Fifty model instances a page (a sync and its company each) cost more to
    build than the query that reads them.
    """

    pk: int
    sync_id: uuid.UUID
    status_code: int
    status_text: str
    category: int
    sync_utc: datetime
    items_total: int
    items_failed: int
    items_outstanding: int
    resolved_at: datetime | None
    duration_s: int | None
    platform_name: str
    company_uuid: uuid.UUID
    company_name: str
    retry_of_id: int | None = None
    problem_id: int | None = None
    error_message: str = ""
    exception_message: str = ""
    # When the mirror first saw it: "new" since the person's last visit.
    first_seen: datetime | None = None

    @property
    def status_label(self) -> str:
        return status_label(self.status_code, self.status_text)


# The columns of a HistoryRow, in its order.
HISTORY_ROW_COLUMNS = (
    "id", "sync_id", "status_code", "status_text", "category", "sync_utc", "items_total",
    "items_failed", "items_outstanding", "resolved_at", "duration_s", "platform_name",
    "company__company_id", "company__name", "retry_of_id", "problem_id", "error_message",
    "exception_message", "first_seen",
)  # fmt: skip
# The row's field that holds each sort column's value (the next page's cursor).
ROW_FIELD = dict(zip(HISTORY_ROW_COLUMNS, HistoryRow._fields, strict=True))


@dataclass
class HistoryPage:
    rows: list[HistoryRow]
    next_cursor: str | None
    count: int
    capped: bool
    sort: str
    direction: str
    # How many syncs an ID search finds that the date range hides (capped: more than that).
    outside: int = 0
    outside_capped: bool = False
    # Each row's cause, by its pk (a row without one has none).
    causes: dict[int, Cause] = field(default_factory=dict)
    # The page before this one, read backwards from its first row (None on the first page).
    previous_cursor: str | None = None
    # Where the first row stands in the selection (1 on the first page), if known.
    first: int | None = None
    # Whether this is the first page, or the last (nothing before its first row, or after its last).
    at_start: bool = True
    at_end: bool = True

    @property
    def last(self) -> int | None:
        """Where the last row stands, if the first's place is known."""
        return None if self.first is None or not self.rows else self.first + len(self.rows) - 1


NULLABLE_SORTS = {"duration_s"}


def _ordering(column: str, descending: bool) -> list[Any]:
    # NULLS LAST only where a column can be null: on the others it would stop
    # PostgreSQL from reading the (column DESC, id DESC) index in order.
    expr = F(column)
    nulls = {"nulls_last": True} if column in NULLABLE_SORTS else {}
    if descending:
        return [expr.desc(**nulls), F("id").desc()]
    return [expr.asc(**nulls), F("id").asc()]


def _page_rows(
    syncs: QuerySet[Sync],
    column: str,
    descending: bool,
    cursor: tuple | None,
    limit: int,
    *,
    backward: bool = False,
) -> list[HistoryRow]:
    """Up to `limit` rows in the ordering (nulls last), after the cursor if any.

    Backward, the same ordering is read from its other end (nulls first, each
    part reversed), before the cursor if any: the rows nearest it come first.

    A nullable column is read as two index ranges, its values and then its
    nulls by id, rather than one NULLS LAST sort that no portable index serves.
    """
    down = descending != backward
    sign = "-" if down else ""
    op = "lt" if down else "gt"
    valued = syncs.order_by(f"{sign}{column}", f"{sign}id")
    # The parts in the reading order: (rows, whether their column has a value).
    parts = [(valued, True)]
    if column in NULLABLE_SORTS:
        parts = [
            (valued.filter(**{f"{column}__isnull": False}), True),
            (syncs.filter(**{f"{column}__isnull": True}).order_by(f"{sign}id"), False),
        ]
        if backward:
            parts.reverse()
    value, pk = cursor if cursor is not None else (None, None)
    started = cursor is None
    rows: list[HistoryRow] = []
    for part, has_values in parts:
        if not started:
            # The parts before the cursor's own hold nothing after it.
            if has_values != (value is not None):
                continue
            started = True
            if has_values:
                part = part.filter(cursors.after(column, down, value, pk))
            else:
                part = part.filter(**{f"id__{op}": pk})
        rows += _rows(part[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def _rows(syncs: QuerySet[Sync]) -> list[HistoryRow]:
    return [HistoryRow._make(values) for values in syncs.values_list(*HISTORY_ROW_COLUMNS)]


def _cursor_of(row: HistoryRow, column: str) -> str:
    key = getattr(row, ROW_FIELD[column])
    return encode_cursor(key.isoformat() if isinstance(key, datetime) else key, row.pk)


def history_page(
    filters: SyncFilter, size: int = PAGE_SIZE, position: int | None = None
) -> HistoryPage:
    """A page of the selection: the first, the one after or before a cursor, or the last.

    Every page is a keyset read of `size + 1` rows from an index, whichever
    way it is read; `position` (where the page's first row stands, carried
    by the link that led here) only labels it.
    """
    sort = filters.sort
    direction = "desc" if filters.descending else "asc"
    column = SORT_COLUMNS[sort]
    descending = filters.descending
    selected = _selected(filters)
    syncs = _in_range(selected, filters.span)
    count, capped = history_count(filters, syncs)

    tips_only = column == "sync_utc" and _tips_only(filters)

    def page_of(cursor: tuple | None, back: bool) -> QuerySet[Sync]:
        if not tips_only:
            return syncs
        assert filters.problem is not None
        down = descending != back
        tips = _tips_page(filters.problem, filters.span, cursor, down, size + 1)
        return syncs.filter(pk__in=tips)

    def forward(cursor: tuple | None) -> tuple[list[HistoryRow], bool]:
        rows = _page_rows(page_of(cursor, False), column, descending, cursor, size + 1)
        return rows[:size], len(rows) > size

    def backward(cursor: tuple | None) -> tuple[list[HistoryRow], bool]:
        rows = _page_rows(
            page_of(cursor, True), column, descending, cursor, size + 1, backward=True
        )
        return rows[:size][::-1], len(rows) > size

    first: int | None
    if filters.before is not None:
        rows, more_before = backward(filters.before)
        at_end = False
        first = position
        if not more_before:
            # Back at the start: the first page, whole (rows may have come since).
            rows, more_after = forward(None)
            at_end, first = not more_after, 1
    elif filters.last_page:
        rows, more_before = backward(None)
        at_end = True
        first = max(count - len(rows) + 1, 1) if not capped else None
        if not more_before:
            first = 1
    else:
        rows, more_after = forward(filters.after)
        more_before = filters.after is not None
        at_end = not more_after
        first = position if more_before else 1
    if first is not None and not capped and first + len(rows) - 1 > count:
        # A stale position (the selection changed since the link was made): unknown.
        first = None
    outside, outside_capped = outside_range(filters, selected) or (0, False)
    return HistoryPage(
        rows,
        _cursor_of(rows[-1], column) if rows and not at_end else None,
        count,
        capped,
        sort,
        direction,
        outside,
        outside_capped,
        causes=problem_rows.causes(rows),
        previous_cursor=_cursor_of(rows[0], column) if rows and more_before else None,
        first=first,
        at_start=not more_before,
        at_end=at_end,
    )


def company_name(company_id: uuid.UUID) -> str | None:
    """A company's name, by its upstream ID (None if no company has it)."""
    return Company.objects.filter(company_id=company_id).values_list("name", flat=True).first()


def fingerprint_cause(fingerprint: str) -> str | None:
    """What an error group's latest sync failed of: its problem's cause, else its message."""
    row = (
        Sync.objects.filter(error_fingerprint=fingerprint)
        .order_by("-sync_utc")
        .values_list("problem__cause", "error_message")
        .first()
    )
    if row is None:
        return None
    cause, message = row
    return cause or message or None


def export_rows(filters: SyncFilter) -> QuerySet[Sync]:
    """Every sync the filter selects, with its company, in the history's order (the CSV)."""
    return (
        filtered_syncs(filters)
        .select_related("company", "resolved_by", "retry_of")
        .order_by(*_ordering(SORT_COLUMNS[filters.sort], filters.descending))
    )


# --- the summary dashboard ---


@dataclass(frozen=True)
class Outstanding:
    """What is still to push now: transactions, original syncs, companies."""

    items: int
    syncs: int
    companies: int


def outstanding_now(platform: str = "") -> Outstanding:
    """Now, across all time: read from the per-company counts ingest keeps."""
    companies = Company.objects.filter(items_outstanding__gt=0)
    if platform:
        companies = companies.filter(platform_name=platform)
    figures = companies.aggregate(
        items=Sum("items_outstanding"), syncs=Sum("syncs_outstanding"), companies=Count("*")
    )
    return Outstanding(
        int(figures["items"] or 0), int(figures["syncs"] or 0), int(figures["companies"] or 0)
    )


@dataclass
class Summary:
    total: int = 0
    by_category: dict[int, int] = field(default_factory=dict)
    by_code: list[tuple[int, str, int, int]] = field(default_factory=list)
    items_pushed: int = 0
    items_failed: int = 0
    success_rate: float | None = None
    buckets: list[dict[str, Any]] = field(default_factory=list)
    bucket_unit: str = "day"
    failing_companies: list[dict[str, Any]] = field(default_factory=list)
    streaks: list[dict[str, Any]] = field(default_factory=list)
    long_running: list[dict[str, Any]] = field(default_factory=list)
    long_running_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # When the rankings were counted, if they come from the rankings task's snapshot.
    ranked_at: datetime | None = None
    # What is still broken now, whatever the range: see `outstanding_now`.
    outstanding: Outstanding | None = None
    # Of the range's original syncs, how many still have outstanding items.
    outstanding_in_range: int = 0
    outstanding_in_range_capped: bool = False

    @property
    def outcomes(self) -> dict[str, int]:
        """Syncs per category, by its name (`outcomes.failed`)."""
        return {category.key: self.by_category.get(category, 0) for category in Category}


def _whole_hour_zone(zone: tzinfo, *moments: datetime | None) -> bool:
    """Whether the zone's local hours are UTC hours (the rollup's buckets) around these moments."""
    year = timezone.now().year
    samples = [m for m in moments if m is not None]
    samples += [datetime(year, 1, 1, tzinfo=UTC), datetime(year, 7, 1, tzinfo=UTC)]
    return all(
        (offset := moment.astimezone(zone).utcoffset()) is not None
        and offset.total_seconds() % 3600 == 0
        for moment in samples
    )


def _counted_rows(filters: SyncFilter, syncs: QuerySet[Sync], hourly: bool) -> list[dict]:
    """Rows of bucket (start, in the current zone), status_code, category, syncs, items."""
    span = filters.span
    zone = timezone.get_current_timezone()
    unit = "hour" if hourly else "day"
    if filters.range_only and _whole_hour_zone(zone, span.start, span.end):
        return rollup.counts(span.start, span.end, unit, zone)
    return list(db_rollup.grouped(syncs, unit, zone))


def _preset_snapshot(filters: SyncFilter) -> rankings.Rankings | None:
    """The rankings task's count for a preset range with no other filter, if recent."""
    if not filters.range_only or filters.preset == "custom":
        return None
    return rankings.snapshot(filters.preset)


def summary(filters: SyncFilter) -> Summary:
    syncs = filtered_syncs(filters).order_by()
    span = filters.span
    hourly = span.hours <= 48
    result, series = _totals(filters, syncs, hourly)
    result.buckets = _fill_buckets(series, span.start, span.end, hourly)
    ranked = _preset_snapshot(filters) or rankings.count(syncs)
    result.failing_companies = ranked.failing_companies
    result.errors = ranked.errors
    result.ranked_at = ranked.counted_at if ranked.from_snapshot else None
    result.streaks = ranked.streaks
    result.long_running = ranked.long_running
    result.long_running_count = ranked.long_running_count
    return result


def totals(filters: SyncFilter) -> Summary:
    """The summary's cards alone, without the chart and the rankings: what the dashboard
    asks for again while it is open."""
    syncs = filtered_syncs(filters).order_by()
    return _totals(filters, syncs, filters.span.hours <= 48)[0]


def _totals(
    filters: SyncFilter, syncs: QuerySet[Sync], hourly: bool
) -> tuple[Summary, dict[datetime, dict[int, int]]]:
    """The range's totals and codes, what is outstanding, and the counts per bucket."""
    result = Summary()
    result.bucket_unit = "hour" if hourly else "day"
    # One pass over the range gives the totals, the codes and the chart.
    codes: dict[int, int] = {}
    series: dict[datetime, dict[int, int]] = {}
    for row in _counted_rows(filters, syncs, hourly):
        n, code, category = row["syncs"], row["status_code"], row["category"]
        result.total += n
        result.by_category[category] = result.by_category.get(category, 0) + n
        result.items_pushed += row["items_completed"] or 0
        result.items_failed += row["items_failed"] or 0
        codes[code] = codes.get(code, 0) + n
        bucket = series.setdefault(row["bucket"], {})
        bucket[category] = bucket.get(category, 0) + n
    result.by_code = [
        (code, text, int(category), codes.get(code, 0))
        for code, (text, category) in STATUS_CODES.items()
    ] + [
        (code, "Unknown code", int(Category.FAILED), n)
        for code, n in codes.items()
        if code not in STATUS_CODES
    ]
    finished = result.by_category.get(Category.SUCCESS, 0) + result.by_category.get(
        Category.FAILED, 0
    )
    if finished:
        result.success_rate = result.by_category.get(Category.SUCCESS, 0) / finished
    result.outstanding = outstanding_now(filters.platform)
    result.outstanding_in_range, result.outstanding_in_range_capped = bounded_count(
        syncs.filter(items_outstanding__gt=0, retry_of__isnull=True)
    )
    return result, series


def item_totals(filters: SyncFilter) -> tuple[int, int]:
    """The items completed and failed in the filter's syncs, as the dashboard counts them:
    the rollup's sums for a range alone, else from the syncs (their counters, not their items)."""
    if filters.range_only:
        rows = rollup.counts(filters.span.start, filters.span.end, None)
    else:
        rows = list(db_rollup.grouped(filtered_syncs(filters).order_by(), None, UTC))
    return (
        sum(row["items_completed"] or 0 for row in rows),
        sum(row["items_failed"] or 0 for row in rows),
    )


def _fill_buckets(
    series: dict[datetime, dict[int, int]], start: datetime | None, end: datetime, hourly: bool
) -> list[dict[str, Any]]:
    """Every bucket in the range, empty ones included, oldest first."""
    zone = timezone.get_current_timezone()
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    known = sorted(series)
    if start is None:
        if not known:
            return []
        start = known[0]
    cursor = start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        cursor = cursor.replace(hour=0)
    by_key = {k.astimezone(zone): v for k, v in series.items()}
    buckets: list[dict[str, Any]] = []
    while cursor < end and len(buckets) < 400:
        counts = by_key.get(cursor, {})
        buckets.append(
            {
                "start": cursor,
                "end": cursor + step,
                "success": counts.get(Category.SUCCESS, 0),
                "failed": counts.get(Category.FAILED, 0),
                "in_progress": counts.get(Category.IN_PROGRESS, 0),
            }
        )
        cursor = (cursor + step).astimezone(zone)
        if not hourly:
            cursor = cursor.replace(hour=0)
    return buckets


# --- sync detail ---


def sync_for_detail(sync_id: str | uuid.UUID) -> Sync | None:
    # `get`, not `first`: the ordering `first` adds costs more to compile than the query.
    try:
        return Sync.objects.select_related("company", "retry_of", "resolved_by").get(
            sync_id=sync_id
        )
    except Sync.DoesNotExist:
        return None


def item_counts(sync: Sync) -> dict[int, int]:
    counts = {int(s): 0 for s in ItemStatus}
    for row in PushItem.objects.filter(sync=sync).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def filtered_items(sync: Sync, q: str, statuses: Sequence[int]) -> QuerySet[PushItem]:
    """The sync's items with these statuses, whose core ID, data type or message matches `q`.

    Only this sync's items are read (its `(sync, …)` indexes), whatever the search.
    """
    items = PushItem.objects.filter(sync=sync)
    if statuses:
        items = items.filter(status__in=statuses)
    if q:
        try:
            items = items.filter(transaction_id=uuid.UUID(q))
        except ValueError:
            condition = Q(data_type__icontains=q) | Q(message__icontains=q)
            if len(q) >= 4 and all(c in "0123456789abcdefABCDEF-" for c in q):
                condition |= Q(transaction_id__startswith=q.lower())
            items = items.filter(condition)
    return items.order_by("id")


def retry_chain(sync: Sync) -> tuple[list[Sync], list[Sync]]:
    """(the syncs this one retried, oldest first; the retries made of it)."""
    ancestors: list[Sync] = []
    current = sync.retry_of
    seen = {sync.pk}
    while current is not None and current.pk not in seen and len(ancestors) < 20:
        ancestors.append(current)
        seen.add(current.pk)
        current = current.retry_of
    retries = list(sync.retries.order_by("sync_utc")[:50])
    return list(reversed(ancestors)), retries


def config_snapshot(company_id: str | uuid.UUID, snapshot_id: int) -> ConfigSnapshot | None:
    try:
        return ConfigSnapshot.objects.select_related("company").get(
            pk=snapshot_id, company__company_id=company_id
        )
    except ConfigSnapshot.DoesNotExist:
        return None


# --- company page ---


@dataclass
class CompanyOverview:
    company: Company
    # The latest syncs, newest first.
    recent: list[Sync]
    last_success: Sync | None
    snapshots: list[ConfigSnapshot]


def company_overview(company_id: str | uuid.UUID, recent: int = 25) -> CompanyOverview | None:
    try:
        company = Company.objects.select_related("refresh").get(company_id=company_id)
    except Company.DoesNotExist:
        return None
    syncs = Sync.objects.filter(company=company).order_by("-sync_utc", "-id")
    # What the page's table shows of each: not the messages, nor every snapshot's document.
    shown = (
        "company_id", "sync_id", "status_code", "status_text", "category", "sync_utc",
        "items_total", "items_failed", "duration_s",
    )  # fmt: skip
    return CompanyOverview(
        company=company,
        recent=list(syncs.only(*shown)[:recent]),
        last_success=syncs.exclude(status_code__in=IN_PROGRESS_CODES)
        .filter(category=Category.SUCCESS)
        .only(*shown)
        .first(),
        snapshots=list(
            ConfigSnapshot.objects.filter(company=company)
            .only("company_id", "fetched_at", "digest")
            .order_by("-fetched_at", "-pk")[:20]
        ),
    )
