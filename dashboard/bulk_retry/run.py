"""A confirmed bulk retry at work: one request per member, and its cancel.

The worker makes a request for each member still included, never reading the
filter again (a problem's member asks only for the transactions it froze); a
cancel stops the members not yet requested and skips the requests no worker
has claimed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from .. import metrics, retry
from ..models import BulkMember, BulkRetry, RetryRequest
from ..vocabulary import (
    CANCELLABLE_BULK_STATES,
    CLAIMABLE_RETRY_STATES,
    BulkState,
    RetryState,
)
from .draft import BulkRefused

# Members requested per transaction: a cancel waits for at most one batch.
FAN_OUT_BATCH = 100
# A confirmed bulk retry that made no request for this long lost its fan-out task.
FAN_OUT_STALLED = timedelta(minutes=10)
CANCELLED_REASON = "Cancelled with its bulk retry before it was sent."


def fan_out(bulk_pk: int) -> dict[str, int]:
    """Make one retry request per member still included, in batches; safe to run twice.

    Each batch holds the bulk's row, so a cancel waits for the batch in hand
    and the next batch sees it. A member's key is derived from the bulk's and
    the sync's IDs, so a redelivered fan-out finds what it made before.
    """
    BulkRetry.objects.filter(pk=bulk_pk, state=BulkState.QUEUED).update(state=BulkState.RUNNING)
    made = skipped = 0
    while True:
        with transaction.atomic():
            bulk = BulkRetry.objects.select_for_update().get(pk=bulk_pk)
            if bulk.state != BulkState.RUNNING:
                break
            batch = list(
                BulkMember.objects.filter(bulk=bulk, included=True, request__isnull=True)
                .select_related("sync")
                .order_by("pk")[:FAN_OUT_BATCH]
            )
            if not batch:
                BulkRetry.objects.filter(pk=bulk_pk, state=BulkState.RUNNING).update(
                    state=BulkState.FANNED_OUT
                )
                break
            user = User.objects.get(pk=bulk.user_id)
            for member in batch:
                request, created = _request_for(bulk, user, member)
                BulkMember.objects.filter(pk=member.pk).update(request=request)
                made += created
                skipped += request.state == RetryState.SKIPPED
    if BulkRetry.objects.filter(pk=bulk_pk, state=BulkState.CANCELLED).exists():
        # Requests of the last batch may have been made as the cancel came in.
        skip_unclaimed(bulk_pk)
    return {"requested": made, "skipped": skipped}


def _request_for(bulk: BulkRetry, user: User, member: BulkMember) -> tuple[RetryRequest, bool]:
    key = uuid.uuid5(bulk.key, str(member.sync.sync_id))
    existing = RetryRequest.objects.filter(key=key).first()
    if existing is not None:
        return existing, False
    try:
        request, created = retry.request_retry(
            sync=member.sync, user=user, key=key, bulk=bulk, only=member.transaction_ids
        )
    except retry.RetryRefused as exc:
        return _skipped(bulk, user, member, key, str(exc)), False
    if created:
        return request, True
    reason = f"Already being retried (request {request.pk})."
    return _skipped(bulk, user, member, key, reason), False


def _skipped(
    bulk: BulkRetry, user: User, member: BulkMember, key: uuid.UUID, reason: str
) -> RetryRequest:
    skipped = RetryRequest.objects.create(
        key=key,
        user=user,
        sync=member.sync,
        company_id=member.company_id,
        bulk=bulk,
        state=RetryState.SKIPPED,
        reason=reason,
        finished_at=timezone.now(),
    )
    metrics.RETRY_REQUESTS.inc(outcome="skipped")
    return skipped


def stalled_fan_outs(*, limit: int) -> list[int]:
    """Confirmed bulk retries still to fan out that made no request for a while: lost tasks.

    Fanning out again is harmless (see `fan_out`), so a false alarm costs nothing.
    """
    cutoff = timezone.now() - FAN_OUT_STALLED
    return list(
        BulkRetry.objects.filter(
            state__in=(BulkState.QUEUED, BulkState.RUNNING), confirmed_at__lt=cutoff
        )
        .annotate(last=Max("requests__created_at"))
        .filter(Q(last__isnull=True) | Q(last__lt=cutoff))
        .values_list("pk", flat=True)[:limit]
    )


def _unclaimed(bulk_pk: int) -> QuerySet[RetryRequest]:
    """Requests of the bulk whose POST has not gone out (queued, or claimed but not posted).

    A worker marks `posted_at` with a conditional update just before it posts
    (`retry._mark_posting`, which needs the request still running): whichever
    of that and this update commits first wins, so a request is skipped or
    sent, never both.
    """
    return RetryRequest.objects.filter(
        bulk_id=bulk_pk, state__in=CLAIMABLE_RETRY_STATES, posted_at__isnull=True
    )


def skip_unclaimed(bulk_pk: int) -> int:
    """Skip the bulk's requests not yet sent (a worker about to post races this)."""
    skipped = _unclaimed(bulk_pk).update(
        state=RetryState.SKIPPED, reason=CANCELLED_REASON, finished_at=timezone.now()
    )
    metrics.RETRY_REQUESTS.inc(skipped, outcome="skipped")
    return skipped


def can_cancel(bulk: BulkRetry) -> bool:
    if bulk.state not in CANCELLABLE_BULK_STATES:
        return False
    return bulk.state != BulkState.FANNED_OUT or _unclaimed(bulk.pk).exists()


@dataclass(frozen=True)
class Cancelled:
    requests_skipped: int
    not_requested: int


def cancel(bulk_pk: int, *, user: User) -> Cancelled:
    """Stop a bulk retry: members not yet requested are never requested, and its
    requests still queued and unclaimed are skipped. Requests a worker has taken
    go on (their POST may already be out)."""
    with transaction.atomic():
        bulk = BulkRetry.objects.select_for_update().get(pk=bulk_pk)
        if not can_cancel(bulk):
            raise BulkRefused(
                "This bulk retry has nothing left to cancel: every request was already sent."
                if bulk.state == BulkState.FANNED_OUT
                else f"This bulk retry cannot be cancelled: it is {bulk.get_state_display()}."
            )
        now = timezone.now()
        BulkRetry.objects.filter(pk=bulk_pk).update(
            state=BulkState.CANCELLED, cancelled_at=now, cancelled_by=user, finished_at=now
        )
    skipped = skip_unclaimed(bulk_pk)
    not_requested = BulkMember.objects.filter(
        bulk_id=bulk_pk, included=True, request__isnull=True
    ).count()
    return Cancelled(requests_skipped=skipped, not_requested=not_requested)
