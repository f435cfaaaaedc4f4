"""Retry failed items: requests, their execution, and their outcome.

A view records a *retry request* (who, when, which sync, the failed items at
that moment, an idempotency key) and enqueues a task on commit; nothing else.
The task claims the request with a conditional update, so two deliveries or
two clicks never push twice, and calls the upstream's initiate-sync with the
request's key, so a task redelivered after a crash gets the same sync back
instead of starting a second one. The new sync is then followed (webhooks and
polling) until it ends, and the request records how its items came out.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from . import ingest
from .models import BulkRetry, PushItem, RetryRequest, Sync
from .upstream import Upstream, UpstreamError
from .vocabulary import ACTIVE_RETRY_STATES, FAILED_ITEM_STATUSES, ItemStatus, RetryState

log = logging.getLogger(__name__)

# A request claimed by a worker that then died is claimable again after this.
CLAIM_LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


class RetryRefused(Exception):
    """The request cannot be made; the message says why, for the user."""


@dataclass
class Outcome:
    transaction_id: str
    before: PushItem | None
    after: PushItem | None

    @property
    def label(self) -> str:
        if self.after is None:
            return "not re-pushed"
        if self.after.status == ItemStatus.COMPLETED:
            return "pushed"
        if self.after.status in FAILED_ITEM_STATUSES:
            return "failed again"
        return "pending"


def failed_item_ids(sync: Sync) -> list[str]:
    return [
        str(tid)
        for tid in PushItem.objects.filter(sync=sync, status__in=FAILED_ITEM_STATUSES)
        .order_by("id")
        .values_list("transaction_id", flat=True)
        .distinct()
    ]


def record_denied(*, sync: Sync, user: User | AnonymousUser, reason: str) -> None:
    """Keep a record of a retry someone was not allowed to make."""
    if not isinstance(user, User):
        return
    RetryRequest.objects.create(
        key=uuid.uuid4(),
        user=user,
        sync=sync,
        company_id=sync.company_id,
        state=RetryState.DENIED,
        reason=reason,
        finished_at=timezone.now(),
    )


def request_retry(
    *, sync: Sync, user: User, key: uuid.UUID, bulk: BulkRetry | None = None
) -> tuple[RetryRequest, bool]:
    """Record a retry request and queue it. Returns (request, created).

    The same key (a double-submitted form), or a sync that already has a
    request in flight, gives back the existing request instead of a new one.
    """
    existing = RetryRequest.objects.filter(key=key).first()
    if existing is not None:
        return existing, False
    active = RetryRequest.objects.filter(sync=sync, state__in=ACTIVE_RETRY_STATES).first()
    if active is not None:
        return active, False
    items = failed_item_ids(sync)
    if not items:
        raise RetryRefused("This sync has no failed items to retry.")
    try:
        with transaction.atomic():
            created = RetryRequest.objects.create(
                key=key,
                user=user,
                sync=sync,
                company_id=sync.company_id,
                bulk=bulk,
                failed_items=items,
                item_count=len(items),
            )
            transaction.on_commit(lambda: _enqueue(created.pk))
    except IntegrityError:
        # Lost a race with an identical request: return the one that won.
        winner = (
            RetryRequest.objects.filter(Q(key=key) | Q(sync=sync, state__in=ACTIVE_RETRY_STATES))
            .order_by("pk")
            .first()
        )
        if winner is None:
            raise
        return winner, False
    return created, True


def _enqueue(pk: int) -> None:
    from .tasks import run_retry_task

    run_retry_task.delay(pk)


def claim(pk: int) -> RetryRequest | None:
    """Take the request for this worker, or None if another has it (or it is done)."""
    now = timezone.now()
    claimed = (
        RetryRequest.objects.filter(pk=pk)
        .filter(
            Q(state=RetryState.QUEUED)
            | Q(state=RetryState.RUNNING, started_at__lt=now - CLAIM_LEASE)
        )
        .update(state=RetryState.RUNNING, started_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return RetryRequest.objects.select_related("sync", "company").get(pk=pk)


def execute(client: Upstream, pk: int) -> RetryRequest | None:
    """Submit one claimed request to the upstream. Raises UpstreamError when retryable."""
    request = claim(pk)
    if request is None:
        return None
    try:
        new_sync_id = client.initiate_sync(
            str(request.company.company_id),
            [str(request.sync.sync_id)],
            idempotency_key=str(request.key),
        )
    except UpstreamError as exc:
        if exc.retryable and request.attempts < MAX_ATTEMPTS:
            wait = (
                f" until {timezone.now() + timedelta(seconds=exc.retry_after):%H:%M:%S} UTC"
                if exc.retry_after
                else ""
            )
            RetryRequest.objects.filter(pk=pk, state=RetryState.RUNNING).update(
                state=RetryState.QUEUED, reason=f"Waiting to try again{wait}: {exc}"[:2000]
            )
            raise
        RetryRequest.objects.filter(pk=pk).update(
            state=RetryState.FAILED,
            reason=f"The upstream refused: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        return RetryRequest.objects.get(pk=pk)
    record_submission(pk, new_sync_id)
    if request.bulk_id is None:
        # One sync: read the new sync now, so the page shows it at once. A
        # bulk retry leaves that to the webhooks and the follow-up poll, so
        # its requests go to the POSTs and nothing else.
        follow(client, pk)
    return RetryRequest.objects.get(pk=pk)


def record_submission(pk: int, new_sync_id: str) -> None:
    RetryRequest.objects.filter(pk=pk).update(
        state=RetryState.SUBMITTED,
        new_sync_id=new_sync_id,
        submitted_at=timezone.now(),
        reason="",
    )


def follow(client: Upstream, pk: int) -> RetryRequest:
    """Read the new sync from the upstream; settle the request when it has ended."""
    request = RetryRequest.objects.select_related("sync", "company").get(pk=pk)
    if request.state != RetryState.SUBMITTED or request.new_sync_id is None:
        return request
    ingest.refresh_sync(client, str(request.company.company_id), str(request.new_sync_id))
    return settle(request)


def settle(request: RetryRequest) -> RetryRequest:
    """Link the new sync to the original and, once it has ended, record the outcome."""
    if request.new_sync_id is None:
        return request
    new_sync = Sync.objects.filter(sync_id=request.new_sync_id).first()
    if new_sync is None:
        return request
    if new_sync.retry_of_id != request.sync_id:
        Sync.objects.filter(pk=new_sync.pk).update(retry_of=request.sync_id)
    if not new_sync.is_terminal or new_sync.items_status_code != new_sync.status_code:
        return request
    counts = PushItem.objects.filter(
        sync=new_sync, transaction_id__in=request.failed_items
    ).aggregate(
        pushed=Count("id", filter=Q(status=ItemStatus.COMPLETED)),
        failed=Count("id", filter=Q(status__in=FAILED_ITEM_STATUSES)),
    )
    RetryRequest.objects.filter(pk=request.pk, state=RetryState.SUBMITTED).update(
        state=RetryState.COMPLETED,
        finished_at=timezone.now(),
        pushed=counts["pushed"],
        failed_again=counts["failed"],
    )
    request.refresh_from_db()
    return request


def settle_for_sync(sync_id: str) -> None:
    """Called after a sync was refreshed (a webhook): settle the request that made it."""
    for request in RetryRequest.objects.filter(new_sync_id=sync_id, state=RetryState.SUBMITTED):
        settle(request)


def outcomes(request: RetryRequest) -> list[Outcome]:
    """Each originally failed item, with its status before and after the retry."""
    before = {
        str(i.transaction_id): i
        for i in PushItem.objects.filter(
            sync_id=request.sync_id, transaction_id__in=request.failed_items
        )
    }
    after: dict[str, PushItem] = {}
    if request.new_sync_id:
        after = {
            str(i.transaction_id): i
            for i in PushItem.objects.filter(
                sync__sync_id=request.new_sync_id, transaction_id__in=request.failed_items
            )
        }
    return [Outcome(tid, before.get(tid), after.get(tid)) for tid in request.failed_items]


def follow_submitted(client: Upstream, *, limit: int) -> int:
    """Poll the new syncs of submitted requests, oldest first; returns how many settled."""
    pending = list(
        RetryRequest.objects.filter(state=RetryState.SUBMITTED)
        .order_by("submitted_at")
        .values_list("pk", flat=True)[:limit]
    )
    settled = 0
    for pk in pending:
        try:
            if follow(client, pk).state != RetryState.SUBMITTED:
                settled += 1
        except UpstreamError as exc:
            log.info("follow retry %s: %s", pk, exc)
    return settled


def lost_requests(*, limit: int, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Queued requests never tried, long after they were made: their task was lost."""
    stale = timezone.now() - older_than
    return list(
        RetryRequest.objects.filter(
            state=RetryState.QUEUED, created_at__lt=stale, attempts=0
        ).values_list("pk", flat=True)[:limit]
    )
