"""One company's timeline: its syncs, the retries people asked for, its configuration
versions and what happened to the problems it shares, newest first, a page at a time.

Each source is read one page deep from its own index, from just past the
cursor (`sync_company_time`, `retry_company_time`, `config_company_time`,
`problem_activity_time` through `problem_company_company`), and the pages are
merged: a page costs a read per source whatever the history's length. The
cursor is the last entry's (time, kind, ID); entries at the same moment are
ordered by kind, so none is skipped or shown twice across a page boundary.

A problem's activity shows while the company shares the problem (has an
outstanding item in it); the mirror keeps no notes of companies.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from .. import cursors
from ..models import Company, ConfigSnapshot, ProblemActivity, ProblemCompany, RetryRequest, Sync
from ..vocabulary import Category, RetryState, status_label

TIMELINE_PAGE_SIZE = 25

# The kinds, in the order entries at the same moment are listed (newest first).
SYNC, RETRY, CONFIG, PROBLEM = "sync", "retry", "config", "problem"
KINDS = (PROBLEM, CONFIG, RETRY, SYNC)
RANK = {kind: len(KINDS) - i for i, kind in enumerate(KINDS)}
KIND_LABELS = {
    SYNC: "Sync",
    RETRY: "Retry request",
    CONFIG: "Configuration",
    PROBLEM: "Problem",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str
    pk: int
    who: str
    text: str
    url: str
    # A sync's category or a retry's state: its badge's text and class; empty for others.
    badge: str = ""
    tone: str = ""
    # A sync's end, as the mirror saw it.
    finished: datetime | None = None

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, RANK[self.kind], self.pk)

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass
class Timeline:
    entries: list[Entry]
    next_cursor: str | None


def decode_timeline_cursor(raw: str) -> tuple[datetime, int, int] | None:
    found = cursors.decode(raw, ((datetime, False), (int, False), (int, False)))
    if found is None or found[1] not in RANK.values():
        return None
    return found[0], found[1], found[2]


def _past(
    rows: QuerySet[Any], kind: str, time: str, cursor: tuple[datetime, int, int] | None
) -> QuerySet[Any]:
    """`rows` that come after the cursor, newest first: older, or as old and listed later."""
    if cursor is None:
        return rows
    at, rank, pk = cursor
    own = RANK[kind]
    if own > rank:
        return rows.filter(**{f"{time}__lt": at})
    if own < rank:
        return rows.filter(**{f"{time}__lte": at})
    # The bound beside the comparison is redundant: it is where the index is read from.
    return rows.filter(
        Q(**{f"{time}__lte": at}), Q(**{f"{time}__lt": at}) | Q(**{time: at, "id__lt": pk})
    )


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _syncs(company: Company, cursor: Any, limit: int) -> list[Entry]:
    rows = _past(Sync.objects.filter(company=company), SYNC, "sync_utc", cursor)
    entries = []
    for sync in rows.only(
        "sync_id", "status_code", "status_text", "category", "sync_utc", "completed_at",
        "duration_s", "retry_of_id", "items_total", "items_failed",
    ).order_by("-sync_utc", "-id")[:limit]:  # fmt: skip
        parts = ["Retry started" if sync.retry_of_id else "Started"]
        parts.append(f"{sync.status_code} {status_label(sync.status_code, sync.status_text)}")
        if sync.items_total:
            failed = f", {sync.items_failed:,} failed" if sync.items_failed else ""
            parts.append(f"{sync.items_total:,} item{'s' if sync.items_total != 1 else ''}{failed}")
        if sync.category == Category.IN_PROGRESS:
            parts.append("still running")
        elif sync.duration_s is not None:
            parts.append(f"took {_duration(sync.duration_s)}")
        entries.append(
            Entry(
                at=sync.sync_utc,
                kind=SYNC,
                pk=sync.pk,
                who="",
                text=" · ".join(parts),
                url=reverse("sync-detail", args=[sync.sync_id]),
                badge=Category(sync.category).label,
                tone=f"cat-{Category(sync.category).css}",
                finished=sync.completed_at,
            )
        )
    return entries


def _retries(company: Company, cursor: Any, limit: int) -> list[Entry]:
    rows = _past(RetryRequest.objects.filter(company=company), RETRY, "created_at", cursor)
    entries = []
    for request in (
        rows.select_related("user", "cancelled_by", "sync")
        .only(
            "created_at", "state", "item_count", "completed", "failed_again",
            "user__username", "cancelled_by__username", "sync__sync_id", "bulk_id",
        )
        .order_by("-created_at", "-id")[:limit]
    ):  # fmt: skip
        items = f"{request.item_count:,} item{'s' if request.item_count != 1 else ''}"
        parts = [f"Retry of {items} of sync {str(request.sync.sync_id)[:8]}"]
        if request.bulk_id:
            parts.append(f"part of bulk retry {request.bulk_id}")
        if request.state == RetryState.COMPLETED and request.completed is not None:
            parts.append(
                f"{request.completed:,} completed, {request.failed_again or 0:,} failed again"
            )
        if request.cancelled_by is not None:
            parts.append(f"cancelled by {request.cancelled_by.get_username()}")
        entries.append(
            Entry(
                at=request.created_at,
                kind=RETRY,
                pk=request.pk,
                who=request.user.get_username(),
                text=" · ".join(parts),
                url=reverse("retry-detail", args=[request.pk]),
                badge=RetryState(request.state).label,
                tone=f"state-{request.state}",
            )
        )
    return entries


def _configs(company: Company, cursor: Any, limit: int) -> list[Entry]:
    rows = _past(ConfigSnapshot.objects.filter(company=company), CONFIG, "fetched_at", cursor)
    return [
        Entry(
            at=snapshot.fetched_at,
            kind=CONFIG,
            pk=snapshot.pk,
            who="",
            text=f"A new version of the sync configuration (digest {snapshot.digest[:12]})",
            url=reverse("config-download", args=[company.company_id, snapshot.pk]),
        )
        for snapshot in rows.only("fetched_at", "digest").order_by("-fetched_at", "-id")[:limit]
    ]


def _problem_events(company: Company, cursor: Any, limit: int) -> list[Entry]:
    shared = ProblemCompany.objects.filter(company=company).values("problem_id")
    rows = _past(ProblemActivity.objects.filter(problem_id__in=shared), PROBLEM, "at", cursor)
    entries = []
    for event in (
        rows.select_related("problem")
        .only("at", "event", "text", "username", "problem__cause", "problem__status_code")
        .order_by("-at", "-id")[:limit]
    ):
        cause = event.problem.cause
        what = f"#{event.problem_id} {event.problem.status_code} {cause[:80]}"
        if len(cause) > 80:
            what += "…"
        text = f"{event.get_event_display()}: {what}"
        if event.text:
            note = event.text if len(event.text) <= 160 else event.text[:160] + "…"
            text += f" — {note}"
        entries.append(
            Entry(
                at=event.at,
                kind=PROBLEM,
                pk=event.pk,
                who=event.username or "mirror",
                text=text,
                url=reverse("problem-detail", args=[event.problem_id]),
            )
        )
    return entries


SOURCES = (_syncs, _retries, _configs, _problem_events)


def timeline(
    company: Company,
    cursor: tuple[datetime, int, int] | None = None,
    size: int = TIMELINE_PAGE_SIZE,
) -> Timeline:
    """A page of the company's timeline, newest first, from just past `cursor`."""
    found = heapq.merge(
        *(source(company, cursor, size + 1) for source in SOURCES),
        key=lambda entry: entry.key,
        reverse=True,
    )
    entries = [entry for _, entry in zip(range(size + 1), found, strict=False)]
    if len(entries) <= size:
        return Timeline(entries, None)
    last = entries[size - 1]
    return Timeline(entries[:size], cursors.encode(last.at, RANK[last.kind], last.pk))
