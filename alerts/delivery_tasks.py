"""Celery tasks that send alerts: thin, each calling one service.

Registered through `CELERY_IMPORTS` (settings): autodiscovery finds only an
app's `tasks` module, and this one is apart so that sending and evaluating
can change without touching each other.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from synchealth.celery import capped_countdown

from . import delivery, digests


@shared_task(name="alerts.deliver")
def deliver_task(delivery_id: int) -> str | None:
    """Send one delivery; on a failure, come back when its retry is due.

    A countdown capped below the broker's visibility timeout may wake early:
    the task then finds the delivery not yet due and does nothing, and the
    sweep (`alerts.deliver_due`) queues it again once it is.
    """
    outcome = delivery.attempt(delivery_id=delivery_id)
    if outcome is None:
        return None
    if outcome.retry_at is not None:
        wait = (outcome.retry_at - timezone.now()).total_seconds()
        deliver_task.apply_async((delivery_id,), countdown=capped_countdown(wait))
    return str(outcome.state)


@shared_task(name="alerts.deliver_due")
def deliver_due_task() -> int:
    """Beat's sweep: queue deliveries whose task was lost or whose worker died."""
    found = delivery.due()
    for delivery_id in found:
        deliver_task.delay(delivery_id)
    return len(found)


@shared_task(name="alerts.send_digests")
def send_digests_task() -> int:
    return digests.send_digests()
