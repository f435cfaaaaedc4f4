"""Webhooks not arriving: at least N webhooks missed in the last hour.

It reads the gaps `dashboard.health_signals` records (syncs that polling
found finished without their webhook, the grace period passed): an indexed
range of the last hour's, nothing else. Late webhooks do not count.

One subject, the whole system: a webhook outage is the receiver's or the
upstream's delivery, not a company's, and one company misses only as many
webhooks as it has syncs, too few for a threshold of its own. The finding
names the companies most affected. A rule naming companies or platforms
counts only theirs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.urls import reverse

from alerts.vocabulary import Condition
from dashboard import health_signals

from . import WEBHOOKS, Finding, register
from .terms import company_pks, threshold

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

WINDOW = timedelta(hours=1)
MOST = 5  # companies named in the finding


class WebhooksMissing:
    condition: str = Condition.WEBHOOKS_MISSING
    triggers = frozenset({WEBHOOKS})
    # The hour's window moves on with the clock alone.
    timed = True

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        if not health_signals.expecting_webhooks():
            return {}
        least = threshold(rule)
        missed = health_signals.missed_webhooks(
            now - WINDOW,
            limit=MOST,
            companies=company_pks(rule),
            platforms=list(rule.platforms),
        )
        if missed.missed < least:
            return {}
        names = ", ".join(f"{c.name} ({c.missed})" for c in missed.most)
        more = missed.companies - len(missed.most)
        if more > 0:
            names += f" and {more} more"
        return {
            "system": Finding(
                subject="system",
                label="Webhooks",
                summary=f"{missed.missed} webhooks missed in the last hour, "
                f"from {missed.companies} companies: {names}",
                path=reverse("summary") + "#webhook-gaps",
                detail={
                    "missed": missed.missed,
                    "late": missed.late,
                    "threshold": least,
                    "companies": [
                        {"company_id": str(c.company_id), "name": c.name, "missed": c.missed}
                        for c in missed.most
                    ],
                },
            )
        }

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return "Webhooks arrive again: fewer missed in the last hour than the rule's threshold"


register(WebhooksMissing())
