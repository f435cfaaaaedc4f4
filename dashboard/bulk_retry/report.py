"""A bulk retry's report: item outcomes summed over its requests, and each member.

A member whose new sync is still running long is named, so that "10 of 11
settled" always says which one is still running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from ..models import BulkMember, BulkRetry, RetryRequest, Sync
from ..vocabulary import (
    ACTIVE_RETRY_STATES,
    IN_PROGRESS_CODES,
    SETTLED_BULK_STATES,
    BulkState,
    Code,
    RetryState,
)

# A retry's new sync still running after this is named on the report.
RUNNING_LONG = timedelta(minutes=10)


@dataclass(frozen=True)
class Report:
    """A bulk retry's requests and their item outcomes, summed."""

    planned: int
    left_out: int
    states: dict[str, int]
    not_requested: int
    cancelled: bool
    items: int
    completed: int
    failed_again: int
    not_repushed: int
    awaiting: int
    not_sent: int
    outstanding_syncs: int

    @property
    def requests(self) -> int:
        return sum(self.states.values())

    @property
    def active(self) -> int:
        return sum(self.states[state] for state in ACTIVE_RETRY_STATES)

    @property
    def skipped(self) -> int:
        """Requests skipped, and members never requested because of a cancel."""
        return self.states[RetryState.SKIPPED] + (self.not_requested if self.cancelled else 0)

    @property
    def settled(self) -> int:
        return self.requests - self.active + (self.not_requested if self.cancelled else 0)

    @property
    def pending(self) -> int:
        """Items re-pushed that ended neither complete nor failed (still pending)."""
        known = self.completed + self.failed_again + self.not_repushed
        return max(0, self.items - known - self.awaiting - self.not_sent)

    @property
    def sentence(self) -> str:
        """The outcome by item, e.g.
        "29 items: 22 now complete, 7 failed again; 5 syncs still outstanding"."""
        parts = [f"{self.completed:,} now complete", f"{self.failed_again:,} failed again"]
        for count, words in (
            (self.pending, "still pending"),
            (self.not_repushed, "not re-pushed"),
            (self.awaiting, "awaiting their new sync"),
            (self.not_sent, "not sent (skipped, cancelled or refused)"),
        ):
            if count:
                parts.append(f"{count:,} {words}")
        syncs = self.outstanding_syncs
        return (
            f"{self.items:,} item{'s' * (self.items != 1)}: {', '.join(parts)}; "
            f"{syncs:,} sync{'s' * (syncs != 1)} still outstanding"
        )


def report(bulk: BulkRetry) -> Report:
    requests = RetryRequest.objects.filter(bulk=bulk)
    states = {state: 0 for state in RetryState.values}
    for row in requests.values("state").annotate(n=Count("id")).order_by():
        states[row["state"]] = row["n"]
    sums = requests.aggregate(
        items=Sum("item_count"),
        completed=Sum("completed"),
        failed_again=Sum("failed_again"),
        not_repushed=Sum("not_repushed"),
        awaiting=Sum("item_count", filter=Q(state__in=ACTIVE_RETRY_STATES)),
        not_sent=Sum(
            "item_count",
            filter=Q(state__in=(RetryState.SKIPPED, RetryState.FAILED, RetryState.DENIED)),
        ),
    )
    members = BulkMember.objects.filter(bulk=bulk).aggregate(
        kept=Count("id", filter=Q(included=True)),
        dropped=Count("id", filter=Q(included=False)),
        unrequested=Count("id", filter=Q(included=True, request__isnull=True)),
        outstanding=Count("id", filter=Q(included=True, sync__items_outstanding__gt=0)),
    )
    return Report(
        planned=members["kept"] or bulk.planned_syncs,
        left_out=members["dropped"],
        states=states,
        not_requested=members["unrequested"],
        cancelled=bulk.state == BulkState.CANCELLED,
        outstanding_syncs=members["outstanding"],
        **{name: int(value or 0) for name, value in sums.items()},
    )


def is_finished(bulk: BulkRetry, figures: Report) -> bool:
    return bulk.state in SETTLED_BULK_STATES and figures.active == 0


@dataclass(frozen=True)
class MemberRow:
    """One member on the report: its request, its new sync when known, and what to say."""

    member: BulkMember
    new_sync: Sync | None
    running_long: bool
    note: str

    @property
    def request(self) -> RetryRequest | None:
        return self.member.request


def _minutes(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    return f"{minutes} min"


def _running_long_note(
    new_code: int | None, new_start: datetime | None, submitted_at: datetime | None, now: datetime
) -> str:
    """Why a request's new sync counts as running long; "" when it does not.

    Reported long running (1010), in progress for over `RUNNING_LONG`, or not
    yet seen that long after it was sent.
    """
    cutoff = now - RUNNING_LONG
    if new_code == Code.LONG_RUNNING:
        return "new sync long running (1010)" + (
            f", started {_minutes(new_start, now)} ago" if new_start else ""
        )
    if new_code in IN_PROGRESS_CODES and new_start is not None and new_start < cutoff:
        return f"new sync in progress for {_minutes(new_start, now)}"
    if new_code is None and submitted_at is not None and submitted_at < cutoff:
        return f"sent {_minutes(submitted_at, now)} ago, new sync not seen yet"
    return ""


def member_rows(members: Iterable[BulkMember], *, cancelled: bool) -> list[MemberRow]:
    """Rows for one page of members (loaded with their sync, company and request)."""
    members = list(members)
    wanted = [
        m.request.new_sync_id for m in members if m.request is not None and m.request.new_sync_id
    ]
    new_syncs = {s.sync_id: s for s in Sync.objects.filter(sync_id__in=wanted)}
    now = timezone.now()
    rows = []
    for member in members:
        request = member.request
        new_sync = new_syncs.get(request.new_sync_id) if request and request.new_sync_id else None
        note = ""
        if request is None:
            note = "not requested: cancelled" if cancelled else "waiting to be requested"
        elif request.state == RetryState.SUBMITTED:
            note = _running_long_note(
                new_sync.status_code if new_sync else None,
                new_sync.sync_utc if new_sync else None,
                request.submitted_at,
                now,
            )
        running = bool(note) and request is not None
        rows.append(MemberRow(member, new_sync, running, note))
    return rows


@dataclass(frozen=True)
class RunningLong:
    request: RetryRequest
    note: str


def running_long(bulk: BulkRetry, *, limit: int) -> tuple[list[RunningLong], int]:
    """The bulk's requests whose new sync is still running long, oldest first, and how many.

    So that "10 of 11 settled" always says which one is still running.
    """
    now = timezone.now()
    cutoff = now - RUNNING_LONG
    new_sync = Sync.objects.filter(sync_id=OuterRef("new_sync_id"))
    requests = (
        RetryRequest.objects.filter(bulk=bulk, state=RetryState.SUBMITTED)
        .annotate(
            new_code=Subquery(new_sync.values("status_code")[:1]),
            new_start=Subquery(new_sync.values("sync_utc")[:1]),
        )
        .filter(
            Q(new_code=Code.LONG_RUNNING)
            | Q(new_code__in=IN_PROGRESS_CODES, new_start__lt=cutoff)
            | Q(new_code__isnull=True, submitted_at__lt=cutoff)
        )
    )
    shown = [
        RunningLong(
            request,
            _running_long_note(
                request.new_code,  # type: ignore[attr-defined]
                request.new_start,  # type: ignore[attr-defined]
                request.submitted_at,
                now,
            ),
        )
        for request in requests.select_related("sync", "company").order_by("submitted_at", "pk")[
            :limit
        ]
    ]
    return shown, (len(shown) if len(shown) < limit else requests.count())
