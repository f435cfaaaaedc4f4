"""A problem's retries, for its page: the one under way, the previous ones and their outcomes.

Each is a bulk retry of the problem's outstanding items (`BulkRetry.problem`,
made by `dashboard.bulk_retry.open_problem_draft`), and its outcome the sum of
its requests' item outcomes. For the items that failed again, the current
state says whether the cause is unchanged: are they still outstanding in
this problem, or with another cause now?

`summary(problem)` is the context of `templates/dashboard/_problem_retry.html`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum

from .. import bulk_retry
from ..db import chunked
from ..models import BulkRetry, Problem, PushItem, RetryRequest, TransactionState
from ..vocabulary import (
    ACTIVE_RETRY_STATES,
    FAILED_ITEM_STATUSES,
    SETTLED_BULK_STATES,
    BulkState,
    ProblemState,
    RetryState,
)

# The previous retries listed on the page, newest first; older ones are counted.
SHOWN = 5
NOT_SENT = (RetryState.SKIPPED, RetryState.FAILED, RetryState.DENIED)


@dataclass(frozen=True)
class PastRetry:
    """One bulk retry of the problem, with its item outcomes summed over its requests."""

    bulk: BulkRetry
    requests: int
    active: int
    items: int
    completed: int
    failed_again: int
    not_repushed: int
    not_sent: int
    # Of the items that failed again: still outstanding here, with another cause, pushed since.
    same_cause: int = 0
    other_cause: int = 0
    pushed_since: int = 0

    @property
    def running(self) -> bool:
        return self.bulk.state not in SETTLED_BULK_STATES or self.active > 0

    @property
    def pending(self) -> int:
        """Items neither complete, failed again, left out nor unsent: awaiting their new sync,
        or pending in it."""
        known = self.completed + self.failed_again + self.not_repushed + self.not_sent
        return max(0, self.items - known)

    @property
    def cause(self) -> str:
        """Whether the items that failed again failed with this problem's cause still."""
        if not self.failed_again:
            return ""
        if self.same_cause and not self.other_cause:
            return "cause unchanged"
        if self.other_cause and not self.same_cause:
            return "cause changed"
        if self.same_cause and self.other_cause:
            return f"cause unchanged for {self.same_cause:,}, changed for {self.other_cause:,}"
        return "pushed since" if self.pushed_since else ""

    @property
    def sentence(self) -> str:
        """e.g. "22 complete, 7 failed again, cause unchanged"."""
        if self.bulk.state == BulkState.QUEUED or (not self.requests and self.running):
            return f"{self.bulk.planned_items:,} item{'s' * (self.bulk.planned_items != 1)} queued"
        parts = [f"{self.completed:,} complete", f"{self.failed_again:,} failed again"]
        if self.cause:
            parts.append(self.cause)
        for count, words in (
            (self.not_repushed, "not re-pushed"),
            (self.pending, "pending"),
            (self.not_sent, "not sent"),
        ):
            if count:
                parts.append(f"{count:,} {words}")
        return ", ".join(parts)


def summary(problem: Problem) -> dict[str, Any]:
    """The context `_problem_retry.html` needs, beside `problem` (see its header)."""
    retries = bulk_retry.retries_of(problem).exclude(state__in=(BulkState.DRAFT, BulkState.DENIED))
    shown = list(retries.select_related("user").order_by("-created_at", "-pk")[:SHOWN])
    past = _outcomes(problem, shown)
    running = next((retry for retry in past if retry.running), None)
    # Fewer than SHOWN means every retry that could be running is among them
    # (`running` and `under_way` ask the same of a confirmed retry).
    if running is None and len(shown) >= SHOWN:
        under_way = bulk_retry.under_way(problem)
        if under_way is not None:
            running = _outcomes(problem, [under_way])[0]
    total = len(past) if len(past) < SHOWN else retries.count()
    return {
        "retries": past,
        "last": past[0] if past else None,
        "running": running,
        "more": total - len(past),
        "items": problem.items_outstanding,
        "itemless_syncs": problem.syncs_outstanding if not problem.items_outstanding else 0,
        "merged": problem.state == ProblemState.MERGED,
        "retryable": (
            problem.items_outstanding > 0
            and problem.state != ProblemState.MERGED
            and running is None
        ),
        # The button's token: the same page posted twice opens one preview.
        "key": uuid.uuid4(),
    }


def _outcomes(problem: Problem, bulks: list[BulkRetry]) -> list[PastRetry]:
    if not bulks:
        return []
    sums = {
        row["bulk_id"]: row
        for row in RetryRequest.objects.filter(bulk__in=bulks)
        .values("bulk_id")
        .annotate(
            requests=Count("id"),
            active=Count("id", filter=Q(state__in=ACTIVE_RETRY_STATES)),
            items=Sum("item_count"),
            completed=Sum("completed"),
            failed_again=Sum("failed_again"),
            not_repushed=Sum("not_repushed"),
            not_sent=Sum("item_count", filter=Q(state__in=NOT_SENT)),
        )
        .order_by()
    }
    causes = _failed_again_causes(problem, [b.pk for b in bulks])
    past = []
    for bulk in bulks:
        row = sums.get(bulk.pk, {})
        figures = {
            name: int(row.get(name) or 0)
            for name in (
                "requests",
                "active",
                "items",
                "completed",
                "failed_again",
                "not_repushed",
                "not_sent",
            )
        }
        same, other, since = causes.get(bulk.pk, (0, 0, 0))
        past.append(
            PastRetry(bulk, **figures, same_cause=same, other_cause=other, pushed_since=since)
        )
    return past


def _failed_again_causes(problem: Problem, bulk_pks: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per bulk retry, its items that failed again: (still outstanding in this problem,
    outstanding with another cause, pushed since)."""
    requests = list(
        RetryRequest.objects.filter(
            bulk_id__in=bulk_pks,
            state=RetryState.COMPLETED,
            failed_again__gt=0,
            new_sync_id__isnull=False,
        ).values_list("bulk_id", "company_id", "new_sync_id", "failed_items")
    )
    if not requests:
        return {}
    asked = {str(new_sync): set(items) for _, _, new_sync, items in requests}
    failed: dict[str, set[str]] = defaultdict(set)
    for chunk in chunked(sorted(asked), 200):
        for sync_id, tid in PushItem.objects.filter(
            sync__sync_id__in=chunk, status__in=FAILED_ITEM_STATUSES
        ).values_list("sync__sync_id", "transaction_id"):
            if str(tid) in asked[str(sync_id)]:
                failed[str(sync_id)].add(str(tid))
    by_company: dict[int, set[str]] = defaultdict(set)
    for _, company_pk, new_sync, _ in requests:
        by_company[company_pk] |= failed.get(str(new_sync), set())
    now: dict[tuple[int, str], int | None] = {}
    for company_pk, tids in by_company.items():
        for chunk in chunked(sorted(tids), 1000):
            for state_tid, problem_pk in TransactionState.objects.filter(
                company_id=company_pk, transaction_id__in=chunk, outstanding=True
            ).values_list("transaction_id", "problem_id"):
                now[(company_pk, str(state_tid))] = problem_pk
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for bulk_pk, company_pk, new_sync, _ in requests:
        for item in failed.get(str(new_sync), ()):
            key = (company_pk, item)
            slot = 2 if key not in now else (0 if now[key] == problem.pk else 1)
            counts[bulk_pk][slot] += 1
    return {pk: (c[0], c[1], c[2]) for pk, c in counts.items()}


def page_url(problem: Problem) -> str:
    """Where a problem's retry leads back to: the problem's page."""
    return problem.get_absolute_url()
