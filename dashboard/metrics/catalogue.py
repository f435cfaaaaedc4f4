"""Every metric `/metrics` shows: what it counts, and its labels.

Counters and histograms are counted where things happen (the upstream
client, the budget, the webhook receiver, retries) and added up across
processes (`series`, `stores`); gauges are read when `/metrics` is asked
(`exposition`). README "Health and metrics" lists them with alert thresholds,
and a test keeps the two lists the same.
"""

from __future__ import annotations

from .series import Counter, Gauge, Histogram

# --- the upstream client and the request budget ---

UPSTREAM_REQUESTS = Counter(
    "synchealth_upstream_requests_total",
    "Requests sent to the upstream (each attempt), by operation and HTTP status; "
    "status is timeout or connection_error when no answer came. 429s are status 429.",
    ("operation", "status"),
)
UPSTREAM_ERRORS = Counter(
    "synchealth_upstream_errors_total",
    "Upstream calls that failed after the client's own retries, by operation and kind: "
    "rate_limited, budget, server_error, client_error, timeout, connection, bad_response, other.",
    ("operation", "kind"),
)
WAIT_REASONS = ("budget", "company", "quota", "backoff")
UPSTREAM_WAIT_SECONDS = Counter(
    "synchealth_upstream_wait_seconds_total",
    "Seconds spent waiting before upstream requests, by reason: budget (the per-minute "
    "budget), company (requests in flight for one company), quota (pacing the daily quota), "
    "backoff (between attempts, at least Retry-After).",
    ("reason",),
    initial=[{"reason": reason} for reason in WAIT_REASONS],
)
BUDGET_USED = Gauge(
    "synchealth_upstream_budget_used",
    "Requests taken from the shared per-minute budget in its current window.",
)
BUDGET_REMAINING = Gauge(
    "synchealth_upstream_budget_remaining",
    "Requests left in the per-minute budget's current window (CODAT_RATE_LIMIT_PER_MINUTE "
    "less those used).",
)
IN_FLIGHT_MAX = Gauge(
    "synchealth_upstream_in_flight_max",
    "Most requests in flight for one company now (at most CODAT_MAX_IN_FLIGHT_PER_COMPANY).",
)
QUOTA_REMAINING = Gauge(
    "synchealth_upstream_quota_remaining",
    "The upstream's daily quota left, from its last X-Rate-Limit-Remaining (absent until known).",
)
QUOTA_LIMIT = Gauge(
    "synchealth_upstream_quota_limit",
    "The upstream's daily quota, from its last X-Rate-Limit-Limit (absent until known).",
)

# --- webhooks ---

WEBHOOK_OUTCOMES = ("accepted", "ignored", "duplicate", "rejected")
WEBHOOK_DELIVERIES = Counter(
    "synchealth_webhook_deliveries_total",
    "Webhook deliveries received, by outcome (accepted, ignored: not a sync event, "
    "duplicate: delivered before, rejected) and, for rejections, the reason.",
    ("outcome", "reason"),
    initial=[{"outcome": o, "reason": ""} for o in ("accepted", "ignored", "duplicate")],
)
WEBHOOK_RESPONSE_SECONDS = Histogram(
    "synchealth_webhook_response_seconds",
    "Time taken to answer a webhook delivery, by outcome.",
    ("outcome",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_PROCESSING_DELAY = Histogram(
    "synchealth_webhook_processing_delay_seconds",
    "Time from a delivery's arrival to the end of the refresh of the sync it names.",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
MIRROR_CHANGE_LAG = Histogram(
    "synchealth_mirror_change_lag_seconds",
    "Mirror lag: from the best-known time a sync changed upstream (it appeared, or its status "
    "changed) to when the mirror wrote the change, by how it learned of it: webhook (from the "
    "webhook's time) or poll (from the earliest the change can have happened: an upper "
    "bound). A company's first read is not counted.",
    ("source",),
    buckets=(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400),
)
MIRROR_LAG_LAST_HOUR = Gauge(
    "synchealth_mirror_lag_last_hour_seconds",
    "The 95th percentile of the mirror's lag over the changes it learned of in the last hour "
    "(each sync's latest), by source: webhook, poll, or all; absent when there were none.",
    ("source",),
)
WEBHOOKS_MISSED = Counter(
    "synchealth_webhooks_missed_total",
    "Syncs that polling found finished whose webhook had not come within "
    "WEBHOOK_GAP_GRACE_SECONDS of their end (receiver configured); counted once each, "
    "even if the webhook comes late.",
)
WEBHOOKS_MISSED_LAST_HOUR = Gauge(
    "synchealth_webhooks_missed_last_hour",
    "Webhooks missed in the last hour, late ones apart: what the 'webhooks not arriving' "
    "alert watches.",
)

# --- retries ---

RETRY_OUTCOMES = ("completed", "failed", "cancelled", "skipped", "denied")
RETRY_REQUESTS = Counter(
    "synchealth_retry_requests_total",
    "Retry requests that reached an end, by outcome: completed (the new sync ended), failed "
    "(refused by the upstream, or given up), cancelled, skipped (in a bulk retry: nothing to "
    "retry, already being retried, or cancelled before sending), denied (no permission).",
    ("outcome",),
    initial=[{"outcome": outcome} for outcome in RETRY_OUTCOMES],
)
RETRY_ITEM_OUTCOMES = ("completed", "failed_again", "not_repushed")
RETRY_ITEMS = Counter(
    "synchealth_retry_items_total",
    "Items of completed retry requests, by outcome: completed, failed_again, not_repushed.",
    ("outcome",),
    initial=[{"outcome": outcome} for outcome in RETRY_ITEM_OUTCOMES],
)
RETRY_ACTIVE = Gauge(
    "synchealth_retry_requests_active",
    "Retry requests not yet ended, by state: queued, running, submitted (new sync running).",
    ("state",),
)

# --- alerts ---

ALERT_DELIVERY_KINDS = ("transition", "digest", "test")
ALERT_DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")
ALERT_DELIVERIES = Counter(
    "synchealth_alert_deliveries_total",
    "Attempts to send an alert to a channel, by kind (transition, digest, test) and outcome: "
    "delivered, retrying (failed, tried again later), failed (given up).",
    ("kind", "outcome"),
    initial=[
        {"kind": kind, "outcome": outcome}
        for kind in ALERT_DELIVERY_KINDS
        for outcome in ALERT_DELIVERY_OUTCOMES
    ],
)
ALERT_DELIVERIES_WAITING = Gauge(
    "synchealth_alert_deliveries_waiting",
    "Alert deliveries not yet sent or given up, by state: pending, sending, retrying.",
    ("state",),
)
ALERT_CHANNELS_FAILING = Gauge(
    "synchealth_alert_channels_failing",
    "Enabled alert channels whose latest attempt failed (none delivered since).",
)

# --- the mirror and the queue ---

MIRROR_OLDEST_REFRESH_AGE = Gauge(
    "synchealth_mirror_oldest_refresh_age_seconds",
    "Mirror lag: seconds since the least recently refreshed company's last successful "
    "refresh (absent before the first).",
)
MIRROR_NEWEST_REFRESH_AGE = Gauge(
    "synchealth_mirror_newest_refresh_age_seconds",
    "Seconds since the most recent successful company refresh (absent before the first).",
)
MIRROR_NEVER_REFRESHED = Gauge(
    "synchealth_mirror_companies_never_refreshed",
    "Companies in the mirror without a successful refresh yet.",
)
MIRROR_PAUSED = Gauge(
    "synchealth_mirror_companies_paused",
    "Companies whose refreshes are paused by a long rate-limit wait.",
)
OUTSTANDING_ITEMS = Gauge(
    "synchealth_outstanding_items",
    "Items still to push: their latest push failed, or ended pending.",
)
OUTSTANDING_SYNCS = Gauge(
    "synchealth_outstanding_syncs", "Syncs (originals) with an outstanding item."
)
OUTSTANDING_COMPANIES = Gauge(
    "synchealth_outstanding_companies", "Companies with an outstanding item."
)
QUEUE_DEPTH = Gauge(
    "synchealth_queue_depth",
    "Tasks waiting in the broker for a worker, by queue.",
    ("queue",),
)
SOURCE_UP = Gauge(
    "synchealth_metrics_source_up",
    "1 if this scrape read the source (store, database, broker, budget), 0 if it failed "
    "(the web server's log says why) and the metrics from it are missing.",
    ("source",),
)

CATALOGUE: tuple[Counter | Histogram | Gauge, ...] = (
    UPSTREAM_REQUESTS,
    UPSTREAM_ERRORS,
    UPSTREAM_WAIT_SECONDS,
    BUDGET_USED,
    BUDGET_REMAINING,
    IN_FLIGHT_MAX,
    QUOTA_REMAINING,
    QUOTA_LIMIT,
    WEBHOOK_DELIVERIES,
    WEBHOOK_RESPONSE_SECONDS,
    WEBHOOK_PROCESSING_DELAY,
    MIRROR_CHANGE_LAG,
    MIRROR_LAG_LAST_HOUR,
    WEBHOOKS_MISSED,
    WEBHOOKS_MISSED_LAST_HOUR,
    RETRY_REQUESTS,
    RETRY_ITEMS,
    RETRY_ACTIVE,
    ALERT_DELIVERIES,
    ALERT_DELIVERIES_WAITING,
    ALERT_CHANNELS_FAILING,
    MIRROR_OLDEST_REFRESH_AGE,
    MIRROR_NEWEST_REFRESH_AGE,
    MIRROR_NEVER_REFRESHED,
    MIRROR_PAUSED,
    OUTSTANDING_ITEMS,
    OUTSTANDING_SYNCS,
    OUTSTANDING_COMPANIES,
    QUEUE_DEPTH,
    SOURCE_UP,
)
