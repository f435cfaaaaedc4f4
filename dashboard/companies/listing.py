"""The companies index: every company with its current state, sorted by any column,
searched by name or ID, filtered, a page at a time.

Everything it shows is on the company row (the streak, outstanding items, open
problems, last sync and last success are kept there by ingest), so a page is
one read of one index (`company_by_<sort>`, the column then the ID), forwards
or backwards from a cursor that holds the edge row's sort values, never an
offset. A column that may be empty (no sync yet) sorts its empties as the
smallest values: first going up, last going down, on every database; each
side of that line is its own read of the same index. The count is a count of
companies (10,000 at most in the estates we plan for), never of history.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from .. import cursors, search
from ..filters import id_range
from ..models import COMPANY_SORT_COLUMNS, Company

PAGE_SIZE = 50
PAGE_SIZE_MAX = 200
ASC, DESC = "asc", "desc"


@dataclass(frozen=True)
class Sort:
    key: str
    label: str
    kind: type
    nullable: bool = False

    @property
    def column(self) -> str:
        return COMPANY_SORT_COLUMNS[self.key]

    @property
    def natural(self) -> str:
        """Its first direction: text A to Z, numbers and times largest (latest) first."""
        return ASC if self.kind is str else DESC


SORTS: dict[str, Sort] = {
    sort.key: sort
    for sort in (
        Sort("name", "Company", str),
        Sort("platform", "Platform", str),
        Sort("connection", "Connection", str),
        Sort("outstanding", "Outstanding items", int),
        Sort("streak", "Failing streak", int),
        Sort("last_sync", "Last sync", datetime, nullable=True),
        Sort("last_success", "Last success", datetime, nullable=True),
        Sort("problems", "Open problems", int),
    )
}
DEFAULT_SORT = "name"


def decode_cursor(raw: str, sort: str, direction: str) -> tuple[Any, int] | None:
    """A cursor's (sort value, company pk), if it was made for this sort and direction."""
    spec = SORTS[sort]
    found = cursors.decode(
        raw, ((str, False), (str, False), (spec.kind, spec.nullable), (int, False))
    )
    if found is None or found[:2] != (sort, direction):
        return None
    return found[2], found[3]


@dataclass(frozen=True)
class CompanyFilter:
    """A valid selection and page of the index."""

    q: str = ""
    platform: str = ""
    failing: bool = False
    outstanding: bool = False
    sort: str = DEFAULT_SORT
    direction: str = ASC
    # The page after the row `after`, or before the row `before`: (sort value, pk).
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    size: int = PAGE_SIZE


def matching(filters: CompanyFilter) -> QuerySet[Company]:
    """The companies a filter selects (unordered)."""
    rows = Company.objects.all()
    if filters.q:
        found = Q(name__icontains=filters.q)
        ids = id_range(filters.q)
        if ids is not None:
            # Something shaped like an ID may still be (part of) a name.
            found |= Q(pk__in=search.companies_in(ids).values("pk"))
        rows = rows.filter(found)
    if filters.platform:
        rows = rows.filter(platform_name=filters.platform)
    if filters.failing:
        rows = rows.filter(failing_streak__gt=0)
    if filters.outstanding:
        rows = rows.filter(items_outstanding__gt=0)
    return rows


@dataclass
class CompanyPage:
    rows: list[Company]
    count: int
    sort: Sort
    direction: str
    next_cursor: str | None = None
    previous_cursor: str | None = None


def _beyond(
    rows: QuerySet[Company], column: str, value: Any, pk: int, up: bool
) -> QuerySet[Company]:
    """Rows past (`value`, `pk`) going up (or down). The bound beside the row comparison
    is redundant, and it is where PostgreSQL starts reading the index."""
    if up:
        return rows.filter(
            Q(**{f"{column}__gte": value}),
            Q(**{f"{column}__gt": value}) | Q(**{column: value, "id__gt": pk}),
        )
    return rows.filter(
        Q(**{f"{column}__lte": value}),
        Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": pk}),
    )


def _segments(
    rows: QuerySet[Company], sort: Sort, ascending: bool, cursor: tuple[Any, int] | None
) -> list[QuerySet[Company]]:
    """The reads that list `rows` from just past `cursor`, in order.

    Empty values count as the smallest: going up they come first (by ID), going
    down last. Each read is one stretch of the sort's index.
    """
    column = sort.column
    value, pk = cursor if cursor is not None else (None, 0)
    filled = rows.filter(**{f"{column}__isnull": False}) if sort.nullable else rows
    empty = rows.filter(**{f"{column}__isnull": True})
    if ascending:
        filled = filled.order_by(column, "id")
        if cursor is not None and value is not None:
            return [_beyond(filled, column, value, pk, up=True)]
        if not sort.nullable:
            return [filled]
        empty = empty.order_by("id")
        return [empty if cursor is None else empty.filter(id__gt=pk), filled]
    filled = filled.order_by(f"-{column}", "-id")
    empty = empty.order_by("-id")
    if cursor is None:
        return [filled, empty] if sort.nullable else [filled]
    if value is None:
        return [empty.filter(id__lt=pk)]
    before = _beyond(filled, column, value, pk, up=False)
    return [before, empty] if sort.nullable else [before]


def _read(segments: list[QuerySet[Company]], limit: int) -> list[Company]:
    found: list[Company] = []
    for segment in segments:
        found.extend(segment[: limit - len(found)])
        if len(found) >= limit:
            break
    return found


def page(filters: CompanyFilter) -> CompanyPage:
    """One page of the index: after `filters.after`, before `filters.before`, or the first."""
    sort = SORTS[filters.sort]
    rows = matching(filters)
    count = rows.count()
    result = CompanyPage([], count, sort, filters.direction)

    def cursor(company: Company) -> str:
        return cursors.encode(
            sort.key, filters.direction, getattr(company, sort.column), company.pk
        )

    forwards = filters.direction == ASC
    if filters.before is not None:
        found = _read(_segments(rows, sort, not forwards, filters.before), filters.size + 1)
        if found:
            result.rows = found[: filters.size][::-1]
            result.next_cursor = cursor(result.rows[-1])
            if len(found) > filters.size:
                result.previous_cursor = cursor(result.rows[0])
            return result
        # Nothing before it (the rows before were deleted): the first page.
        filters = replace(filters, before=None, after=None)
    found = _read(_segments(rows, sort, forwards, filters.after), filters.size + 1)
    result.rows = found[: filters.size]
    if len(found) > filters.size:
        result.next_cursor = cursor(result.rows[-1])
    if filters.after is not None and result.rows:
        result.previous_cursor = cursor(result.rows[0])
    return result
