"""What the dashboard shows of the mirror's own health, in one read (two when webhooks
were missed), and the mirror's lag over the last hour (one more)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from .freshness import WINDOW, Lag, mirror_lag
from .gaps import MissedWebhooks, expecting_webhooks, missed_webhooks
from .system import system_health

# The pages show the missed webhooks of the last day.
LOOK_BACK = timedelta(hours=24)


@dataclass(frozen=True)
class Overview:
    last_refresh_at: datetime | None
    trouble_since: datetime | None
    trouble_kind: str  # an UpstreamTrouble, or "" when fine
    webhooks: MissedWebhooks | None  # None: no webhooks expected (the receiver is off)
    lag: Lag  # the mirror's lag over the last hour


def overview(*, now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    row = system_health()
    return Overview(
        last_refresh_at=row.last_refresh_at if row else None,
        trouble_since=row.upstream_trouble_since if row else None,
        trouble_kind=row.upstream_trouble_kind if row else "",
        webhooks=missed_webhooks(now - LOOK_BACK) if expecting_webhooks() else None,
        lag=mirror_lag(now - WINDOW),
    )
