"""The text `/metrics` serves: the stored totals, and gauges read at scrape time.

Each source is read on its own: one that fails (the broker down, Redis away)
leaves its metrics out of this scrape and says so in
`synchealth_metrics_source_up`, and the others are still served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from . import catalogue as c
from .series import Counter, Gauge, Histogram, bucket_label, decode_labels, recorder
from .stores import get_store

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render() -> bytes:
    """Every metric, in Prometheus's text format; this process's own counts written first."""
    recorder.flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(generate_latest(registry))


class _Collector:
    def collect(self) -> Iterator[Metric]:
        sources: dict[str, Callable[[], Iterable[Metric]]] = {
            "store": stored,
            "database": database,
            "broker": broker,
            "budget": budget,
        }
        up = GaugeMetricFamily(c.SOURCE_UP.name, c.SOURCE_UP.documentation, labels=["source"])
        for source, read in sources.items():
            try:
                families = list(read())
            except Exception:
                log.warning("metrics: could not read the %s", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up


def _gauge(gauge: Gauge, value: float | None = None) -> GaugeMetricFamily:
    """A gauge family; with `value`, its one (label-free) sample."""
    family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=list(gauge.labelnames))
    if value is not None:
        family.add_metric([], value)
    return family


# --- counted in every process, added up in the store ---


def stored() -> Iterator[Metric]:
    counted = [m for m in c.CATALOGUE if isinstance(m, Counter | Histogram)]
    totals = get_store().totals(name for m in counted for name in m.stored_names)
    for metric in counted:
        if isinstance(metric, Counter):
            yield _counter(metric, totals)
        else:
            yield _histogram(metric, totals)


def _series(
    labelnames: tuple[str, ...], rows: dict[str, float], extra: str = ""
) -> Iterator[tuple[dict[str, str], float]]:
    """Each stored series with exactly these labels (and `extra`); others are left out."""
    expected = {*labelnames, extra} - {""}
    for text, value in sorted(rows.items()):
        labels = decode_labels(text)
        if labels is not None and set(labels) == expected:
            yield labels, value


def _counter(counter: Counter, totals: dict[str, dict[str, float]]) -> CounterMetricFamily:
    family = CounterMetricFamily(counter.name, counter.documentation, labels=counter.labelnames)
    rows = dict.fromkeys(counter.initial, 0.0) | totals.get(counter.name, {})
    for labels, value in _series(counter.labelnames, rows):
        family.add_metric([labels[n] for n in counter.labelnames], value)
    return family


def _histogram(histogram: Histogram, totals: dict[str, dict[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        histogram.name, histogram.documentation, labels=histogram.labelnames
    )
    names = histogram.labelnames
    buckets: dict[tuple[str, ...], dict[str, float]] = {}
    for labels, value in _series(names, totals.get(f"{histogram.name}_bucket", {}), "le"):
        buckets.setdefault(tuple(labels[n] for n in names), {})[labels["le"]] = value
    sums = {
        tuple(labels[n] for n in names): value
        for labels, value in _series(names, totals.get(f"{histogram.name}_sum", {}))
    }
    for key, counts in buckets.items():
        cumulative = [
            (bucket_label(b), counts.get(bucket_label(b), 0.0)) for b in histogram.buckets
        ]
        family.add_metric(list(key), cumulative, sum_value=sums.get(key, 0.0))
    return family


# --- read from the database at scrape time ---


def database() -> Iterator[Metric]:
    from ..models import Company, RefreshState, RetryRequest
    from ..vocabulary import ACTIVE_RETRY_STATES

    now = timezone.now()
    refreshes = RefreshState.objects.aggregate(
        oldest=Min("last_success"),
        newest=Max("last_success"),
        paused=Count("pk", filter=Q(paused_until__gt=now)),
    )
    yield _gauge(c.MIRROR_OLDEST_REFRESH_AGE, age(refreshes["oldest"], now))
    yield _gauge(c.MIRROR_NEWEST_REFRESH_AGE, age(refreshes["newest"], now))
    never = Company.objects.filter(
        Q(refresh__isnull=True) | Q(refresh__last_success__isnull=True)
    ).count()
    yield _gauge(c.MIRROR_NEVER_REFRESHED, never)
    yield _gauge(c.MIRROR_PAUSED, refreshes["paused"])
    # The companies with something outstanding: an index of their own.
    outstanding = Company.objects.filter(items_outstanding__gt=0).aggregate(
        items=Sum("items_outstanding"), syncs=Sum("syncs_outstanding"), companies=Count("pk")
    )
    yield _gauge(c.OUTSTANDING_ITEMS, outstanding["items"] or 0)
    yield _gauge(c.OUTSTANDING_SYNCS, outstanding["syncs"] or 0)
    yield _gauge(c.OUTSTANDING_COMPANIES, outstanding["companies"])
    active = dict.fromkeys([str(s) for s in ACTIVE_RETRY_STATES], 0) | dict(
        RetryRequest.objects.filter(state__in=ACTIVE_RETRY_STATES)
        .order_by()
        .values("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    family = _gauge(c.RETRY_ACTIVE)
    for state, count in active.items():
        family.add_metric([state], count)
    yield family
    from ..health_signals import mirror_lag, missed_webhooks

    yield _gauge(c.WEBHOOKS_MISSED_LAST_HOUR, missed_webhooks(now - timedelta(hours=1)).missed)
    lag = mirror_lag(now - timedelta(hours=1))
    family = _gauge(c.MIRROR_LAG_LAST_HOUR)
    if lag.p95_s is not None:
        family.add_metric(["all"], lag.p95_s)
    for source, (_, p95_s) in lag.by_source.items():
        family.add_metric([source], p95_s)
    yield family
    yield from alerts()


def alerts() -> Iterator[Metric]:
    # Read here rather than by the alerts app: one scrape, one database source.
    from alerts.models import Channel, Delivery
    from alerts.vocabulary import DeliveryState

    states = [DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.RETRYING]
    waiting = dict.fromkeys([str(s) for s in states], 0) | dict(
        Delivery.objects.filter(state__in=states)
        .order_by()
        .values("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    family = _gauge(c.ALERT_DELIVERIES_WAITING)
    for state, count in waiting.items():
        family.add_metric([state], count)
    yield family
    failing = Channel.objects.filter(enabled=True, failing_since__isnull=False).count()
    yield _gauge(c.ALERT_CHANNELS_FAILING, failing)


def age(moment: datetime | None, now: datetime) -> float | None:
    """Seconds from `moment` to `now`; None when there is no moment."""
    return None if moment is None else max(0.0, (now - moment).total_seconds())


# --- read from the broker at scrape time ---


def broker() -> Iterator[Metric]:
    family = _gauge(c.QUEUE_DEPTH)
    for queue, depth in queue_depths().items():
        family.add_metric([queue], depth)
    yield family


def queue_depths() -> dict[str, int]:
    """Tasks waiting in the default queue (every task of this app goes there)."""
    from synchealth.celery import app

    queue = app.conf.task_default_queue
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=0, timeout=5)
        # A declaration is how every transport (Redis, files, memory) counts a queue.
        channel: Any = connection.default_channel
        declared = channel.queue_declare(queue=queue, passive=False)
    return {queue: int(declared.message_count)}


# --- the request budget ---


# How each process's own reading adds up to the deployment's.
_ADD_UP: dict[str, Callable[[list[float]], float]] = {
    c.BUDGET_USED.name: sum,
    c.IN_FLIGHT_MAX.name: max,
    c.QUOTA_REMAINING.name: min,
    c.QUOTA_LIMIT.name: max,
}


def budget() -> Iterator[Metric]:
    """The budget shared through Redis, read there; else the processes' latest readings.

    Without Redis each process keeps its own budget and reports it with its
    counts; a reading older than the budget's window no longer counts (the
    requests it saw have left the window since).
    """
    from ..ratelimit import get_limiter

    limit = settings.CODAT_RATE_LIMIT_PER_MINUTE
    values: dict[str, float]
    if settings.REDIS_URL:
        snapshot = get_limiter().snapshot()
        values = {
            c.BUDGET_USED.name: snapshot.used,
            c.IN_FLIGHT_MAX.name: snapshot.most_in_flight,
        }
        if snapshot.quota is not None:
            values[c.QUOTA_REMAINING.name], values[c.QUOTA_LIMIT.name] = snapshot.quota
    else:
        since = time.time() - settings.CODAT_RATE_LIMIT_WINDOW_SECONDS
        readings = get_store().reports(_ADD_UP, since)
        values = {c.BUDGET_USED.name: 0, c.IN_FLIGHT_MAX.name: 0}
        values |= {name: _ADD_UP[name](found) for name, found in readings.items() if found}
    used = values[c.BUDGET_USED.name]
    yield _gauge(c.BUDGET_USED, used)
    yield _gauge(c.BUDGET_REMAINING, max(0, limit - used))
    yield _gauge(c.IN_FLIGHT_MAX, values[c.IN_FLIGHT_MAX.name])
    yield _gauge(c.QUOTA_REMAINING, values.get(c.QUOTA_REMAINING.name))
    yield _gauge(c.QUOTA_LIMIT, values.get(c.QUOTA_LIMIT.name))
