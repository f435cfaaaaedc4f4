"""Webhook gap detection: syncs that polling found finished whose webhook never came.

The definition, which the pages, `/metrics` and the "webhooks not arriving"
alert share, and adaptive polling leans on (`dashboard.polling`: a company with a
sync found without its webhook is polled more often):

- Webhooks are expected only while the receiver is configured
  (`CODAT_WEBHOOK_SECRET`), and not for a company's first successful refresh
  (its import: those syncs ended before anyone listened).
- A poll of a company (not the refresh a webhook asks for) that finds a sync
  finished which the mirror did not know finished (new, or last seen
  running), with no webhook received about it, records a gap. Its
  best-known end is the latest moment it is known not to have ended: its
  start (`syncUtc`) if first seen finished, else when the mirror first saw
  it running. The upstream gives no end time.
- The gap is due `WEBHOOK_GAP_GRACE_SECONDS` after that end, or when found if
  later: until then its webhook may still be on its way.
- Due and still no webhook: **missed**, from its due time. The poll that
  found it counts it if it is due already, else the sweep (`settle`, every
  minute) does; a conditional update claims each once, so the counter
  (`synchealth_webhooks_missed_total`) counts each once.
- A webhook arriving after that makes it **late**, no longer missed; one
  arriving before it was due makes it no gap at all.

Gaps are kept a week (`KEEP`): the pages look back a day, the alert an hour.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from alerts.triggers import WEBHOOKS

from .. import metrics
from ..models import Company, Sync, WebhookEvent, WebhookGap
from . import announce

KEEP = timedelta(days=7)


def expecting_webhooks() -> bool:
    """Whether our receiver is configured, so every finished sync should be announced."""
    return bool(settings.CODAT_WEBHOOK_SECRET)


def _finished_by_this_poll(row: Sync) -> bool:
    # `upsert_syncs` stamps the rows it writes with one time (`last_refreshed`):
    # a row first seen then, or completed then, was found finished by this poll.
    found = row.last_refreshed
    return row.is_terminal and found in (row.first_seen, row.completed_at)


def note_polled(*, company: Company, written: Iterable[Sync], first_refresh: bool) -> int:
    """Record the gaps among the syncs a poll of `company` wrote; how many are missed now."""
    if first_refresh or not expecting_webhooks():
        return 0
    finished = [row for row in written if _finished_by_this_poll(row)]
    if not finished:
        return 0
    heard = set(
        WebhookEvent.objects.filter(sync_id__in=[row.sync_id for row in finished]).values_list(
            "sync_id", flat=True
        )
    )
    grace = timedelta(seconds=settings.WEBHOOK_GAP_GRACE_SECONDS)
    gaps = []
    for row in finished:
        if row.sync_id in heard:
            continue
        found = row.last_refreshed
        ended = row.sync_utc if row.first_seen == found else max(row.sync_utc, row.first_seen)
        gaps.append(
            WebhookGap(
                sync_id=row.sync_id,
                company=company,
                ended_at=ended,
                found_at=found,
                due_at=max(found, ended + grace),
            )
        )
    if not gaps:
        return 0
    WebhookGap.objects.bulk_create(gaps, ignore_conflicts=True)
    return settle(now=max(gap.found_at for gap in gaps), sync_ids=[gap.sync_id for gap in gaps])


def settle(
    *, now: datetime | None = None, sync_ids: list[uuid.UUID] | None = None, limit: int = 1000
) -> int:
    """Count as missed the gaps now due whose webhook has not come (of `sync_ids`, or any);
    how many. The beat's sweep, and the poll that found them."""
    now = now or timezone.now()
    due = WebhookGap.objects.filter(
        missed_at__isnull=True, webhook_at__isnull=True, due_at__lte=now
    )
    if sync_ids is not None:
        due = due.filter(sync_id__in=sync_ids)
    candidates = list(due.order_by("due_at").values_list("sync_id", flat=True)[:limit])
    if not candidates:
        return 0
    # A webhook stored since the poll looked (its processing may not have run yet).
    heard = {
        sync_id: first
        for sync_id, first in WebhookEvent.objects.filter(sync_id__in=candidates)
        .order_by()
        .values("sync_id")
        .annotate(first=Min("received_at"))
        .values_list("sync_id", "first")
        if sync_id is not None
    }
    for sync_id, received_at in heard.items():
        webhook_heard(sync_id=sync_id, received_at=received_at, tell=False)
    missed = WebhookGap.objects.filter(
        sync_id__in=[s for s in candidates if s not in heard],
        missed_at__isnull=True,
        webhook_at__isnull=True,
    ).update(missed_at=F("due_at"))
    if missed:
        metrics.WEBHOOKS_MISSED.inc(missed)
        announce.changed(WEBHOOKS)
    return missed


def webhook_heard(*, sync_id: uuid.UUID, received_at: datetime, tell: bool = True) -> bool:
    """A webhook about `sync_id` arrived: a gap of it is late, or none. Whether there was one."""
    if not WebhookGap.objects.filter(sync_id=sync_id, webhook_at__isnull=True).update(
        webhook_at=received_at
    ):
        return False
    if tell:
        announce.changed(WEBHOOKS)
    return True


def prune(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Forget gaps found more than `KEEP` ago, a bounded batch at a time."""
    cutoff = (now or timezone.now()) - KEEP
    old = list(WebhookGap.objects.filter(found_at__lt=cutoff).values_list("pk", flat=True)[:limit])
    return WebhookGap.objects.filter(pk__in=old).delete()[0] if old else 0


# --- reading ---


@dataclass(frozen=True)
class CompanyGaps:
    company_id: uuid.UUID
    name: str
    missed: int


@dataclass(frozen=True)
class MissedWebhooks:
    """Missed webhooks since a time: overall, and the companies with the most."""

    since: datetime
    missed: int
    late: int
    companies: int  # how many companies missed any
    most: list[CompanyGaps]  # the companies with the most, most first


def missed_webhooks(
    since: datetime,
    *,
    limit: int = 10,
    companies: Sequence[int] = (),
    platforms: Sequence[str] = (),
) -> MissedWebhooks:
    """The webhooks missed since `since` (late ones apart), of these companies' and
    platforms' (none named: all). One query, two when any were missed."""
    window = WebhookGap.objects.filter(missed_at__gte=since)
    if companies:
        window = window.filter(company__in=companies)
    if platforms:
        window = window.filter(company__platform_name__in=platforms)
    totals = window.aggregate(
        missed=Count("pk", filter=Q(webhook_at__isnull=True)),
        late=Count("pk", filter=Q(webhook_at__isnull=False)),
        companies=Count("company", filter=Q(webhook_at__isnull=True), distinct=True),
    )
    most: list[CompanyGaps] = []
    if totals["missed"]:
        most = [
            CompanyGaps(company_id, name, n)
            for company_id, name, n in window.filter(webhook_at__isnull=True)
            .values("company")
            .annotate(n=Count("pk"))
            .order_by("-n", "company")
            .values_list("company__company_id", "company__name", "n")[:limit]
        ]
    return MissedWebhooks(since, totals["missed"], totals["late"], totals["companies"], most)


class Tally(NamedTuple):
    missed: int
    late: int


def company_missed_webhooks(company: Company, since: datetime) -> Tally:
    """One company's missed (and late) webhooks since `since`."""
    totals = WebhookGap.objects.filter(company=company, missed_at__gte=since).aggregate(
        missed=Count("pk", filter=Q(webhook_at__isnull=True)),
        late=Count("pk", filter=Q(webhook_at__isnull=False)),
    )
    return Tally(totals["missed"], totals["late"])
