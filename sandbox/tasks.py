"""Celery tasks of the sandbox: thin wrappers around services and webhooks."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import retention, services, webhooks


@shared_task(name="sandbox.finalize_sync")
def finalize_sync_task(sync_pk: int) -> bool:
    return services.finalize_sync(sync_pk)


@shared_task(name="sandbox.finalize_due")
def finalize_due_task() -> int:
    return services.finalize_due() if settings.SANDBOX_ENABLED else 0


@shared_task(name="sandbox.deliver_webhook")
def deliver_webhook_task(delivery_pk: int) -> None:
    # A failed attempt records when the next one is due; `redeliver_due`,
    # run by beat every few seconds, sends it then.
    webhooks.attempt_delivery(delivery_pk)


@shared_task(name="sandbox.redeliver_due")
def redeliver_due_task() -> int:
    return webhooks.redeliver_due() if settings.SANDBOX_ENABLED else 0


@shared_task(name="sandbox.prune_request_log")
def prune_request_log_task() -> int:
    return retention.apply_retention()
