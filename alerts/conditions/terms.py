"""What a rule asks of a check, and how findings name things.

A rule's threshold (its own, or the condition's default) and its scope: its
companies and platforms (none named: all). Checks narrow their queries with
`limit`, a filter the database applies alongside the index the check
already uses. Findings name companies and times the same way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, QuerySet

from alerts.vocabulary import THRESHOLD

if TYPE_CHECKING:
    from alerts.models import Rule

M = TypeVar("M", bound=Model)


def threshold(rule: Rule) -> int:
    """The rule's threshold, or its condition's default."""
    if rule.threshold is not None:
        return rule.threshold
    default = THRESHOLD.get(rule.condition)
    if default is None:
        raise ValueError(f"{rule.condition} takes no threshold")
    return default[1]


def company_pks(rule: Rule) -> list[int]:
    """The companies the rule names ([]: every company).

    The engine prefetches them, so a check asking costs no query.
    """
    return [company.pk for company in rule.companies.all()]


def limit(
    rule: Rule,
    queryset: QuerySet[M],
    *,
    company: str = "company",
    platform: str = "company__platform_name",
) -> QuerySet[M]:
    """`queryset` narrowed to the rule's companies and platforms.

    `company` and `platform` are the lookups that reach the company's pk and its
    platform from the queryset's model (for companies: "pk" and "platform_name").
    """
    pks = company_pks(rule)
    if pks:
        queryset = queryset.filter(**{f"{company}__in": pks})
    if rule.platforms:
        queryset = queryset.filter(**{f"{platform}__in": list(rule.platforms)})
    return queryset


def company(company_id: Any, name: str, platform: str) -> dict[str, str]:
    """A company as findings' details list it: its upstream ID, name and platform."""
    return {"company_id": str(company_id), "name": name, "platform": platform or "Unknown"}


def utc(moment: datetime) -> str:
    """A time for a message, saying its zone."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
