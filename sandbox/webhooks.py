"""Signed webhooks from the sandbox, in Codat's current or legacy format.

Signed with the Standard Webhooks scheme that Codat uses through Svix, sent
from a Celery task (never inside the request that changed the sync), retried
with backoff until the consumer answers 2xx: delivery is at least once.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from datetime import datetime, timedelta
from functools import partial

import httpx
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from svix.webhooks import Webhook

from synchealth.celery import capped_countdown

from . import catalogue
from .bodies import iso
from .models import Item, ItemStatus, SandboxSettings, Sync, WebhookConsumer, WebhookDelivery

log = logging.getLogger(__name__)

# Seconds before each further attempt: a compressed version of Svix's schedule.
RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 3 * 3600)
# How long a delivery being sent is hidden from the sweep.
LEASE = timedelta(seconds=60)
CLIENT_ID = "30e0f9d2-52c0-4c9f-a806-bcd98a3bcd7e"
CLIENT_NAME = "Sync Health sandbox"

_WEBHOOK_STATUS = {
    ItemStatus.UNKNOWN: "Unknown",
    ItemStatus.PENDING: "Pending",
    ItemStatus.VALIDATION_ERROR: "Failed",
    ItemStatus.COMPLETED: "Completed",
    ItemStatus.PUSH_ERROR: "PushError",
}


def new_secret() -> str:
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def event_body(consumer: WebhookConsumer, sync: Sync, now: datetime) -> tuple[str, dict]:
    successful = sync.status_code not in catalogue.FAILED_CODES
    company = sync.company
    if consumer.event_format == WebhookConsumer.Format.LEGACY:
        event_type = "SyncCompleted" if successful else "SyncFailed"
        data: dict = {"syncId": str(sync.sync_id), "syncType": "Expense"}
        if successful:
            message = (
                f"Sync {sync.sync_id} for company {company.company_id} of type Expense "
                "completed successfully."
            )
        else:
            data["FailureStage"] = "Pushing"
            message = (
                f"Sync {sync.sync_id} for company {company.company_id} of type Expense has "
                "failed at step Pushing."
            )
        return event_type, {
            "ClientId": CLIENT_ID,
            "ClientName": CLIENT_NAME,
            "CompanyId": str(company.company_id),
            "RuleId": str(uuid.uuid4()),
            "RuleType": "Sync Completed" if successful else "Sync Failed",
            "AlertId": str(uuid.uuid4()),
            "Message": message,
            "Data": data,
        }
    event_type = "expenses.sync.successful" if successful else "expenses.sync.unsuccessful"
    transactions = [
        {
            "id": str(tid),
            "status": _WEBHOOK_STATUS[ItemStatus(status)],
            "errorMessage": message,
        }
        for tid, status, message in Item.objects.filter(sync=sync)
        .order_by("position")
        .values_list("transaction_id", "status", "message")
        .iterator(chunk_size=2000)
    ]
    return event_type, {
        "id": str(uuid.uuid4()),
        "eventType": event_type,
        "generatedDate": iso(now),
        "payload": {
            "referenceCompany": {
                "id": str(company.company_id),
                "name": company.name,
                "description": company.description,
                "links": {"portal": f"https://app.codat.io/companies/{company.company_id}/summary"},
                "tags": {},
            },
            "syncId": str(sync.sync_id),
            "transactions": transactions,
        },
    }


def queue_deliveries(sync: Sync) -> list[WebhookDelivery]:
    """Create one delivery per enabled consumer and send them after commit."""
    config = SandboxSettings.load()
    now = timezone.now()
    deliveries = []
    for consumer in WebhookConsumer.objects.filter(enabled=True):
        event_type, body = event_body(consumer, sync, now)
        delivery, created = WebhookDelivery.objects.get_or_create(
            consumer=consumer,
            sync=sync,
            defaults={
                "msg_id": f"msg_{uuid.uuid4().hex}",
                "event_type": event_type,
                "body": json.dumps(body, separators=(",", ":")),
                # Only the sweep reads this: a delivery whose first task
                # was lost is picked up after this grace period.
                "next_attempt_at": now + LEASE,
            },
        )
        if created:
            deliveries.append(delivery)
    rng = random.Random()
    for delivery in deliveries:
        delay = rng.uniform(0, 5) if config.out_of_order_webhooks else 0.0
        transaction.on_commit(partial(_send_later, delivery.pk, delay))
    return deliveries


def _send_later(delivery_pk: int, delay: float) -> None:
    from .tasks import deliver_webhook_task

    deliver_webhook_task.apply_async(args=(delivery_pk,), countdown=capped_countdown(delay))


def signed_headers(consumer: WebhookConsumer, msg_id: str, body: str, now: datetime) -> dict:
    signature = Webhook(consumer.secret).sign(msg_id, now, body)
    timestamp = str(int(now.timestamp()))
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
        "svix-id": msg_id,
        "svix-timestamp": timestamp,
        "svix-signature": signature,
        "user-agent": "Svix-Webhooks/1.0 (sandbox)",
    }


def dropped(delivery: WebhookDelivery, config: SandboxSettings) -> bool:
    """Whether the delivery is lost on the way (`webhook_drop_rate`); the seed decides."""
    if config.webhook_drop_rate <= 0:
        return False
    from .services import sync_rng

    rng = sync_rng(delivery.sync.sync_id, config.seed, f"drop:{delivery.consumer_id}")
    return rng.random() < config.webhook_drop_rate


def attempt_delivery(delivery_pk: int, client: httpx.Client | None = None) -> float | None:
    """POST one delivery. Returns seconds until the next attempt, or None when done."""
    delivery = WebhookDelivery.objects.select_related("consumer", "sync").get(pk=delivery_pk)
    if delivery.delivered_at or delivery.failed or delivery.dropped:
        return None
    config = SandboxSettings.load()
    if delivery.attempts == 0 and dropped(delivery, config):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(dropped=True, next_attempt_at=None)
        return None
    sends = 2 if random.random() < config.duplicate_webhook_rate else 1
    owned = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
    status: int | None = None
    error = ""
    try:
        for _ in range(sends):
            now = timezone.now()
            headers = signed_headers(delivery.consumer, delivery.msg_id, delivery.body, now)
            try:
                response = client.post(
                    delivery.consumer.url, content=delivery.body, headers=headers
                )
                status = response.status_code
                error = "" if response.is_success else response.text[:500]
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"[:500]
            WebhookDelivery.objects.filter(pk=delivery.pk).update(sends=F("sends") + 1)
    finally:
        if owned:
            client.close()
    attempts = delivery.attempts + 1
    if status is not None and 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts,
            delivered_at=timezone.now(),
            last_status_code=status,
            last_error="",
            next_attempt_at=None,
        )
        return None
    if attempts > len(RETRY_SCHEDULE):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts,
            failed=True,
            last_status_code=status,
            last_error=error,
            next_attempt_at=None,
        )
        log.warning("webhook %s given up after %s attempts", delivery.msg_id, attempts)
        return None
    wait = RETRY_SCHEDULE[attempts - 1] * random.uniform(0.8, 1.2)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts,
        last_status_code=status,
        last_error=error,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
    )
    return wait


def redeliver_due(limit: int = 200) -> int:
    """Re-send deliveries whose next attempt is due (catches lost tasks)."""
    from .tasks import deliver_webhook_task

    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            delivered_at__isnull=True, failed=False, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    sent = 0
    for pk, due_at in due:
        # Claim with a lease so that two sweeps never send the same attempt.
        if WebhookDelivery.objects.filter(pk=pk, next_attempt_at=due_at).update(
            next_attempt_at=now + LEASE
        ):
            deliver_webhook_task.delay(pk)
            sent += 1
    return sent
