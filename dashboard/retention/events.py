"""Retention of webhook deliveries: the stored events, bodies and all, past their time.

A stored event has two uses: the delivery ID refuses a second delivery of the
same event (senders retry for a day or two at most), and its worker reads it
once to refresh the sync it names. After that nothing reads it, and its body
(the upstream's payload, company details included) only grows the table. So
old events are deleted, not blanked: a blank row would keep an index entry
for ever and dedupe nothing.
"""

from __future__ import annotations

from datetime import datetime

from ..models import WebhookEvent


def prune(before: datetime, batch: int) -> int:
    """Delete at most `batch` events received before `before`, oldest first; returns how many."""
    pks = list(
        WebhookEvent.objects.filter(received_at__lt=before)
        .order_by("received_at")
        .values_list("pk", flat=True)[:batch]
    )
    if not pks:
        return 0
    return WebhookEvent.objects.filter(pk__in=pks).delete()[0]


def count(before: datetime) -> int:
    return WebhookEvent.objects.filter(received_at__lt=before).count()
