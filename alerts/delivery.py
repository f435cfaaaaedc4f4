"""Deliveries: created from transitions (and tests), then sent by one task each.

A delivery is created once per (transition, channel), with the words it will
send rendered there and then, and its task is queued when the transaction
commits; ingest and the evaluator only ever create rows. Sending claims the
row with a conditional update (a second task, or a sweep, finds nothing to
do), sends with short timeouts, and records the outcome: delivered, retried
later with backoff, or given up. Deliveries are at least once: a receiver
drops a repeat by the webhook's ID, or the payload's transition ID.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard import metrics

from . import channels, messages
from .models import Channel, Delivery, Rule, Transition
from .vocabulary import DeliveryKind, DeliveryState

log = logging.getLogger(__name__)

FIRST_BACKOFF = timedelta(seconds=30)
LONGEST_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 12
GIVE_UP_AFTER = timedelta(hours=24)
# Longer than the longest send (apprise and httpx time out within seconds):
# a claim older than this belongs to a worker that died mid-send.
LEASE = timedelta(minutes=2)
# The sweep leaves a delivery this long to its own task before queueing it again.
SWEEP_GRACE = timedelta(seconds=60)
SWEEP_LIMIT = 200

WAITING_STATES = (DeliveryState.PENDING, DeliveryState.RETRYING)


def enqueue_for(transitions: Iterable[Transition]) -> None:
    """One delivery per (transition, enabled channel of its rule), its task queued
    on commit. Muted transitions and digest rules' transitions get none (a
    digest gathers the latter); calling it again creates nothing new."""
    channels_of: dict[int, list[Channel]] = {}
    created: list[int] = []
    for item in transitions:
        rule = item.rule
        if item.muted or rule.digest:
            continue
        if rule.pk not in channels_of:
            channels_of[rule.pk] = list(rule.channels.filter(enabled=True))
        if not channels_of[rule.pk]:
            continue
        message = messages.render(item)
        for channel in channels_of[rule.pk]:
            delivery, was_created = Delivery.objects.get_or_create(
                transition=item,
                channel=channel,
                kind=DeliveryKind.TRANSITION,
                defaults={
                    "rule": rule,
                    "title": message.title,
                    "body": message.body,
                    "payload": message.payload,
                },
            )
            if was_created:
                created.append(delivery.pk)
    for pk in created:
        transaction.on_commit(partial(_enqueue, pk))


def send_test(*, channel: Channel, user: Any) -> Delivery:
    """A test message to `channel`, sent at once (disabled channels too: a lead
    may test one before turning it on)."""
    message = messages.render_test(channel)
    key = uuid.uuid4()
    delivery = Delivery.objects.create(
        key=key,
        kind=DeliveryKind.TEST,
        channel=channel,
        title=message.title,
        body=message.body,
        payload={**message.payload, "id": str(key)},
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(partial(_enqueue, delivery.pk))
    return delivery


def create_digest(*, rule: Rule, message: messages.Message) -> list[int]:
    """One summary delivery per enabled channel of `rule`, queued on commit."""
    created = []
    for channel in rule.channels.filter(enabled=True):
        delivery = Delivery.objects.create(
            kind=DeliveryKind.DIGEST,
            channel=channel,
            rule=rule,
            title=message.title,
            body=message.body,
            payload=message.payload,
        )
        created.append(delivery.pk)
        transaction.on_commit(partial(_enqueue, delivery.pk))
    return created


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: the state it left, and when to try again if retrying."""

    state: str
    retry_at: datetime | None = None


def attempt(*, delivery_id: int, now: datetime | None = None) -> Attempt | None:
    """Claim the delivery, send it, record the outcome. None: nothing to do (not
    due, sent already, or another worker holds it)."""
    now = now or timezone.now()
    claimable = Q(state__in=WAITING_STATES, next_attempt_at__lte=now) | Q(
        state=DeliveryState.SENDING, lease_until__lte=now
    )
    claimed = Delivery.objects.filter(claimable, pk=delivery_id).update(
        state=DeliveryState.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    channel = delivery.channel
    if not channel.enabled and delivery.kind != DeliveryKind.TEST:
        return _record_failure(
            delivery, channels.DeliveryError("The channel was disabled.", permanent=True), now
        )
    message = messages.Message(delivery.title, delivery.body, delivery.payload)
    try:
        channels.send(channel, message, message_id=str(delivery.key))
    except channels.DeliveryError as exc:
        return _record_failure(delivery, exc, timezone.now())
    except Exception as exc:
        # Undecryptable secrets and surprises in a library: recorded like any
        # failure (and logged whole) so the delivery is retried, not stuck in sending.
        log.exception("alerts: delivery %s failed unexpectedly", delivery.pk)
        error = channels.DeliveryError(f"Unexpected error: {type(exc).__name__}")
        return _record_failure(delivery, error, timezone.now())
    return _record_success(delivery, timezone.now())


def due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Deliveries whose own task seems lost: due a while ago, or claimed by a
    worker whose lease ran out."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            Q(state__in=WAITING_STATES, next_attempt_at__lte=now - SWEEP_GRACE)
            | Q(state=DeliveryState.SENDING, lease_until__lte=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def backoff(attempts: int) -> timedelta:
    """30 s after the first failed attempt, doubling, at most an hour."""
    return min(LONGEST_BACKOFF, FIRST_BACKOFF * 2 ** max(0, attempts - 1))


def _record_success(delivery: Delivery, now: datetime) -> Attempt:
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.DELIVERED, delivered_at=now, lease_until=None, last_error=""
    )
    Channel.objects.filter(pk=delivery.channel_id).update(
        last_success_at=now, failing_since=None, last_error=""
    )
    metrics.ALERT_DELIVERIES.inc(kind=delivery.kind, outcome="delivered")
    return Attempt(DeliveryState.DELIVERED)


def _record_failure(delivery: Delivery, error: channels.DeliveryError, now: datetime) -> Attempt:
    gave_up = (
        error.permanent
        or delivery.attempts >= MAX_ATTEMPTS
        or now - delivery.created_at >= GIVE_UP_AFTER
    )
    retry_at = None if gave_up else now + backoff(delivery.attempts)
    state = DeliveryState.FAILED if gave_up else DeliveryState.RETRYING
    Delivery.objects.filter(pk=delivery.pk).update(
        state=state,
        next_attempt_at=retry_at or F("next_attempt_at"),
        lease_until=None,
        last_error=error.text,
    )
    Channel.objects.filter(pk=delivery.channel_id).update(
        last_failure_at=now,
        failing_since=Coalesce(F("failing_since"), now),
        last_error=error.text,
    )
    log.warning(
        "alerts: delivery %s to channel %s, attempt %s: %s (%s)",
        delivery.pk,
        delivery.channel_id,
        delivery.attempts,
        error.text,
        "gave up" if gave_up else f"retrying at {retry_at:%H:%M:%S}",
    )
    metrics.ALERT_DELIVERIES.inc(kind=delivery.kind, outcome=str(state))
    return Attempt(state, retry_at)


def _enqueue(delivery_id: int) -> None:
    from .delivery_tasks import deliver_task

    deliver_task.delay(delivery_id)
