"""Companies in trouble: a failing streak reaching N, and a company cut off from its
accounting platform (de-authorised, deleted, or its billing expired).

Both read what ingest keeps per company: its failing streak (an index on it)
and, for the cut-off codes, its outstanding shares of the problems with those
codes (a few problems, each with an index on its companies).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import F
from django.urls import reverse

from alerts.vocabulary import Condition
from dashboard.models import Company, ProblemCompany
from dashboard.vocabulary import Code, status_label

from . import PROBLEMS, STREAK, Finding, register
from .terms import company, limit, threshold, utc

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

# The codes that say the company itself is cut off; a retry cannot help until
# the customer reconnects (or pays).
CUT_OFF = (Code.COMPANY_DELETED, Code.COMPANY_DEAUTHORIZED, Code.BILLING_EXPIRED)


class FailingStreak:
    condition: str = Condition.STREAK
    triggers = frozenset({STREAK})
    timed = False

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        least = threshold(rule)
        rows = limit(
            rule,
            Company.objects.filter(failing_streak__gte=least),
            company="pk",
            platform="platform_name",
        ).values_list(
            "pk", "company_id", "name", "platform_name", "failing_streak", "failing_since"
        )
        found = {}
        for pk, company_id, name, platform, streak, since in rows:
            subject = f"company:{company_id}"
            started = f" since {utc(since)}" if since else ""
            found[subject] = Finding(
                subject=subject,
                label=name,
                summary=f"{name} has failed {streak} syncs in a row{started}",
                path=reverse("company-detail", args=[company_id]),
                detail={
                    "failing_streak": streak,
                    "threshold": least,
                    "failing_since": since.isoformat() if since else None,
                    "companies": [company(company_id, name, platform)],
                },
                company_pk=pk,
            )
        return found

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return f"{state.label or state.subject} synced successfully: its failing streak is over"


class CutOff:
    condition: str = Condition.COMPANY_DISCONNECTED
    # A cut-off failure joins a streak (and its problem); a success ends both.
    triggers = frozenset({STREAK, PROBLEMS})
    timed = False

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        # A company's failed syncs without items are its shares while its streak
        # lasts; only those inside the current streak say it is cut off now.
        shares = limit(
            rule,
            ProblemCompany.objects.filter(
                problem__status_code__in=CUT_OFF,
                company__failing_streak__gt=0,
                last_seen__gte=F("company__failing_since"),
            ),
        ).values_list(
            "company_id",
            "company__company_id",
            "company__name",
            "company__platform_name",
            "company__failing_streak",
            "problem__status_code",
            "last_seen",
        )
        latest: dict[int, tuple] = {}
        for row in shares:
            if row[0] not in latest or row[-1] > latest[row[0]][-1]:
                latest[row[0]] = row
        found = {}
        for pk, company_id, name, platform, streak, code, seen in latest.values():
            subject = f"company:{company_id}"
            what = status_label(code)
            found[subject] = Finding(
                subject=subject,
                label=name,
                summary=f"{name} is cut off from {platform or 'its platform'}: "
                f"{what} ({code}) at {utc(seen)}",
                path=reverse("company-detail", args=[company_id]),
                detail={
                    "status_code": code,
                    "status": what,
                    "failing_streak": streak,
                    "last_seen": seen.isoformat(),
                    "companies": [company(company_id, name, platform)],
                },
                company_pk=pk,
            )
        return found

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return f"{state.label or state.subject} synced successfully: it is connected again"


register(FailingStreak())
register(CutOff())
