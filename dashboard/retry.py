"""Retry failed items: requests, their execution, and their outcome.

A view records a *retry request* (who, when, which sync, the failed items at
that moment, an idempotency key) and enqueues a task on commit; nothing else.
The task claims the request with a conditional update and a lease, so two
deliveries or two clicks never push twice, and calls the upstream's
initiate-sync with the request's key. The new sync is then followed (webhooks
and polling) until it ends, and the request records how its items came out.

No request gets stuck. A worker that dies, or hits any error, leaves the
request to be claimed again once its lease passes (the follow-up task sends
it again); errors are retried with backoff a bounded number of times, then the
request ends failed with the reason. An attempt after a POST that may have
reached the upstream first looks there for the sync that POST started and
links it, so the recovery does not rely on the upstream honouring the key.
A lead may cancel a request until its POST is about to be sent.

Each request that reaches an end is counted once by its outcome, by whoever
made the transition (`synchealth_retry_requests_total`).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from synchealth.celery import capped_countdown

from . import ingest, metrics
from .db import chunked
from .ingest import state
from .models import BulkRetry, PushItem, RetryRequest, Sync, TransactionState
from .roles import LEAD, RUNNER
from .upstream import Upstream, UpstreamError
from .vocabulary import (
    ACTIVE_RETRY_STATES,
    CLAIMABLE_RETRY_STATES,
    FAILED_ITEM_STATUSES,
    ItemStatus,
    RetryState,
)

log = logging.getLogger(__name__)

# Attempts (claims) at one request before it ends failed with the last reason.
MAX_ATTEMPTS = 8
# How far the upstream's clock may be behind ours, when looking for a sync an
# earlier attempt started: it began after that attempt's POST, by our clock.
CLOCK_SKEW = timedelta(minutes=1)


# Why a problem's retry of a sync requests nothing.
NOTHING_LEFT = (
    "Nothing left to retry here: each of the problem's items this retry was to re-push has "
    "been pushed since the preview."
)


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
    """This sync's outstanding items (left unpushed, no later push completed them), in order."""
    outstanding = state.standings([sync.pk]).get(sync.pk, state.Standing()).outstanding
    if not outstanding:
        return []
    ids = (
        PushItem.objects.filter(sync=sync, transaction_id__in=list(outstanding))
        .order_by("id")
        .values_list("transaction_id", flat=True)
    )
    return list(dict.fromkeys(str(tid) for tid in ids))


def plan(sync: Sync, only: Collection[str] | None = None) -> Plan:
    """The outstanding items of `sync`, the syncs a retry of them names, and what goes along.

    `only` (a problem's retry): these transactions of the sync's company instead,
    those of them still outstanding, so that the retry names only the syncs
    where they last failed, not every sync where the chain's other items did.
    """
    tips: dict[int, str] = {}
    if only is not None:
        items = []
        histories = state.pushes(sync.company_id, [uuid.UUID(t) for t in only])
        for tid in dict.fromkeys(only):
            cause = state.cause(histories.get(uuid.UUID(tid), []))
            if cause is not None:
                items.append(tid)
                tips[cause.sync_pk] = str(cause.sync_id)
        if not items:
            return Plan([], [], 0)
    else:
        items = outstanding_item_ids(sync)
        if not items:
            return Plan([], [], 0)
        for pushes in state.pushes(sync.company_id, [uuid.UUID(t) for t in items]).values():
            failed = [push for push in pushes if push.left_outstanding] or pushes
            tip = max(failed, key=lambda push: push.order)
            tips[tip.sync_pk] = str(tip.sync_id)
    names = sorted(set(tips.values()) or {str(sync.sync_id)})
    mine = {uuid.UUID(t) for t in items}
    along: set[uuid.UUID] = set()
    for standing in state.standings(list(tips)).values():
        along |= standing.outstanding - mine
    return Plan(items, names, len(along))


@dataclass(frozen=True)
class Advice:
    """What a sync's page says about retrying it, and whether it offers the button."""

    outstanding: int
    text: str
    offer: bool
    active: RetryRequest | None = None
    # The button would be offered to someone allowed to retry: the page says whom to ask instead.
    ask: bool = False


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
            f"syncs (the {RUNNER} or {LEAD} role); you cannot retry syncs.",
            False,
            ask=True,
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
    metrics.RETRY_REQUESTS.inc(outcome="denied")


def request_retry(
    *,
    sync: Sync,
    user: User,
    key: uuid.UUID,
    bulk: BulkRetry | None = None,
    only: Collection[str] | None = None,
) -> tuple[RetryRequest, bool]:
    """Record a retry request and queue it. Returns (request, created).

    The same key (a double-submitted form), or a sync that already has a
    request in flight, gives back the existing request instead of a new one.
    `only`: retry these transactions of the sync's chain, not all its outstanding
    items (a problem's bulk retry; see `plan`).
    """
    existing = RetryRequest.objects.filter(key=key).first()
    if existing is not None:
        return existing, False
    active = RetryRequest.objects.filter(sync=sync, state__in=ACTIVE_RETRY_STATES).first()
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            # One company's requests are made one at a time, so that two of them
            # never name the same sync: Codat would push its items twice.
            state.lock_companies([sync.company_id])
            planned = plan(sync, only)
            if not planned.items:
                raise RetryRefused(resolution(sync) if only is None else NOTHING_LEFT)
            overlapping = _naming_any(sync.company_id, planned.sync_ids)
            if overlapping is not None:
                return overlapping, False
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


def _naming_any(company_pk: int, sync_ids: list[str]) -> RetryRequest | None:
    """An active request of the company whose POST names one of these syncs."""
    wanted = set(sync_ids)
    for request in RetryRequest.objects.filter(
        company_id=company_pk, state__in=ACTIVE_RETRY_STATES
    ).order_by("pk"):
        if wanted & set(syncs_to_post(request)):
            return request
    return None


def _enqueue(pk: int) -> None:
    from .tasks import run_retry_task

    run_retry_task.delay(pk)


def claim_lease() -> timedelta:
    return timedelta(seconds=settings.RETRY_CLAIM_LEASE_SECONDS)


def claim(pk: int) -> RetryRequest | None:
    """Take the request for this worker, or None if another holds it (or it is settled).

    A queued request is free; a running one is free once its lease has
    passed, since its worker died or hit an error it could not record. Each
    claim counts an attempt, and that number fences the writes that follow:
    a worker whose request was taken over can no longer change it.
    """
    now = timezone.now()
    claimed = (
        RetryRequest.objects.filter(pk=pk)
        .filter(Q(state=RetryState.QUEUED) | Q(state=RetryState.RUNNING, lease_until__lt=now))
        .update(
            state=RetryState.RUNNING,
            started_at=now,
            lease_until=now + claim_lease(),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return None
    return RetryRequest.objects.select_related("sync", "company").get(pk=pk)


def lease_left(pk: int) -> float | None:
    """Seconds until a running request's lease ends; None when it is not running."""
    lease_until = (
        RetryRequest.objects.filter(pk=pk, state=RetryState.RUNNING)
        .values_list("lease_until", flat=True)
        .first()
    )
    if lease_until is None:
        return None
    return max(0.0, (lease_until - timezone.now()).total_seconds())


class TryAgain(Exception):
    """This attempt failed in a way a later one may not; the task runs again after `countdown`."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles the exception of a retried task.
        return (type(self), (self.countdown, str(self)))


def execute(client: Upstream, pk: int) -> RetryRequest | None:
    """Submit one request to the upstream, exactly once.

    Returns None when another worker holds it. Raises TryAgain when a later
    attempt may succeed (an upstream error that says so, or anything else:
    Redis, the database, a bug), after recording the wait on the request; a
    bounded number of attempts later the request ends failed with the reason.
    """
    request = claim(pk)
    if request is None:
        return None
    if request.attempts > MAX_ATTEMPTS:
        # Earlier attempts ended without a word (their worker died each time).
        _fail(request, f"Gave up after {MAX_ATTEMPTS} attempts. {request.reason}".strip())
        return _reload(pk)
    try:
        new_sync_id = submit(client, request)
    except UpstreamError as exc:
        if exc.retryable:
            _later_or_fail(request, str(exc), exc.retry_after)
        else:
            _fail(request, f"The upstream refused: {exc}")
        return _reload(pk)
    except Exception as exc:
        log.warning("retry %s, attempt %s: %r", pk, request.attempts, exc, exc_info=True)
        _later_or_fail(request, f"{type(exc).__name__}: {exc}", None)
        return _reload(pk)
    if new_sync_id is None or not record_submission(request, new_sync_id):
        return _reload(pk)  # cancelled before the POST, or taken over
    if request.bulk_id is None:
        # One sync: read the new sync now, so the page shows it at once. A
        # bulk retry leaves that to the webhooks and the follow-up poll, so
        # its requests go to the POSTs and nothing else.
        try:
            follow(client, pk)
        except Exception as exc:
            # The submission is recorded; the follow-up poll reads it later.
            log.info("retry %s: new sync not read yet: %r", pk, exc)
    return _reload(pk)


def _reload(pk: int) -> RetryRequest:
    return RetryRequest.objects.select_related("sync", "company").get(pk=pk)


def syncs_to_post(request: RetryRequest) -> list[str]:
    """The syncs the POST names: the tips of the retry chains, else the request's own sync."""
    return [str(s) for s in request.sync_ids] or [str(request.sync.sync_id)]


def submit(client: Upstream, request: RetryRequest) -> str | None:
    """The new sync's ID, or None when the request was cancelled (or taken over) first.

    An attempt after the POST may have gone out looks for the sync that POST
    started before it posts again, with the same key: Codat does not promise
    that the key makes a second POST harmless.
    """
    if request.posted_at is not None:
        started = started_sync(client, request)
        if started is not None:
            log.info("retry %s: linking %s, started by an earlier attempt", request.pk, started)
            return started
    if not _mark_posting(request):
        return None
    return client.initiate_sync(
        str(request.company.company_id), syncs_to_post(request), idempotency_key=str(request.key)
    )


def _mark_posting(request: RetryRequest) -> bool:
    """Record that the POST is about to go out; False if cancelled (or taken over) first.

    The same conditional update as `cancel`'s, the other way round: whichever
    commits first wins, so a request is either cancelled or sent, never both.
    The lease starts again, for the POST's full length.
    """
    now = timezone.now()
    marked = RetryRequest.objects.filter(
        pk=request.pk, state=RetryState.RUNNING, attempts=request.attempts
    ).update(posted_at=Coalesce("posted_at", Value(now)), lease_until=now + claim_lease())
    if marked:
        request.posted_at = request.posted_at or now
    return marked == 1


def started_sync(client: Upstream, request: RetryRequest) -> str | None:
    """The upstream sync an earlier attempt of this request started, if there is one.

    That attempt died, or lost the answer, after its POST: the upstream may
    have started a sync we never heard of. It is in the company's sync list,
    began after the first POST was about to go out (less the clocks'
    disagreement), and pushes some of the request's items. A sync this
    request names, or one another request already holds, is not it.
    """
    assert request.posted_at is not None
    company_id = str(request.company.company_id)
    since = request.posted_at - CLOCK_SKEW
    named = {_uuid(s) for s in syncs_to_post(request)}
    candidates = sorted(
        (began, sync_id)
        for record in client.list_syncs(company_id)
        if (began := ingest.parse_time(record.get("syncUtc"))) is not None
        and began >= since
        and (sync_id := _uuid(record.get("syncId"))) is not None
        and sync_id not in named
    )
    held = set(
        RetryRequest.objects.filter(new_sync_id__in=[sync_id for _, sync_id in candidates])
        .exclude(pk=request.pk)
        .values_list("new_sync_id", flat=True)
    )
    wanted = {_uuid(t) for t in request.failed_items} - {None}
    for _, sync_id in candidates:
        if sync_id in held:
            continue
        for page in client.transaction_pages(company_id, str(sync_id)):
            if any(_uuid(t.get("transactionId")) in wanted for t in page):
                return str(sync_id)
    return None


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _later_or_fail(request: RetryRequest, reason: str, retry_after: float | None) -> None:
    """Queue the request for another attempt and raise TryAgain; past the bound, fail it."""
    if request.attempts >= MAX_ATTEMPTS:
        _fail(request, f"Gave up after {request.attempts} attempts: {reason}")
        return
    countdown = backoff(request.attempts, retry_after)
    due = timezone.now() + timedelta(seconds=countdown)
    try:
        RetryRequest.objects.filter(
            pk=request.pk, state=RetryState.RUNNING, attempts=request.attempts
        ).update(
            state=RetryState.QUEUED,
            # Past this, the follow-up sends it again (its task may be lost).
            lease_until=due + claim_lease(),
            reason=f"Waiting to try again until {due:%H:%M:%S} UTC: {reason}"[:2000],
        )
    except DatabaseError:
        # The database itself may be what failed: the lease brings it back.
        log.warning("retry %s: could not record the wait", request.pk, exc_info=True)
    raise TryAgain(countdown, reason)


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`: exponential with jitter, at least Retry-After."""
    wait = min(600, 5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
    return capped_countdown(max(wait, retry_after or 0))


def _fail(request: RetryRequest, reason: str) -> None:
    """End the request failed with `reason`, unless another attempt has taken it over."""
    failed = RetryRequest.objects.filter(
        pk=request.pk, state=RetryState.RUNNING, attempts=request.attempts
    ).update(
        state=RetryState.FAILED,
        reason=reason[:2000],
        lease_until=None,
        finished_at=timezone.now(),
    )
    metrics.RETRY_REQUESTS.inc(failed, outcome="failed")


def record_submission(request: RetryRequest, new_sync_id: str) -> bool:
    """Link the new sync to the request; False if another attempt took the request over."""
    return (
        RetryRequest.objects.filter(
            pk=request.pk, state=RetryState.RUNNING, attempts=request.attempts
        ).update(
            state=RetryState.SUBMITTED,
            new_sync_id=new_sync_id,
            submitted_at=timezone.now(),
            lease_until=None,
            reason="",
        )
        == 1
    )


def cancel(*, pk: int, user: User) -> bool:
    """Cancel a request whose POST has not been sent; False when it is too late.

    Race-free against the worker: it marks `posted_at` with a conditional
    update before it POSTs, and this one succeeds only while that is empty.
    """
    cancelled = RetryRequest.objects.filter(
        pk=pk, state__in=CLAIMABLE_RETRY_STATES, posted_at__isnull=True
    ).update(
        state=RetryState.CANCELLED,
        cancelled_by=user,
        finished_at=timezone.now(),
        lease_until=None,
        reason=f"Cancelled by {user.get_username()} before it was sent.",
    )
    metrics.RETRY_REQUESTS.inc(cancelled, outcome="cancelled")
    return cancelled == 1


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
            state.recount([new_sync.pk])
        ingest.update_streak(request.company)
    if not new_sync.is_terminal or new_sync.items_status_code != new_sync.status_code:
        return request
    counts = item_outcomes(request, new_sync)
    if RetryRequest.objects.filter(pk=request.pk, state=RetryState.SUBMITTED).update(
        state=RetryState.COMPLETED, finished_at=timezone.now(), **counts
    ):
        # Counted by the one settlement that won: a webhook and the follow-up
        # poll may both get here.
        metrics.RETRY_REQUESTS.inc(outcome="completed")
        for outcome in metrics.RETRY_ITEM_OUTCOMES:
            metrics.RETRY_ITEMS.inc(counts[outcome], outcome=outcome)
    request.refresh_from_db()
    return request


def item_outcomes(request: RetryRequest, new_sync: Sync) -> dict[str, Any]:
    """How the requested items came out in the new sync: pushed, completed, failed again,
    and not re-pushed (with why)."""
    seen: dict[uuid.UUID, set[int]] = {}
    for chunk in chunked(request.failed_items, 1000):
        for tid, status in PushItem.objects.filter(
            sync=new_sync, transaction_id__in=chunk
        ).values_list("transaction_id", "status"):
            seen.setdefault(tid, set()).add(status)
    # One outcome per transaction (it may be pushed as two integration types):
    # a failure in either is a failure, as in the current state.
    statuses = {
        tid: next((s for s in found if s in FAILED_ITEM_STATUSES), max(found))
        for tid, found in seen.items()
    }
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
    settled: set[uuid.UUID] = set()
    for chunk in chunked(missing, 1000):
        settled.update(
            TransactionState.objects.filter(
                company_id=request.company_id, transaction_id__in=chunk, outstanding=False
            ).values_list("transaction_id", flat=True)
        )
    reasons = {}
    for tid in missing:
        if uuid.UUID(tid) in settled:
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
        except (UpstreamError, ingest.CompanyPurged) as exc:
            log.info("follow retry %s: %s", pk, exc)
    return settled


def lost_requests(*, limit: int, older_than: timedelta = timedelta(minutes=10)) -> list[int]:
    """Requests no task is working on: a lease that passed, or never tried long after made.

    A running request whose lease passed lost its worker; a queued one whose
    lease passed lost the task that was to try it again; a queued one never
    tried lost its first task (the broker was down, or the message dropped).
    """
    now = timezone.now()
    return list(
        RetryRequest.objects.filter(
            Q(state__in=CLAIMABLE_RETRY_STATES, lease_until__lt=now)
            | Q(state=RetryState.QUEUED, lease_until__isnull=True, created_at__lt=now - older_than)
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
