"""Prometheus metrics: counted in every process, added up in one store, read at `/metrics`.

- `catalogue`: every metric, what it means, its labels;
- `series`: counters and histograms, and each process's `recorder`, which
  writes its counts to the store at the end of each task, every
  `METRICS_FLUSH_SECONDS`, at exit and before a scrape;
- `stores`: the shared store, Redis when there is one, else the database;
- `exposition`: the text `/metrics` serves, with the gauges read at scrape
  time (mirror lag, queue depth, the request budget, outstanding counts).

Why a shared store and not prometheus-client's multiprocess mode: workers
may run on other machines than the web server, `make run` has no Redis and
several processes, and a store needs no folder to share, clean at start or
mark dead processes in (README "Health and metrics").
"""

from .catalogue import (
    ALERT_DELIVERIES,
    BUDGET_USED,
    IN_FLIGHT_MAX,
    MIRROR_CHANGE_LAG,
    QUOTA_LIMIT,
    QUOTA_REMAINING,
    RETRY_ITEM_OUTCOMES,
    RETRY_ITEMS,
    RETRY_REQUESTS,
    UPSTREAM_ERRORS,
    UPSTREAM_REQUESTS,
    UPSTREAM_WAIT_SECONDS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_PROCESSING_DELAY,
    WEBHOOK_RESPONSE_SECONDS,
    WEBHOOKS_MISSED,
)
from .series import recorder

__all__ = [
    "ALERT_DELIVERIES",
    "BUDGET_USED",
    "IN_FLIGHT_MAX",
    "MIRROR_CHANGE_LAG",
    "QUOTA_LIMIT",
    "QUOTA_REMAINING",
    "RETRY_ITEMS",
    "RETRY_ITEM_OUTCOMES",
    "RETRY_REQUESTS",
    "UPSTREAM_ERRORS",
    "UPSTREAM_REQUESTS",
    "UPSTREAM_WAIT_SECONDS",
    "WEBHOOKS_MISSED",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_PROCESSING_DELAY",
    "WEBHOOK_RESPONSE_SECONDS",
    "recorder",
]
