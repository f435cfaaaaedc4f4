"""What the alerts pages (and the dashboard's banner) say about rules, subjects and paths."""

from __future__ import annotations

import uuid
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from alerts import selectors
from alerts.models import Rule
from alerts.vocabulary import THRESHOLD

register = template.Library()


@register.filter
def threshold_words(rule: Rule) -> str:
    """The rule's number with its meaning ('3 failed syncs in a row'); '' when it takes none."""
    spec = THRESHOLD.get(rule.condition)
    if spec is None:
        return ""
    meaning, default = spec
    return f"{rule.threshold if rule.threshold is not None else default} {meaning}"


@register.filter
def subject_url(subject: str) -> str:
    """The page that shows a rule's subject: `company:<uuid>`, `problem:<pk>`,
    `platform:<name>` or `system` ('' for anything else)."""
    kind, _, value = (subject or "").partition(":")
    if kind == "company":
        try:
            return reverse("company-detail", args=[uuid.UUID(value)])
        except ValueError:
            return ""
    if kind == "problem" and value.isdigit():
        return reverse("problem-detail", args=[int(value)])
    if kind == "platform" and value:
        return reverse("sync-history") + "?" + urlencode({"platform": value, "range": "24h"})
    if kind == "system":
        return reverse("summary")
    return ""


@register.filter
def local_path(path: str) -> str:
    """A transition's page, only when it is a path on this site (never another host)."""
    path = path or ""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else ""


@register.inclusion_tag("alerts/_dashboard_banner.html", takes_context=True)
def alerts_banner(context: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's word on alerts: channels failing for a while, and how many are firing."""
    return {
        "failing": selectors.failing_channels(timezone.now()),
        "firing": selectors.firing_count(),
        "perms": context.get("perms"),
    }


@register.inclusion_tag("alerts/_mute_control.html", takes_context=True)
def mute_control(
    context: dict[str, Any], *, company: Any = None, problem: Any = None
) -> dict[str, Any]:
    """Leads' "Mute alerts" on a company's or a problem's page (a POST to alert-mute-new)."""
    request = context["request"]
    return {
        "company": company,
        "problem": problem,
        "next": request.get_full_path(),
        "perms": context.get("perms"),
        "csrf_token": context.get("csrf_token"),
        "time_zone": getattr(request, "time_zone_name", "") or "UTC",
    }
