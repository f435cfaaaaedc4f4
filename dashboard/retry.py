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
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from . import ingest
from .ingest import state
from .models import BulkRetry, PushItem, RetryRequest, Sync, TransactionState
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
    # Why the new sync did not push it, when it did not.
    reason: str = ""

    @property
    def label(self) -> str:
        if self.after is None:
            return "not re-pushed"
        if self.after.status == ItemStatus.COMPLETED:
            return "pushed"
        if self.after.status in FAILED_ITEM_STATUSES:
            return "failed again"
        return "pending"


@dataclass(frozen=True)
class Plan:
    """What retrying a sync would send, worked out from the current state.

    Codat's initiate-sync re-pushes the failed and pending items *of the syncs
    named*; nobody can pick items. So the request names, for each outstanding
    item, the sync where it last failed (the tip of its retry chain), never an
    original whose items a later push already completed. Those syncs may hold
    outstanding items of other causes: they go along, and the page says so.
    """

    items: list[str]
    sync_ids: list[str]
    other_items: int


def outstanding_item_ids(sync: Sync) -> list[str]:
    """This sync's items whose transaction is still outstanding, in the sync's order."""
    outstanding = TransactionState.objects.filter(
        company_id=sync.company_id, transaction_id=OuterRef("transaction_id"), outstanding=True
    )
    ids = (
        PushItem.objects.filter(sync=sync)
        .filter(Exists(outstanding))
        .order_by("id")
        .values_list("transaction_id", flat=True)
    )
    return list(dict.fromkeys(str(tid) for tid in ids))


def plan(sync: Sync) -> Plan:
    """The outstanding items of `sync`, the syncs a retry of them names, and what goes along."""
    items = outstanding_item_ids(sync)
    if not items:
        return Plan([], [], 0)
    tips: dict[str, tuple[Any, str]] = {}
    for tid, pushes in state.pushes(sync.company_id, [uuid.UUID(t) for t in items]).items():
        failed = [push for push in pushes if push.left_outstanding] or pushes
        tip = max(failed, key=lambda push: push.order)
        tips[str(tid)] = (tip.order, str(tip.sync_id))
    names = sorted({sync_id for _, sync_id in tips.values()} or {str(sync.sync_id)})
    mine = set(items)
    outstanding = TransactionState.objects.filter(
        company_id=sync.company_id, transaction_id=OuterRef("transaction_id"), outstanding=True
    )
    along = {
        str(tid)
        for tid in PushItem.objects.filter(sync__sync_id__in=names)
        .exclude(status=ItemStatus.COMPLETED)
        .filter(Exists(outstanding))
        .values_list("transaction_id", flat=True)
    } - mine
    return Plan(items, names, len(along))


@dataclass(frozen=True)
class Advice:
    """What a sync's page says about retrying it, and whether it offers the button."""

    outstanding: int
    text: str
    offer: bool
    active: RetryRequest | None = None


def advice(sync: Sync, *, may_retry: bool) -> Advice:
    """The retry sentence that follows a status code's note: only what this page can do."""
    outstanding = sync.items_outstanding
    active = RetryRequest.objects.filter(sync=sync, state__in=ACTIVE_RETRY_STATES).first()
    if active is not None:
        return Advice(
            outstanding, f"A retry of this sync is under way: request {active.pk}.", False, active
        )
    if not sync.is_terminal:
        return Advice(
            outstanding,
            "Items can be retried once the sync has ended, if any are left unpushed.",
            False,
        )
    if not outstanding:
        return Advice(0, resolution(sync), False)
    items = f"{outstanding} outstanding item{'s' if outstanding != 1 else ''}"
    if not may_retry:
        return Advice(
            outstanding,
            f"Once the cause is fixed, the {items} can be retried by someone allowed to retry "
            "syncs (a support lead); you cannot retry syncs.",
            False,
        )
    return Advice(
        outstanding, f"Once the cause is fixed, retry the {items} with the button below.", True
    )


def resolution(sync: Sync) -> str:
    """Why a sync with nothing outstanding offers no retry, for the page."""
    if sync.resolved_at is not None and sync.resolved_by is not None:
        by = "retry" if sync.resolved_by.retry_of_id else "sync"
        return (
            f"Resolved by {by} {sync.resolved_by.sync_id} at "
            f"{sync.resolved_at:%Y-%m-%d %H:%M} UTC: every item is now pushed."
        )
    return (
        "There is nothing to retry here: no item of this sync failed or was left unfinished, "
        "so a retry would push nothing. Once the cause is fixed, the expenses go with the "
        "customer's next sync."
    )


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
    planned = plan(sync)
    if not planned.items:
        raise RetryRefused(resolution(sync))
    try:
        with transaction.atomic():
            created = RetryRequest.objects.create(
                key=key,
                user=user,
                sync=sync,
                company_id=sync.company_id,
                bulk=bulk,
                failed_items=planned.items,
                item_count=len(planned.items),
                sync_ids=planned.sync_ids,
                other_items=planned.other_items,
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
            request.sync_ids or [str(request.sync.sync_id)],
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
    root = request.sync.retry_of_id or request.sync_id
    if new_sync.retry_of_id != root and new_sync.pk != root:
        # A chain is its original and the syncs that retry it: link to the original.
        with transaction.atomic():
            state.lock_companies([new_sync.company_id])
            Sync.objects.filter(pk=new_sync.pk).update(retry_of=root)
            state.refresh_chain_category([new_sync.pk])
        ingest.update_streak(request.company)
    if not new_sync.is_terminal or new_sync.items_status_code != new_sync.status_code:
        return request
    counts = item_outcomes(request, new_sync)
    RetryRequest.objects.filter(pk=request.pk, state=RetryState.SUBMITTED).update(
        state=RetryState.COMPLETED, finished_at=timezone.now(), **counts
    )
    request.refresh_from_db()
    return request


def item_outcomes(request: RetryRequest, new_sync: Sync) -> dict[str, Any]:
    """How the requested items came out in the new sync: pushed, completed, failed again,
    and not re-pushed (with why)."""
    statuses = dict(
        PushItem.objects.filter(sync=new_sync, transaction_id__in=request.failed_items)
        .order_by("transaction_id", "-status")
        .values_list("transaction_id", "status")
    )
    missing = [tid for tid in request.failed_items if uuid.UUID(tid) not in statuses]
    reasons: dict[str, int] = {}
    for reason in _not_repushed_reasons(request, new_sync, missing).values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "pushed": len(statuses),
        "completed": sum(1 for status in statuses.values() if status == ItemStatus.COMPLETED),
        "failed_again": sum(1 for status in statuses.values() if status in FAILED_ITEM_STATUSES),
        "not_repushed": len(missing),
        "not_repushed_reasons": reasons,
    }


def _not_repushed_reasons(
    request: RetryRequest, new_sync: Sync, missing: list[str]
) -> dict[str, str]:
    """Why each item the new sync left out was left out, as far as the mirror can tell."""
    if not missing:
        return {}
    later = dict(
        TransactionState.objects.filter(
            company_id=request.company_id, transaction_id__in=missing
        ).values_list("transaction_id", "status")
    )
    reasons = {}
    for tid in missing:
        status = later.get(uuid.UUID(tid))
        if status == ItemStatus.COMPLETED:
            reasons[tid] = "already completed by another push"
        else:
            reasons[tid] = "the upstream did not re-push it"
    return reasons


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
    reasons: dict[str, str] = {}
    if request.new_sync_id:
        after = {
            str(i.transaction_id): i
            for i in PushItem.objects.filter(
                sync__sync_id=request.new_sync_id, transaction_id__in=request.failed_items
            )
        }
        new_sync = Sync.objects.filter(sync_id=request.new_sync_id).first()
        if new_sync is not None and new_sync.is_terminal:
            missing = [tid for tid in request.failed_items if tid not in after]
            reasons = _not_repushed_reasons(request, new_sync, missing)
    return [
        Outcome(tid, before.get(tid), after.get(tid), reasons.get(tid, ""))
        for tid in request.failed_items
    ]


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
