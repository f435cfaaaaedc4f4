"""Digest rules: their changes gathered into one summary an hour or a day.

Beat asks every few minutes; a rule whose period has passed since its last
summary is claimed by moving its `last_digest_at` with a conditional update,
so two ticks running together send one summary, not two. The claim, the
marking of the transitions it carries and the deliveries are one transaction:
a crash in between leaves everything as it was for the next tick.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import delivery, messages
from .models import Rule
from .vocabulary import Digest

PERIODS = {Digest.HOURLY: timedelta(hours=1), Digest.DAILY: timedelta(days=1)}


def send_digests(*, now: datetime | None = None) -> int:
    """Summaries created now (one per rule, whatever its channels)."""
    now = now or timezone.now()
    sent = 0
    for rule in Rule.objects.filter(enabled=True, digest__in=list(PERIODS)):
        last = rule.last_digest_at
        if last is not None and now - last < PERIODS[Digest(rule.digest)]:
            continue
        sent += _summarise(rule, last, now)
    return sent


@transaction.atomic
def _summarise(rule: Rule, last: datetime | None, now: datetime) -> int:
    claimed = Rule.objects.filter(pk=rule.pk, last_digest_at=last).update(last_digest_at=now)
    if not claimed:
        return 0  # another tick took this period
    waiting = rule.transitions.filter(muted=False, digested_at__isnull=True, at__lte=now)
    shown = list(waiting.order_by("at", "pk")[: messages.DIGEST_LINES])
    if not shown:
        return 0
    total = waiting.update(digested_at=now)
    delivery.create_digest(rule=rule, message=messages.render_digest(rule, shown, total=total))
    return 1
