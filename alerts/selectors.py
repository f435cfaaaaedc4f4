"""The reads the alerts pages and the dashboard run: each bounded, each cheap.

AlertState holds rows only for subjects that are (or were lately) not OK, and
channels and rules are a team's handful, so the overview reads small tables;
the transition and delivery logs are read a page at a time, newest first, by
keyset on the primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from django.db.models import Count, Q, QuerySet

from .models import AlertState, Channel, Delivery, Mute, Rule, Transition
from .vocabulary import SubjectState

# A channel failing for longer than this shows on the dashboard.
FAILING_BANNER_AFTER = timedelta(minutes=15)
FIRING_LIMIT = 100
TRANSITIONS_LIMIT = 25
DELIVERIES_LIMIT = 50
RULE_STATES_LIMIT = 200
FIRING = (SubjectState.FIRING, SubjectState.RECOVERING)


def failing_channels(now: datetime) -> list[Channel]:
    """Enabled channels whose deliveries have failed, without a success since, for a while."""
    return list(
        Channel.objects.filter(enabled=True, failing_since__lte=now - FAILING_BANNER_AFTER)
        .only("pk", "name", "failing_since")
        .order_by("failing_since", "pk")[:5]
    )


def firing_count() -> int:
    """Subjects of enabled rules that are firing now (recovering ones have not recovered yet)."""
    return AlertState.objects.filter(state__in=FIRING, rule__enabled=True).count()


def firing_now() -> list[AlertState]:
    return list(
        AlertState.objects.filter(state__in=FIRING)
        .select_related("rule")
        .order_by("-since", "-pk")[:FIRING_LIMIT]
    )


def recent_transitions(limit: int = TRANSITIONS_LIMIT) -> list[Transition]:
    return list(Transition.objects.select_related("rule").order_by("-pk")[:limit])


def rules() -> QuerySet[Rule]:
    # Scope is shown as a count: a rule may name hundreds of companies.
    return (
        Rule.objects.prefetch_related("channels")
        .annotate(company_count=Count("companies", distinct=True))
        .order_by("name", "pk")
    )


def active_mutes(now: datetime, *, rule: Rule | None = None) -> list[Mute]:
    mutes = Mute.objects.filter(Q(until__isnull=True) | Q(until__gt=now))
    if rule is not None:
        mutes = mutes.filter(rule=rule)
    return list(
        mutes.select_related("rule", "company", "problem", "created_by").order_by("-pk")[:200]
    )


def rule_states(rule: Rule) -> list[AlertState]:
    return list(rule.states.order_by("-since", "-pk")[:RULE_STATES_LIMIT])


T = TypeVar("T", Transition, Delivery)


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_before: int | None


def rule_transitions(rule: Rule, *, before: int | None) -> Page[Transition]:
    """A page of the rule's transitions, newest first; `before` is the last one seen."""
    rows = rule.transitions.order_by("-pk")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return _page(list(rows[: TRANSITIONS_LIMIT + 1]), TRANSITIONS_LIMIT)


@dataclass(frozen=True)
class DeliveryFilter:
    state: str = ""
    channel_id: int | None = None
    delivery_id: int | None = None
    before: int | None = None


def deliveries(filters: DeliveryFilter) -> Page[Delivery]:
    rows = Delivery.objects.select_related("channel", "rule", "transition").order_by("-pk")
    if filters.delivery_id is not None:
        rows = rows.filter(pk=filters.delivery_id)
    if filters.state:
        rows = rows.filter(state=filters.state)
    if filters.channel_id is not None:
        rows = rows.filter(channel_id=filters.channel_id)
    if filters.before is not None:
        rows = rows.filter(pk__lt=filters.before)
    # The payload and body can be large; the log shows neither.
    rows = rows.defer("payload", "body", "transition__detail")
    return _page(list(rows[: DELIVERIES_LIMIT + 1]), DELIVERIES_LIMIT)


def _page(rows: list[T], limit: int) -> Page[T]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)
