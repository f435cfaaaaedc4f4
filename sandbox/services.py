"""What happens to the sandbox's data: syncs start, run, finish and get retried.

A sync is created `finalized=False` with a `completes_at`; until then the API
reports 1000 (or 1010 past ten minutes). `finalize_sync` decides the outcome
from a seed, so the same sync always ends the same way, and claims the work
with a conditional update, so running it twice changes nothing. A retry can
instead follow a `RetryScript` (`script_next_retry`), for scenarios that must
end one exact way.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from synchealth.celery import countdown_ceiling

from . import catalogue
from .models import (
    Company,
    Item,
    ItemStatus,
    RetryRepush,
    RetryScript,
    SandboxSettings,
    Sync,
    SyncKind,
)

LONG_RUNNING_AFTER = timedelta(minutes=10)
# A scripted list of failures is checked in one query; bounded like an API page.
MAX_SCRIPTED_FAILURES = 5000


def api_status_code(sync: Sync, now: datetime) -> int:
    if sync.finalized:
        return sync.status_code
    return 1010 if now - sync.started_at > LONG_RUNNING_AFTER else 1000


def sync_rng(sync_id: uuid.UUID, salt: int, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"{salt}:{purpose}:{sync_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _processing_time(config: SandboxSettings, sync_id: uuid.UUID) -> timedelta:
    rng = sync_rng(sync_id, config.seed, "duration")
    if rng.random() < config.long_running_rate:
        return timedelta(minutes=rng.uniform(11, 40))
    low = min(config.processing_seconds_min, config.processing_seconds_max)
    return timedelta(seconds=rng.uniform(low, config.processing_seconds_max))


def _new_sync(company: Company, kind: str, now: datetime, sources: list[str]) -> Sync:
    config = SandboxSettings.load()
    sync_id = uuid.uuid4()
    sync = Sync.objects.create(
        sync_id=sync_id,
        company=company,
        kind=kind,
        started_at=now,
        completes_at=now + _processing_time(config, sync_id),
        source_sync_ids=sources,
    )
    Company.objects.filter(pk=company.pk).update(last_sync_at=now)
    return sync


def _enqueue_finalize(sync: Sync) -> None:
    from .tasks import finalize_sync_task

    countdown = max(0.0, (sync.completes_at - timezone.now()).total_seconds())
    if countdown > countdown_ceiling():
        # Longer than a task may wait without the broker handing it out again:
        # `finalize_due` (beat, every few seconds) finishes it when it is due.
        return
    transaction.on_commit(
        lambda: finalize_sync_task.apply_async(args=(sync.pk,), countdown=countdown)
    )


@transaction.atomic
def create_expense_sync(*, company: Company, transaction_ids: list[uuid.UUID]) -> Sync:
    """Record expense transactions; a sync starts automatically (seed doc)."""
    now = timezone.now()
    sync = _new_sync(company, SyncKind.EXPENSES, now, [])
    rng = sync_rng(sync.sync_id, 0, "kinds")
    items = []
    for position, transaction_id in enumerate(transaction_ids):
        integration, data_type = catalogue.item_kind(rng)
        items.append(
            Item(
                sync=sync,
                position=position,
                transaction_id=transaction_id,
                integration_type=integration,
                data_type=data_type,
                status=ItemStatus.PENDING,
            )
        )
    Item.objects.bulk_create(items)
    Sync.objects.filter(pk=sync.pk).update(item_count=len(items))
    sync.item_count = len(items)
    _enqueue_finalize(sync)
    return sync


def retry_candidates(
    company: Company, source_syncs: Iterable[Sync], repush: str = RetryRepush.UNPUSHED
) -> list[Item]:
    """What a retry naming `source_syncs` re-pushes: one item per transaction, in push order.

    `repush` is the reading of Codat's "the failed and pending items of the
    syncs named" (see `RetryRepush`): `unpushed` leaves out what a retry of the
    company already completed, `named` takes every failed or pending item the
    named syncs hold, `everything` every item they hold.
    """
    source_ids = [s.pk for s in source_syncs]
    held = Item.objects.filter(sync_id__in=source_ids)
    if repush != RetryRepush.EVERYTHING:
        held = held.exclude(status=ItemStatus.COMPLETED)
    latest: dict[uuid.UUID, Item] = {}
    for item in held.order_by("sync__started_at", "sync_id", "position"):
        latest[item.transaction_id] = item
    if repush != RetryRepush.UNPUSHED or not latest:
        return list(latest.values())
    already_pushed = set(
        Item.objects.filter(
            sync__company=company,
            sync__kind=SyncKind.RETRY,
            transaction_id__in=list(latest),
            status=ItemStatus.COMPLETED,
        ).values_list("transaction_id", flat=True)
    )
    return [item for tid, item in latest.items() if tid not in already_pushed]


@transaction.atomic
def initiate_sync(*, company: Company, source_syncs: list[Sync]) -> Sync:
    """Start a sync that re-pushes the failed and pending items of `source_syncs`."""
    now = timezone.now()
    candidates = retry_candidates(company, source_syncs, SandboxSettings.load().retry_repush)
    sync = _new_sync(company, SyncKind.RETRY, now, [str(s.sync_id) for s in source_syncs])
    Item.objects.bulk_create(
        [
            Item(
                sync=sync,
                position=position,
                transaction_id=source.transaction_id,
                integration_type=source.integration_type,
                data_type=source.data_type,
                status=ItemStatus.PENDING,
            )
            for position, source in enumerate(candidates)
        ],
        batch_size=2000,
    )
    Sync.objects.filter(pk=sync.pk).update(item_count=len(candidates))
    sync.item_count = len(candidates)
    _claim_script(sync, now)
    _enqueue_finalize(sync)
    return sync


def script_next_retry(
    company: Company | None,
    *,
    complete: int | None = None,
    fail_transaction_ids: Iterable[str | uuid.UUID] | None = None,
) -> RetryScript:
    """Script the outcomes of the next retry of `company` (None: of any company).

    Give `complete` (the first N re-pushed items complete, the rest fail
    again) or `fail_transaction_ids` (these fail again, the others complete).
    Raises ValidationError for anything else; see `validate_script`.
    """
    complete, failing = validate_script(
        company, complete=complete, fail_transaction_ids=fail_transaction_ids
    )
    return RetryScript.objects.create(
        company=company, complete=complete, fail_transaction_ids=failing
    )


def validate_script(
    company: Company | None,
    *,
    complete: object = None,
    fail_transaction_ids: object = None,
) -> tuple[int | None, list[str] | None]:
    """The script's (complete, fail_transaction_ids), checked and in canonical form.

    A transaction ID the company never pushed (for an any-company script: no
    company) is refused, since a typo would otherwise script nothing and the
    scenario would pass by luck. An ID the claiming retry does not re-push is
    simply not among its items.
    """
    if complete is not None and fail_transaction_ids is not None:
        raise ValidationError(
            "Give either how many items complete or which transactions fail again, not both."
        )
    if complete is None and fail_transaction_ids is None:
        raise ValidationError("Give how many items complete or which transactions fail again.")
    if fail_transaction_ids is None:
        if isinstance(complete, bool) or not isinstance(complete, int) or complete < 0:
            raise ValidationError(
                {"complete": f"Must be a whole number of items, 0 or more (got {complete!r})."}
            )
        return complete, None
    return None, _known_transaction_ids(company, fail_transaction_ids)


def _known_transaction_ids(company: Company | None, raw: object) -> list[str]:
    if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
        raise ValidationError({"fail_transaction_ids": "Must be a list of transaction IDs."})
    parsed: dict[uuid.UUID, None] = {}
    for value in raw:
        try:
            parsed[uuid.UUID(str(value).strip())] = None
        except ValueError:
            raise ValidationError(
                {"fail_transaction_ids": f"{str(value)[:60]!r} is not a transaction ID (a UUID)."}
            ) from None
    if not parsed:
        raise ValidationError({"fail_transaction_ids": "Name at least one transaction."})
    if len(parsed) > MAX_SCRIPTED_FAILURES:
        raise ValidationError(
            {"fail_transaction_ids": f"Name at most {MAX_SCRIPTED_FAILURES:,} transactions."}
        )
    pushed = Item.objects.filter(transaction_id__in=list(parsed))
    if company is not None:
        pushed = pushed.filter(sync__company=company)
    unknown = set(parsed) - set(pushed.values_list("transaction_id", flat=True))
    if unknown:
        owner = f"company {company.company_id}" if company is not None else "any company"
        listed = ", ".join(sorted(str(tid) for tid in unknown)[:10])
        raise ValidationError({"fail_transaction_ids": f"Not a transaction of {owner}: {listed}."})
    return [str(tid) for tid in parsed]


def _claim_script(sync: Sync, now: datetime) -> None:
    """Give a new retry sync the script it is to use, if one waits.

    The company's own scripts come before any-company ones, oldest first. The
    claim is a conditional update, so two retries started at once never share
    a script: the one that loses the race takes the next.
    """
    for scope in (Q(company_id=sync.company_id), Q(company__isnull=True)):
        waiting = RetryScript.objects.filter(scope, used_at__isnull=True).order_by("created", "pk")
        while (pk := waiting.values_list("pk", flat=True).first()) is not None:
            claimed = RetryScript.objects.filter(pk=pk, used_at__isnull=True).update(
                used_by=sync, used_at=now
            )
            if claimed == 1:
                return


def _retry_result(outcomes: list[tuple[int, str | None]]) -> int:
    failed = any(status != ItemStatus.COMPLETED for status, _ in outcomes)
    return 5130 if failed else 2000


def _scripted(
    sync: Sync, script: RetryScript, rng: random.Random
) -> tuple[int, list[tuple[int, str | None]]]:
    """The outcomes a script decided, whatever the company's standing problem."""
    if sync.item_count == 0:
        return 2040, []
    pushed = list(
        Item.objects.filter(sync_id=sync.pk)
        .order_by("position")
        .values_list("transaction_id", flat=True)
    )
    platform = sync.company.platform
    outcomes: list[tuple[int, str | None]] = [
        (ItemStatus.COMPLETED, None)
        if completes
        else (ItemStatus.PUSH_ERROR, catalogue.push_error_message(rng, platform))
        for completes in script.completions(pushed)
    ]
    return _retry_result(outcomes), outcomes


def _decide(sync: Sync, config: SandboxSettings) -> tuple[int, list[tuple[int, str | None]]]:
    company = sync.company
    rng = sync_rng(sync.sync_id, config.seed, "outcome")
    count = sync.item_count
    if sync.kind == SyncKind.RETRY:
        script = RetryScript.objects.filter(used_by_id=sync.pk).first()
        if script is not None:
            return _scripted(sync, script, rng)
    if company.failure_mode:
        return company.failure_mode, catalogue.item_outcomes(
            rng, company.platform, company.failure_mode, count
        )
    if count == 0:
        return 2040, []
    if sync.kind == SyncKind.RETRY:
        outcomes: list[tuple[int, str | None]] = []
        for _ in range(count):
            if rng.random() < config.retry_success_rate:
                outcomes.append((ItemStatus.COMPLETED, None))
            else:
                outcomes.append(
                    (ItemStatus.PUSH_ERROR, catalogue.push_error_message(rng, company.platform))
                )
        return _retry_result(outcomes), outcomes
    code = catalogue.pick_code(rng, catalogue.HEALTHY_WEIGHTS)
    return code, catalogue.item_outcomes(rng, company.platform, code, count)


def finalize_sync(sync_pk: int) -> bool:
    """Bring a sync to its terminal state and queue its webhooks. Idempotent."""
    from .webhooks import queue_deliveries

    config = SandboxSettings.load()
    with transaction.atomic():
        sync = Sync.objects.select_related("company").get(pk=sync_pk)
        if sync.finalized:
            return False
        code, outcomes = _decide(sync, config)
        rng = sync_rng(sync.sync_id, config.seed, "messages")
        error, exception = catalogue.sync_messages(rng, sync.company.platform, code)
        claimed = Sync.objects.filter(pk=sync_pk, finalized=False).update(
            finalized=True,
            finalized_at=timezone.now(),
            status_code=code,
            data_pushed=any(status == ItemStatus.COMPLETED for status, _ in outcomes)
            and code != 2040,
            error_message=error,
            exception_message=exception,
        )
        if claimed != 1:
            return False
        items = list(Item.objects.filter(sync_id=sync_pk).order_by("position"))
        for item, (status, message) in zip(items, outcomes, strict=True):
            item.status = status
            item.message = message
        Item.objects.bulk_update(items, ["status", "message"], batch_size=1000)
        sync.refresh_from_db()
        queue_deliveries(sync)
    return True


def finalize_due(now: datetime | None = None, limit: int = 500) -> int:
    """Finish every sync whose processing time has passed (catches lost tasks)."""
    now = now or timezone.now()
    due = list(
        Sync.objects.filter(finalized=False, completes_at__lte=now)
        .order_by("completes_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in due if finalize_sync(pk))
