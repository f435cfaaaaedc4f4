"""Celery tasks: thin, idempotent, acknowledged late (see settings).

Each takes IDs, opens an upstream client and calls one service in
`dashboard.ingest`. A rate-limit wait longer than a task should sleep is
recorded as the company's "paused until" (by the service) and the task is
rescheduled for then; other transient errors are retried with backoff.
"""

from __future__ import annotations

import logging
import random
from functools import partial
from typing import Any, NoReturn

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction

from synchealth.celery import capped_countdown

from . import health_signals, ingest, polling, rankings, retention, rollup, webhooks
from .upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

MAX_RETRIES = 8


def _retry_later(task: Task, exc: Exception) -> NoReturn:
    """Reschedule a task after a transient failure, or give up.

    An UpstreamError says whether retrying can help; anything else (Redis,
    the database) is taken to be passing. The countdown never outlasts the
    broker's visibility timeout (`capped_countdown`).
    """
    retryable = exc.retryable if isinstance(exc, UpstreamError) else True
    if not retryable or task.request.retries >= MAX_RETRIES:
        raise exc
    backoff = min(600, 5 * 2**task.request.retries) * random.uniform(0.5, 1.5)
    retry_after = exc.retry_after if isinstance(exc, UpstreamError) else None
    raise task.retry(exc=exc, countdown=capped_countdown(max(retry_after or 0, backoff)))


@shared_task(name="dashboard.reconcile")
def reconcile_task() -> int:
    """A full reconciliation: refresh the company list, fan out one task per company.

    Beat polls by priority instead (`dashboard.poll`); this is the full refresh
    by hand (`manage.py refresh --all --enqueue`), outside polling's share.
    """
    with Upstream() as client:
        companies, paused = ingest.companies_to_refresh(client)
    for company in companies:
        refresh_company_task.delay(str(company.company_id))
    polling.refreshed_by_reconciliation([company.pk for company in companies])
    log.info("reconcile: %s companies queued, %s paused", len(companies), paused)
    return len(companies)


@shared_task(name="dashboard.poll")
def poll_task() -> int:
    """Beat's tick of adaptive polling: queue the companies due, within polling's share."""
    tick = polling.tick()
    if tick.list_companies:
        transaction.on_commit(poll_company_list_task.delay)
    for company_id in tick.companies:
        poll_company_task.delay(company_id)
    if tick.companies or tick.list_companies:
        log.info(
            "poll: %s companies queued (%s of %s requests used this window)",
            len(tick.companies),
            tick.used,
            tick.allowance,
        )
    return len(tick.companies)


@shared_task(name="dashboard.poll_company")
def poll_company_task(company_id: str) -> dict[str, Any]:
    """One company's poll: its refresh, every request in polling's lane of the budget.

    Not retried: should the upstream or the budget ask us to wait, the company
    is due again once the wait is over, and the next tick picks it up.
    """
    with Upstream(lane=polling.lane()) as client:
        try:
            company = ingest.ensure_company(client, company_id)
            stats = ingest.refresh_company(client, company)
        except ingest.CompanyPurged:
            return {"syncs": 0, "items": 0, "requests": client.requests_made}
        except UpstreamError as exc:
            polling.poll_failed(company_id, retryable=exc.retryable, retry_after=exc.retry_after)
            log.info("poll of %s: %s", company_id, exc)
            return {"error": str(exc)[:200], "requests": client.requests_made}
        return {
            "syncs": stats.syncs_written,
            "items": stats.items_written,
            "requests": client.requests_made,
        }


@shared_task(name="dashboard.poll_company_list")
def poll_company_list_task() -> int:
    """Read the company list again, in polling's lane: new companies are due at once."""
    with Upstream(lane=polling.lane()) as client:
        try:
            return len(ingest.refresh_companies(client))
        except UpstreamError as exc:
            log.info("polling's reading of the company list: %s", exc)
            return 0


@shared_task(name="dashboard.refresh_company", bind=True, max_retries=MAX_RETRIES)
def refresh_company_task(self: Task, company_id: str, force: bool = False) -> dict[str, Any]:
    with Upstream() as client:
        try:
            company = ingest.ensure_company(client, company_id)
            stats = ingest.refresh_company(client, company, force=force)
        except ingest.CompanyPurged:
            log.info("refresh of %s: its data was purged; not mirrored", company_id)
            return {"syncs": 0, "items": 0, "requests": client.requests_made}
        except UpstreamError as exc:
            _retry_later(self, exc)
        return {
            "syncs": stats.syncs_written,
            "items": stats.items_written,
            "requests": client.requests_made,
        }


@shared_task(name="dashboard.process_webhook_event", bind=True, max_retries=MAX_RETRIES)
def process_webhook_event_task(self: Task, event_pk: int) -> bool:
    """Refresh the one sync a webhook names; safe to run twice."""
    event = webhooks.event_to_process(event_pk)
    if event is None:  # gone, done already, or names no sync: no client needed
        return False
    with Upstream() as client:
        try:
            return webhooks.process_event(
                client, event, last_try=self.request.retries >= MAX_RETRIES
            )
        except UpstreamError as exc:
            _retry_later(self, exc)


@shared_task(name="dashboard.process_pending_webhooks")
def process_pending_webhooks_task(older_than_s: int = 60, limit: int = 500) -> int:
    """Re-queue stored events whose processing task was lost (e.g. broker down)."""
    pending = webhooks.lost_events(older_than_s=older_than_s, limit=limit, max_attempts=MAX_RETRIES)
    for pk in pending:
        process_webhook_event_task.delay(pk)
    return len(pending)


@shared_task(name="dashboard.settle_webhook_gaps")
def settle_webhook_gaps_task() -> dict[str, int]:
    """Count as missed the syncs found without a webhook whose grace has passed; forget
    old ones. Beat runs it every minute."""
    return {"missed": health_signals.settle(), "forgotten": health_signals.prune()}


@shared_task(name="dashboard.run_retry", bind=True, max_retries=MAX_RETRIES)
def run_retry_task(self: Task, request_pk: int) -> str:
    """Submit one retry request; a second delivery finds it claimed and does nothing.

    The request counts its attempts and ends failed past its bound: a wait it
    asks for (TryAgain) has recorded why and until when. Any other error came
    before the request could record anything (the database down at the
    claim), and is retried like an upstream error. Should the task give up,
    the follow-up task sends the request again once its lease has passed.
    """
    from . import retry

    try:
        with Upstream() as client:
            request = retry.execute(client, request_pk)
    except retry.TryAgain as again:
        raise self.retry(exc=again, countdown=again.countdown) from again
    except Exception as exc:
        _retry_later(self, exc)
    if request is None:
        # Held by another worker, or by one that died mid-attempt (a child
        # killed during the POST, redelivered at once): look again when its
        # lease ends, without waiting for the follow-up task.
        left = retry.lease_left(request_pk)
        if left is not None:
            run_retry_task.apply_async((request_pk,), countdown=capped_countdown(left + 1))
        return "not claimed"
    return request.state


@shared_task(name="dashboard.follow_retries")
def follow_retries_task(limit: int = 200) -> int:
    """Poll the new syncs of submitted retries (webhooks usually settle them first).

    Then send again the requests no task is working on: their worker died, or
    their task was lost (broker down, a message dropped with its worker).
    """
    from . import retry

    with Upstream() as client:
        settled = retry.follow_submitted(client, limit=limit)
    for pk in retry.lost_requests(limit=limit):
        run_retry_task.delay(pk)
    follow_bulk_retries(limit=limit)
    return settled


def follow_bulk_retries(*, limit: int) -> None:
    """Fan out again the bulk retries whose fan-out was lost; delete stale previews."""
    from . import bulk_retry

    for pk in bulk_retry.stalled_fan_outs(limit=limit):
        fan_out_bulk_task.delay(pk)
    bulk_retry.sweep_drafts()


@shared_task(name="dashboard.fan_out_bulk")
def fan_out_bulk_task(bulk_pk: int) -> dict[str, int]:
    """Make a confirmed bulk retry's requests, for exactly the syncs it froze."""
    from . import bulk_retry

    return bulk_retry.fan_out(bulk_pk)


@shared_task(name="dashboard.refresh_rollup")
def refresh_rollup_task() -> int:
    """Rebuild the dashboard's hourly rollup where syncs changed; beat runs it every minute."""
    return rollup.refresh()


@shared_task(name="dashboard.refresh_rankings")
def refresh_rankings_task() -> int:
    """Recount the dashboard's rankings for each preset range; beat runs it every minute."""
    return rankings.refresh()


# A purge task's share of the time limit; past it, the task queues itself again.
PURGE_TASK_SECONDS = 300


@shared_task(name="dashboard.apply_retention")
def apply_retention_task() -> dict[str, int]:
    """Remove what the retention policy no longer keeps, for a bounded time; beat runs it hourly.

    Then queue again the company purges whose worker died.
    """
    # A batch ends inside the task's soft time limit, whatever the setting says.
    budget = min(settings.RETENTION_RUN_SECONDS, settings.CELERY_TASK_SOFT_TIME_LIMIT - 120)
    outcomes = retention.run(max_seconds=max(1, budget))
    for pk in retention.purge.resume():
        purge_company_task.delay(pk)
    return {
        f"{outcome.step}: {kind}": n for outcome in outcomes for kind, n in outcome.counts.items()
    }


@shared_task(name="dashboard.purge_company")
def purge_company_task(record_pk: int) -> dict[str, int] | None:
    """Erase one company's mirrored data (its purge record says which); safe to run twice."""
    record = retention.purge.purge(record_pk, max_seconds=PURGE_TASK_SECONDS)
    if record is None:
        return None
    if record.finished_at is None:
        purge_company_task.delay(record_pk)
    return dict(record.removed)


@shared_task(name="dashboard.problems_upkeep")
def problems_upkeep_task() -> dict[str, int]:
    """End the snoozes whose date has passed, finish moving merged problems' rows, and
    repair companies' open-problem counts that a stopped process left behind."""
    from .problems import lifecycle, upkeep

    return {
        "woken": lifecycle.wake_due(),
        "companies_moved": lifecycle.sweep_merged(),
        "open_counts_repaired": upkeep.reconcile_open(),
    }


def enqueue_refresh(company_id: str) -> None:
    """Queue a company refresh once the current transaction commits."""
    transaction.on_commit(partial(refresh_company_task.delay, company_id))
