"""The mirror's own health, as every process sees it: when a refresh last
succeeded, since when the upstream has been unreachable or rate limiting us,
and which syncs polling found without their webhook.

Recorded cheaply where things happen (the upstream client, the company
refresh, the webhook worker) in rows shared by every process, written only
when a signal changes; read by the pages, `/metrics` and the alerts'
conditions (`alerts.conditions.health`, `alerts.conditions.webhooks`).
"""

from .freshness import Lag, mirror_lag
from .gaps import (
    CompanyGaps,
    MissedWebhooks,
    company_missed_webhooks,
    expecting_webhooks,
    missed_webhooks,
    note_polled,
    prune,
    settle,
    webhook_heard,
)
from .overview import LOOK_BACK, Overview, overview
from .system import (
    forget,
    last_refresh_success,
    refresh_succeeded,
    system_health,
    upstream_answered,
    upstream_failed,
    upstream_trouble,
)

__all__ = [
    "LOOK_BACK",
    "CompanyGaps",
    "Lag",
    "MissedWebhooks",
    "Overview",
    "company_missed_webhooks",
    "expecting_webhooks",
    "forget",
    "last_refresh_success",
    "mirror_lag",
    "missed_webhooks",
    "note_polled",
    "overview",
    "prune",
    "refresh_succeeded",
    "settle",
    "system_health",
    "upstream_answered",
    "upstream_failed",
    "upstream_trouble",
    "webhook_heard",
]
