"""Our own health: no successful refresh for N minutes, and the upstream unreachable
or rate limiting us for N minutes.

Both read the one row `dashboard.health_signals` keeps (a primary-key read)
and move with the clock, so beat evaluates them every minute as well as when
a refresh or the upstream's answer changes them. Their subject is the whole
system.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.urls import reverse

from alerts.vocabulary import Condition
from dashboard import health_signals
from dashboard.models import Company
from dashboard.vocabulary import UpstreamTrouble

from . import REFRESH, UPSTREAM, Finding, register
from .terms import threshold, utc

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

SYSTEM = "system"
LABEL = "Sync Health"


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


class NoRefresh:
    condition: str = Condition.NO_REFRESH
    triggers = frozenset({REFRESH})
    timed = True

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        minutes = threshold(rule)
        cutoff = now - timedelta(minutes=minutes)
        row = health_signals.system_health()
        if row is None:
            return {}
        last = row.last_refresh_at
        if last is not None:
            if last > cutoff:
                return {}
            summary = (
                f"No successful refresh for {_minutes(now - last)} minutes "
                f"(the last at {utc(last)})"
            )
        else:
            # A fresh install: a refresh has had its chance only once there are
            # companies to refresh and the system has been up the threshold.
            if row.watching_since > cutoff or not Company.objects.exists():
                return {}
            summary = (
                f"No successful refresh yet, since the mirror started at {utc(row.watching_since)}"
            )
        return {
            SYSTEM: Finding(
                subject=SYSTEM,
                label=LABEL,
                summary=summary,
                path=reverse("summary"),
                detail={
                    "last_refresh_at": last.isoformat() if last else None,
                    "threshold_minutes": minutes,
                },
            )
        }

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return "Refreshes succeed again: the mirror is being kept up to date"


class UpstreamDown:
    condition: str = Condition.UPSTREAM_DOWN
    triggers = frozenset({UPSTREAM})
    timed = True

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        minutes = threshold(rule)
        trouble = health_signals.upstream_trouble()
        if trouble is None:
            return {}
        since, kind = trouble
        if since > now - timedelta(minutes=minutes):
            return {}
        what = "unreachable" if kind == UpstreamTrouble.UNREACHABLE else "rate limiting us"
        return {
            SYSTEM: Finding(
                subject=SYSTEM,
                label=LABEL,
                summary=f"The upstream has been {what} since {utc(since)} "
                f"({_minutes(now - since)} minutes)",
                path=reverse("summary"),
                detail={
                    "kind": str(kind),
                    "since": since.isoformat(),
                    "threshold_minutes": minutes,
                },
            )
        }

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return "The upstream answers again"


register(NoRefresh())
register(UpstreamDown())
