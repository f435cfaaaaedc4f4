"""Syncs that go wrong as a flow: one running far too long (1010), and a platform
whose syncs of the last hour mostly fail.

Both read a bounded slice of the syncs through an index: the long-running
code's syncs older than the threshold (code, then start), and the last hour's
syncs (by start). Neither grows with the history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse

from alerts.vocabulary import Condition
from dashboard.models import Sync
from dashboard.vocabulary import Category, Code

from . import SYNCS, Finding, register
from .terms import company, limit, threshold, utc

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

# How many companies (and syncs) a finding names: those with the most failures.
NAMED = 5
WINDOW = timedelta(hours=1)
UNKNOWN_PLATFORM = "Unknown"


class LongRunning:
    """One subject per company: its syncs still running (1010) past the threshold."""

    condition: str = Condition.LONG_RUNNING
    triggers = frozenset({SYNCS})
    timed = True  # a running sync crosses the threshold with no change at all

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        minutes = threshold(rule)
        rows = (
            limit(
                rule,
                Sync.objects.filter(
                    status_code=Code.LONG_RUNNING, sync_utc__lt=now - timedelta(minutes=minutes)
                ),
                platform="platform_name",
            )
            .order_by("sync_utc", "pk")
            .values_list(
                "company_id",
                "company__company_id",
                "company__name",
                "company__platform_name",
                "sync_id",
                "sync_utc",
            )
        )
        by_company: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_company[row[0]].append(row)
        found = {}
        for pk, syncs in by_company.items():
            _, company_id, name, platform, oldest_id, oldest = syncs[0]
            subject = f"company:{company_id}"
            count = len(syncs)
            running = "1 sync has" if count == 1 else f"{count} syncs have"
            found[subject] = Finding(
                subject=subject,
                label=name,
                summary=f"{name}: {running} been running for over {minutes} minutes "
                f"(the oldest since {utc(oldest)})",
                path=reverse("sync-detail", args=[oldest_id])
                if count == 1
                else reverse("company-detail", args=[company_id]),
                detail={
                    "syncs": count,
                    "threshold_minutes": minutes,
                    "oldest_started": oldest.isoformat(),
                    "sync_ids": [str(row[4]) for row in syncs[:NAMED]],
                    "companies": [company(company_id, name, platform)],
                },
                company_pk=pk,
            )
        return found

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return f"{state.label or state.subject}: no sync is running long any more"


class PlatformSuccess:
    """One subject per platform: its finished syncs that started in the last hour."""

    condition: str = Condition.PLATFORM_SUCCESS
    triggers = frozenset({SYNCS})
    timed = True  # the hour moves on by itself

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        least = threshold(rule)
        hour = limit(
            rule,
            Sync.objects.filter(sync_utc__gt=now - WINDOW, sync_utc__lte=now),
            platform="platform_name",
        ).order_by()
        counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for platform, category, n in (
            hour.filter(category__in=[Category.SUCCESS, Category.FAILED])
            .values("platform_name", "category")
            .annotate(n=Count("*"))
            .values_list("platform_name", "category", "n")
        ):
            counts[platform or UNKNOWN_PLATFORM][category] += n
        low = {}
        for platform, by_category in counts.items():
            good, bad = by_category[Category.SUCCESS], by_category[Category.FAILED]
            total = good + bad
            if total >= rule.min_syncs and good * 100 < least * total:
                low[platform] = (good, bad)
        if not low:
            return {}
        named = self._failing_companies(hour, low)
        found = {}
        for platform, (good, bad) in low.items():
            total = good + bad
            rate = round(100 * good / total)
            subject = f"platform:{platform}"
            query = {"range": "24h", "category": "failed"}
            if platform != UNKNOWN_PLATFORM:
                query["platform"] = platform
            found[subject] = Finding(
                subject=subject,
                label=platform,
                summary=f"{platform}: {rate}% of the last hour's syncs succeeded "
                f"({good} of {total}; below {least}%)",
                path=f"{reverse('sync-history')}?{urlencode(query)}",
                detail={
                    "success_rate": rate,
                    "threshold_percent": least,
                    "succeeded": good,
                    "failed": bad,
                    "syncs": total,
                    "companies": named.get(platform, []),
                },
            )
        return found

    def _failing_companies(
        self, hour: Any, platforms: dict[str, tuple[int, int]]
    ) -> dict[str, list[dict[str, str]]]:
        """The companies with the most failures in the hour, per platform."""
        named: dict[str, list[dict[str, str]]] = defaultdict(list)
        rows = (
            hour.filter(category=Category.FAILED)
            .values("platform_name", "company__company_id", "company__name")
            .annotate(n=Count("*"))
            .order_by("-n", "company__name")
            .values_list("platform_name", "company__company_id", "company__name")
        )
        for platform, company_id, name in rows:
            platform = platform or UNKNOWN_PLATFORM
            if platform in platforms and len(named[platform]) < NAMED:
                named[platform].append(company(company_id, name, platform))
        return named

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return f"{state.label}: the last hour's success rate is back above {threshold(rule)}%"


register(LongRunning())
register(PlatformSuccess())
