"""Adaptive polling: each company polled as often as its tier asks, within a share of the budget.

Webhooks are the primary signal; polling catches what they miss. Every
company has a tier and a next-due time (`Company.poll_tier`, `poll_due`,
indexed). The tier says why it is polled as often as it is, most often first:
a sync running, webhooks that seem to be missing (the gap detection of
`dashboard.health_signals`), failing recently, recent activity, idle, and
dormant (once a day, so every company is checked at least daily). Admins set
each tier's interval and polling's share in Django admin (*Polling schedule*,
`models.PollingSchedule`).

- **A tick** (beat's `dashboard.poll`, every 30 s) reads the companies due,
  most overdue first, in one indexed query bounded by what polling may still
  take this window; it moves each one's next-due time on by its tier's
  interval (so a lost task costs one interval, never a lost company) and
  queues its refresh. The credit grows with the time since the last tick, so
  ticks spread polling over the window instead of spending it at once. Now and
  then it also queues a reading of the company list, which finds new companies
  (due at once).
- **The share** is enforced where requests are made: every request of a
  poll takes a slot in a lane of the shared budget (`ratelimit.Lane`) as well
  as in the budget itself, so polling never takes more than its share of a
  window, however many companies are overdue or however many requests a
  refresh turns out to need. The rest stays for webhook refreshes, retries
  and people.
- **Backing off**: the API key's daily quota may be shared with the
  customer's own integration. As the upstream's `X-Rate-Limit-Remaining`
  falls, polling's lane shrinks to its share of what the quota left can
  sustain until it resets, and it stops altogether before the last tenth
  (where the limiter starts pacing every request).
- **After every refresh and webhook** the company's tier is worked out again
  (`retier`, two indexed probes); a change of tier reschedules it from now.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, Count, DateTimeField, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from . import health_signals
from .models import Company, PollingSchedule, Sync, WebhookGap
from .ratelimit import Lane, Limiter, get_limiter
from .vocabulary import Category, PollTier

log = logging.getLogger(__name__)

LANE = "poll"

# A process reads the schedule at most this often (a tick always reads it afresh).
SCHEDULE_CACHE_SECONDS = 10.0
_cached: tuple[float, PollingSchedule] | None = None


def schedule() -> PollingSchedule:
    """The polling schedule as of at most `SCHEDULE_CACHE_SECONDS` ago."""
    global _cached
    cached = _cached
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    current = PollingSchedule.load()
    _cached = (time.monotonic() + SCHEDULE_CACHE_SECONDS, current)
    return current


def forget_schedule() -> None:
    global _cached
    _cached = None


# --- the share ---


def allowance(plan: PollingSchedule, limiter: Limiter, *, now: float | None = None) -> int:
    """Requests polling may take in one window of the budget, as things stand.

    Its share of the window; and while the upstream reports its daily quota,
    no more than its share of what the quota left sustains until it resets,
    keeping clear of the last `pace_share` of it (the limiter's own pacing).
    """
    limits = limiter.limits
    cap = plan.share * limits.per_window
    quota = limiter.quota()
    if quota is not None:
        remaining, limit, reset_at = quota
        usable = remaining - limit * limits.pace_share
        if usable <= 0:
            return 0
        left = max((reset_at - (time.time() if now is None else now)), limits.window)
        cap = min(cap, plan.share * usable * limits.window / left)
    return max(0, math.floor(cap))


def lane(plan: PollingSchedule | None = None, limiter: Limiter | None = None) -> Lane:
    """The lane a poll's requests take their slots in."""
    return Lane(LANE, allowance(plan or schedule(), limiter or get_limiter()))


# --- tiers ---


def tier_of(company: Company, plan: PollingSchedule, now: datetime) -> PollTier:
    """Why `company` should be polled as often as it is, as the mirror stands."""
    recent = now - timedelta(hours=plan.recent_hours)
    if Sync.objects.filter(
        company=company, sync_utc__gte=recent, category=Category.IN_PROGRESS
    ).exists():
        return PollTier.RUNNING
    if (
        health_signals.expecting_webhooks()
        and WebhookGap.objects.filter(
            company=company, webhook_at__isnull=True, found_at__gte=recent
        ).exists()
    ):
        return PollTier.MISSING_WEBHOOKS
    last = company.last_sync_at
    if last is not None and last >= recent:
        return PollTier.FAILING if company.failing_streak else PollTier.RECENT
    if last is not None and last >= now - timedelta(days=plan.idle_days):
        return PollTier.IDLE
    return PollTier.DORMANT


def retier(company: Company, *, now: datetime | None = None) -> PollTier:
    """Work out the company's tier again (after a refresh or a webhook); a new tier
    reschedules its next poll from now (never later than it was, for a busier tier).
    Writes only when the tier changed."""
    now = now or timezone.now()
    plan = schedule()
    tier = tier_of(company, plan, now)
    if tier != company.poll_tier:
        due = now + plan.interval(tier)
        if plan.interval(tier) < plan.interval(company.poll_tier):
            due = min(due, company.poll_due)
        Company.objects.filter(pk=company.pk).update(poll_tier=tier, poll_due=due)
        company.poll_tier, company.poll_due = tier, due
    return tier


def defer(company_id: str | uuid.UUID, seconds: float) -> None:
    """Poll the company no sooner than `seconds` from now (the upstream asked us to wait)."""
    until = timezone.now() + timedelta(seconds=seconds)
    Company.objects.filter(company_id=company_id, poll_due__lt=until).update(poll_due=until)


def poll_failed(company_id: str | uuid.UUID, *, retryable: bool, retry_after: float | None) -> None:
    """A poll did not get through. Its next one stays a tier's interval after the claim,
    and no sooner than the upstream asked. A company not yet polled is not asked again
    every minute: after a passing failure, as often as a recently active one; after
    one that will not pass (gone upstream, refused), at the tier the mirror's rows give."""
    if retry_after:
        defer(company_id, retry_after)
    company = Company.objects.filter(company_id=company_id, poll_tier=PollTier.NEW).first()
    if company is None:
        return
    if retryable:
        defer(company_id, schedule().interval(PollTier.RECENT).total_seconds())
    else:
        retier(company)


def schedule_changed(before: PollingSchedule | None, after: PollingSchedule) -> int:
    """An admin saved the schedule: polls already scheduled further off than a shortened
    interval now allows come forward. How many companies moved."""
    forget_schedule()
    now = timezone.now()
    moved = 0
    for tier in PollTier.values:
        shorter = after.interval(tier)
        if before is not None and shorter >= before.interval(tier):
            continue
        moved += Company.objects.filter(poll_tier=tier, poll_due__gt=now + shorter).update(
            poll_due=now + shorter
        )
    return moved


# --- the tick ---


@dataclass(frozen=True)
class Tick:
    allowance: int  # requests polling may take this window
    used: int  # requests polling took in the current window
    room: int  # companies this tick could queue
    companies: list[str]  # the companies queued (their upstream IDs)
    list_companies: bool  # whether the company list is to be read again


def _credit(plan: PollingSchedule, allow: int, window: float, now: datetime) -> float:
    """Companies this tick may queue, pro rata the time since the last tick's."""
    if plan.ticked_at is None:
        return float(allow)
    elapsed = min(max((now - plan.ticked_at).total_seconds(), 0.0), window)
    return allow * elapsed / window


def tick(*, now: datetime | None = None, limiter: Limiter | None = None) -> Tick:
    """Claim the companies due, most overdue first, as many as polling may take now.

    One indexed query reads them (locked, skipping rows another tick holds);
    one update moves their next-due times on by their tiers' intervals. The
    caller queues their refreshes once this commits.
    """
    now = now or timezone.now()
    limiter = limiter or get_limiter()
    PollingSchedule.load()  # the row, made if missing, before it is locked
    forget_schedule()
    window = limiter.limits.window
    used = limiter.lane_used(LANE)
    with transaction.atomic():
        # One tick at a time: a second one waits here, then sees this one's credit spent.
        plan = PollingSchedule.objects.select_for_update().get(pk=1)
        allow = allowance(plan, limiter)
        credit = _credit(plan, allow, window, now)
        room = max(0, min(math.floor(credit), allow - used))
        list_due = plan.companies_listed_at is None or (
            plan.companies_listed_at <= now - timedelta(minutes=plan.company_list_minutes)
        )
        list_companies = list_due and room > 0
        picks = room - 1 if list_companies else room
        rows: Sequence[tuple[int, uuid.UUID, str]] = []
        if picks > 0:
            rows = list(
                Company.objects.filter(poll_due__lte=now)
                .order_by("poll_due", "id")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", "company_id", "poll_tier")[:picks]
            )
        if rows:
            Company.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
                poll_due=_next_due(plan, now)
            )
        taken = len(rows) + (1 if list_companies else 0)
        ticked = now
        if allow and taken == math.floor(credit):
            # The credit bound this tick: carry its fraction (or all of it, when under
            # one company) to the next, so frequent ticks add up to the whole share.
            ticked = now - timedelta(seconds=(credit - taken) * window / allow)
        changes: dict[str, datetime] = {"ticked_at": ticked}
        if list_companies:
            changes["companies_listed_at"] = now
        PollingSchedule.objects.filter(pk=plan.pk).update(**changes)
    return Tick(
        allowance=allow,
        used=used,
        room=room,
        companies=[str(company_id) for _, company_id, _ in rows],
        list_companies=list_companies,
    )


def _next_due(plan: PollingSchedule, now: datetime) -> Case:
    """Each company's next poll, one interval of its tier from `now`."""
    return Case(
        *(When(poll_tier=tier, then=Value(now + plan.interval(tier))) for tier in PollTier.values),
        default=Value(now + plan.interval(PollTier.DORMANT)),
        output_field=DateTimeField(),
    )


def refreshed_by_reconciliation(company_pks: Sequence[int], *, now: datetime | None = None) -> int:
    """Companies a full reconciliation has just queued refreshes for: their next poll is
    at least one interval of their tier away, as after a tick, so polling does not queue
    them again before those refreshes have run (`make run` reconciles at start, when beat
    first ticks). A poll already due later stays where it is."""
    if not company_pks:
        return 0
    now = now or timezone.now()
    return Company.objects.filter(pk__in=company_pks).update(
        poll_due=Greatest("poll_due", _next_due(schedule(), now))
    )


# --- what admins see ---


@dataclass(frozen=True)
class Overview:
    allowance: int
    per_window: int
    window: float
    used: int
    quota: tuple[int, int] | None
    tiers: list[tuple[str, int, int]]  # (tier label, companies, interval minutes)
    overdue: int


def overview(plan: PollingSchedule) -> Overview:
    """Polling as it stands: its allowance and use this window, and the companies per tier."""
    limiter = get_limiter()
    counts = dict(
        Company.objects.order_by()
        .values("poll_tier")
        .annotate(n=Count("pk"))
        .values_list("poll_tier", "n")
    )
    quota = limiter.quota()
    return Overview(
        allowance=allowance(plan, limiter),
        per_window=limiter.limits.per_window,
        window=limiter.limits.window,
        used=limiter.lane_used(LANE),
        quota=(quota[0], quota[1]) if quota else None,
        tiers=[
            (label, counts.get(tier, 0), int(plan.interval(tier).total_seconds() // 60))
            for tier, label in PollTier.choices
        ],
        overdue=Company.objects.filter(poll_due__lte=timezone.now()).count(),
    )
