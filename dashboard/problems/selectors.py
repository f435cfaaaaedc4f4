"""Reads for the Problems pages: the list by impact and its headline, and one problem's
companies, items, failed syncs, activity, examples and playbook versions.

The list reads only problem rows (the `problem_impact`, `problem_impact_all`
and `problem_last_seen` indexes) and, for its headline's distinct companies,
the companies with open problems (`Company.problems_open`, kept by the
upkeep, its partial index), or for other selections the union of its problems'
sets of companies, kept by version (`membership`); a problem's lists each read
one page of one index
(`problem_company_items`, `transaction_state_problem`, `sync_problem_time`,
`problem_activity_time`). Nothing here counts the history. Pages are keyset
pages: a cursor holds the last row's sort values, never an offset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from .. import cursors
from ..models import (
    Company,
    PlaybookVersion,
    Problem,
    ProblemActivity,
    ProblemCompany,
    PushItem,
    Sync,
    TransactionState,
)
from ..vocabulary import ACTIVE_PROBLEM_STATES, ProblemState
from . import membership
from .upkeep import TREND_DAYS

PAGE_SIZE = 50
DETAIL_PAGE_SIZE = 25
EXAMPLES = 5
VERSIONS = 20
TOP = 5

# The list's state filter: a state, or one of these.
ACTIVE = "active"
ANY_STATE = "all"
SORTS = {"impact": "Impact (companies, then items)", "recent": "Last seen"}
IMPACT_ORDER = ("-companies_outstanding", "-items_outstanding", "id")
RECENT_ORDER = ("-last_seen", "id")

# --- cursors ---


def encode_cursor(*values: Any) -> str:
    return cursors.encode(*values)


def decode_cursor(raw: str, kinds: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The values a cursor holds, typed as `kinds` says; None if it is not one of ours."""
    return cursors.decode(raw, tuple((kind, False) for kind in kinds))


# What each list's cursor holds.
CURSORS: dict[str, tuple[type, ...]] = {
    "impact": (int, int, int),
    "recent": (datetime, int),
    "companies": (int, int),
    "items": (datetime, int),
    "syncs": (datetime, int),
    "activity": (datetime, int),
}


# --- the list ---


@dataclass(frozen=True)
class ProblemFilter:
    """A valid selection of problems (merged ones are never listed: their page leads on)."""

    state: str = ACTIVE
    code: int | None = None
    platform: str = ""
    # An assignee's user ID; or only the unassigned.
    assignee: int | None = None
    unassigned: bool = False
    # Only those new (found) or regressed after `since`; with no `since`
    # (never looked before) every problem is new.
    changed: bool = False
    since: datetime | None = None
    sort: str = "impact"
    after: tuple[Any, ...] | None = None


def matching(filters: ProblemFilter) -> QuerySet[Problem]:
    """The problems a filter selects (unordered)."""
    rows = Problem.objects.all()
    if filters.state == ACTIVE:
        rows = rows.filter(state__in=ACTIVE_PROBLEM_STATES)
    elif filters.state == ANY_STATE:
        rows = rows.exclude(state=ProblemState.MERGED)
    else:
        rows = rows.filter(state=filters.state)
    if filters.code is not None:
        rows = rows.filter(status_code=filters.code)
    if filters.platform:
        rows = rows.filter(platforms__has_key=filters.platform)
    if filters.unassigned:
        rows = rows.filter(assignee__isnull=True)
    elif filters.assignee is not None:
        rows = rows.filter(assignee_id=filters.assignee)
    if filters.changed and filters.since is not None:
        rows = rows.filter(_changed_since(filters.since))
    return rows


def _changed_since(since: datetime) -> Q:
    return Q(created_at__gt=since) | Q(regressed_at__gt=since)


@dataclass
class ProblemPage:
    problems: list[Problem]
    next_cursor: str | None


def page(filters: ProblemFilter, size: int = PAGE_SIZE) -> ProblemPage:
    """One page of the list, most companies (then items) first, or most recently seen."""
    rows = (
        matching(filters)
        .select_related("assignee")
        .defer("example", "playbook", "customer_message")
    )
    order: tuple[str, ...]
    if filters.sort == "recent":
        order = RECENT_ORDER
        if filters.after is not None:
            seen, pk = filters.after
            rows = rows.filter(
                Q(last_seen__lte=seen) & (Q(last_seen__lt=seen) | Q(last_seen=seen, pk__gt=pk))
            )
    else:
        order = IMPACT_ORDER
        if filters.after is not None:
            companies, items, pk = filters.after
            rows = rows.filter(
                Q(companies_outstanding__lte=companies),
                Q(companies_outstanding__lt=companies)
                | Q(companies_outstanding=companies, items_outstanding__lt=items)
                | Q(companies_outstanding=companies, items_outstanding=items, pk__gt=pk),
            )
    found = list(rows.order_by(*order)[: size + 1])
    if len(found) <= size:
        return ProblemPage(found, None)
    last = found[size - 1]
    if filters.sort == "recent":
        cursor = encode_cursor(last.last_seen.isoformat(), last.pk)
    else:
        cursor = encode_cursor(last.companies_outstanding, last.items_outstanding, last.pk)
    return ProblemPage(found[:size], cursor)


@dataclass
class Headline:
    """ "6 problems affect 41 companies; 2 new, 1 regressed since you last looked"."""

    problems: int = 0
    companies: int = 0
    items: int = 0
    new: int = 0
    regressed: int = 0
    since: datetime | None = None


def headline(filters: ProblemFilter) -> Headline:
    """The selection's size: problems, the distinct companies they affect, their items,
    and how many are new or came back since `filters.since`."""
    selected = matching(replace(filters, after=None)).order_by()
    since = filters.since
    counted: dict[str, Any] = {
        "problems": Count("pk"),
        "items": Sum("items_outstanding"),
    }
    if since is not None:
        counted["new"] = Count("pk", filter=Q(created_at__gt=since))
        counted["regressed"] = Count("pk", filter=Q(regressed_at__gt=since))
    counts = selected.aggregate(**counted)
    # Distinct: a company with two problems is one company affected.
    companies_affected = _companies_affected(filters, selected)
    return Headline(
        problems=counts["problems"],
        companies=companies_affected,
        items=counts["items"] or 0,
        new=counts.get("new", 0),
        regressed=counts.get("regressed", 0),
        since=since,
    )


def _companies_affected(filters: ProblemFilter, selected: QuerySet[Problem]) -> int:
    """The distinct companies with a share in the selected problems (on the platform).

    Every open problem (the default selection) is what each company's
    `problems_open` counts: one count of its partial index. Any other selection
    is the union of its problems' sets of companies, each kept by version
    (`membership`).
    """
    names = _platform_names(filters.platform) if filters.platform else None
    if _every_open(filters):
        companies = Company.objects.filter(problems_open__gt=0)
        if names is not None:
            companies = companies.filter(platform_name__in=names)
        return companies.count()
    versions = dict(selected.values_list("pk", "companies_version"))
    return membership.companies_affected(versions, names)


def _every_open(filters: ProblemFilter) -> bool:
    """Whether the filter selects every open or regressed problem (on a platform or not)."""
    plain = replace(filters, platform="", sort="impact", after=None, since=None)
    return plain == ProblemFilter() or (
        plain == replace(ProblemFilter(), changed=True) and filters.since is None
    )


def _platform_names(platform: str) -> list[str]:
    """The companies' platform names that a problem's platform stands for.

    A company without a platform counts under "Unknown" in a problem's platforms.
    """
    return ["", "Unknown"] if platform == "Unknown" else [platform]


def export_rows(filters: ProblemFilter) -> QuerySet[Problem]:
    """Every problem the filter selects, in the list's order, for the CSV export."""
    order = RECENT_ORDER if filters.sort == "recent" else IMPACT_ORDER
    return (
        matching(replace(filters, after=None))
        .select_related("assignee")
        .defer("example", "playbook", "customer_message")
        .order_by(*order)
    )


@dataclass
class Top:
    """The dashboard's panel: the problems affecting most companies, and how many there are."""

    problems: list[Problem] = field(default_factory=list)
    total: int = 0


def top(platform: str = "", limit: int = TOP) -> Top:
    filters = ProblemFilter(platform=platform)
    found = page(filters, size=limit).problems
    total = len(found)
    if total == limit:
        total = matching(filters).order_by().count()
    return Top(found, total)


# --- one problem ---


def trend_days(trend: dict[str, int], today: date | None = None) -> list[tuple[str, int]]:
    """(UTC day, items) for each of the trend's days, oldest first, empty days included."""
    counts = trend or {}
    return [(day, _count(counts.get(day))) for day in _trend_dates(today or _utc_today())]


def _utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


@lru_cache(maxsize=4)
def _trend_dates(today: date) -> tuple[str, ...]:
    """The trend's UTC days ending `today`, oldest first (ISO dates): the same for every
    row of a page, so worked out once."""
    return tuple((today - timedelta(days=n)).isoformat() for n in range(TREND_DAYS - 1, -1, -1))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass
class Example:
    message: str
    # Where it was seen: a sync and a company (none for the problem's first example).
    sync_id: uuid.UUID | None = None
    company: str = ""


def examples(problem: Problem, limit: int = EXAMPLES) -> list[Example]:
    """The problem's first message, then a few distinct recent ones of its outstanding
    items (and of its failed syncs without items), newest first."""
    found: list[Example] = []
    seen: set[str] = set()

    def add(message: str | None, sync_id: uuid.UUID | None = None, company: str = "") -> None:
        text = (message or "").strip()
        if text and text not in seen and len(found) < limit:
            seen.add(text)
            found.append(Example(text, sync_id, company))

    add(problem.example)
    tips = list(
        TransactionState.objects.filter(problem=problem, outstanding=True)
        .order_by("-last_sync_utc")
        .values_list("last_sync_id", "transaction_id")[: limit * 4]
    )
    if tips:
        pairs = set(tips)
        rows = PushItem.objects.filter(
            sync_id__in={s for s, _ in tips}, transaction_id__in={t for _, t in tips}
        ).values_list(
            "sync_id",
            "transaction_id",
            "message",
            "sync__error_message",
            "sync__sync_id",
            "sync__company__name",
        )
        by_pair: dict[tuple[int, uuid.UUID], tuple[str | None, str, uuid.UUID, str]] = {
            (sync_pk, tid): (message, sync_error, sync_id, company)
            for sync_pk, tid, message, sync_error, sync_id, company in rows
            if (sync_pk, tid) in pairs
        }
        for pair in tips:
            if pair in by_pair:
                message, sync_error, sync_id, company = by_pair[pair]
                add(message or sync_error, sync_id, company)
    if len(found) < limit:
        for message, exception, sync_id, company in (
            Sync.objects.filter(problem=problem)
            .order_by("-sync_utc")
            .values_list("error_message", "exception_message", "sync_id", "company__name")[:limit]
        ):
            add(message or exception, sync_id, company)
    return found


@dataclass
class DetailPage:
    rows: list[Any]
    next_cursor: str | None


def _paged(rows: list[Any], size: int, key: Any) -> DetailPage:
    if len(rows) <= size:
        return DetailPage(rows, None)
    return DetailPage(rows[:size], encode_cursor(*key(rows[size - 1])))


# What a page of affected companies, and the customer message, read of a share.
SHARE_COLUMNS = (
    "problem_id",
    "company_id",
    "items",
    "syncs",
    "last_seen",
    "company__company_id",
    "company__name",
    "company__platform_name",
    "company__redirect_url",
)


def companies_page(
    problem: Problem, after: tuple[Any, ...] | None = None, size: int = DETAIL_PAGE_SIZE
) -> DetailPage:
    """The companies with the problem outstanding, most items first (with what the
    page and its customer message read of each company)."""
    rows = (
        ProblemCompany.objects.filter(problem=problem)
        .select_related("company")
        .only(*SHARE_COLUMNS)
    )
    if after is not None:
        items, pk = after
        rows = rows.filter(Q(items__lte=items) & (Q(items__lt=items) | Q(items=items, pk__gt=pk)))
    found = list(rows.order_by("-items", "id")[: size + 1])
    return _paged(found, size, lambda row: (row.items, row.pk))


@dataclass(frozen=True)
class ItemRow:
    pk: int
    transaction_id: uuid.UUID
    company_uuid: uuid.UUID
    company_name: str
    sync_id: uuid.UUID
    failed_at: datetime
    status: int


def items_page(
    problem: Problem, after: tuple[Any, ...] | None = None, size: int = DETAIL_PAGE_SIZE
) -> DetailPage:
    """The problem's outstanding items, each at the sync where it last failed, newest first."""
    rows = TransactionState.objects.filter(problem=problem, outstanding=True)
    if after is not None:
        moment, pk = after
        rows = rows.filter(cursors.after("last_sync_utc", True, moment, pk))
    found = [
        ItemRow(*values)
        for values in rows.order_by("-last_sync_utc", "-id").values_list(
            "pk",
            "transaction_id",
            "company__company_id",
            "company__name",
            "last_sync__sync_id",
            "last_sync_utc",
            "status",
        )[: size + 1]
    ]
    return _paged(found, size, lambda row: (row.failed_at.isoformat(), row.pk))


def syncs_page(
    problem: Problem, after: tuple[Any, ...] | None = None, size: int = DETAIL_PAGE_SIZE
) -> DetailPage:
    """The problem's failed syncs without items, newest first."""
    rows = Sync.objects.filter(problem=problem).select_related("company")
    if after is not None:
        moment, pk = after
        rows = rows.filter(cursors.after("sync_utc", True, moment, pk))
    found = list(
        rows.only(
            "sync_id",
            "status_code",
            "status_text",
            "category",
            "sync_utc",
            "company__company_id",
            "company__name",
        ).order_by("-sync_utc", "-id")[: size + 1]
    )
    return _paged(found, size, lambda row: (row.sync_utc.isoformat(), row.pk))


def activity_page(
    problem: Problem, after: tuple[Any, ...] | None = None, size: int = DETAIL_PAGE_SIZE
) -> DetailPage:
    """What happened to the problem, newest first."""
    rows = ProblemActivity.objects.filter(problem=problem)
    if after is not None:
        moment, pk = after
        rows = rows.filter(cursors.after("at", True, moment, pk))
    found = list(rows.order_by("-at", "-id")[: size + 1])
    return _paged(found, size, lambda row: (row.at.isoformat(), row.pk))


def playbook_versions(problem: Problem, limit: int = VERSIONS) -> list[PlaybookVersion]:
    if not problem.playbook_version:
        return []  # never edited: no version was saved
    return list(
        PlaybookVersion.objects.filter(problem=problem)
        .defer("playbook", "customer_message")
        .order_by("-version")[:limit]
    )


@dataclass
class Affected:
    """One affected company, and the sync where the problem last failed for it."""

    company: Company
    items: int
    sync_id: uuid.UUID | None
    sync_utc: datetime | None
    # The company asked for is not part of the problem: this is the default.
    substituted: bool = False


def affected_company(
    problem: Problem, company_id: uuid.UUID | None, most: ProblemCompany | None = None
) -> Affected | None:
    """The company a customer message is for: the one asked for, else the one with most
    items (`most`, when the caller has read it already: the first of `companies_page`);
    and its latest failure of this problem (read at its share's last seen)."""
    shares = (
        ProblemCompany.objects.filter(problem=problem)
        .select_related("company")
        .only(*SHARE_COLUMNS)
    )
    share = None
    if company_id is not None:
        share = shares.filter(company__company_id=company_id).first()
    substituted = company_id is not None and share is None
    if share is None:
        share = most if most is not None else shares.order_by("-items", "id").first()
    if share is None:
        return None
    state = (
        TransactionState.objects.filter(
            problem=problem,
            outstanding=True,
            last_sync_utc=share.last_seen,
            company_id=share.company_id,
        )
        .values_list("last_sync__sync_id", "last_sync_utc")
        .first()
    )
    if state is None:
        state = (
            Sync.objects.filter(
                problem=problem, sync_utc=share.last_seen, company_id=share.company_id
            )
            .values_list("sync_id", "sync_utc")
            .first()
        )
    sync_id, sync_utc = state if state is not None else (None, None)
    return Affected(share.company, share.items, sync_id, sync_utc, substituted)
