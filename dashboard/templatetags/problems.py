"""The problems' small pictures: a 14-day trend as a strip of bars, built in Python.

No inline style (the Content-Security-Policy allows none): each bar's height
is one of `TREND_LEVELS` classes (`t0` … `t8`) that app.css sizes. The strip
reads as an image with its numbers spelled out, for a screen reader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString

from dashboard.markup import html, join
from dashboard.models import Problem
from dashboard.problems.selectors import trend_days
from dashboard.vocabulary import status_label

register = template.Library()

# Bar heights above zero: `t1` (an eighth of the tallest) to `t8` (the tallest).
TREND_LEVELS = 8


def level(n: int, peak: int) -> int:
    """A day's bar height class: 0 for none, else 1 to `TREND_LEVELS` by its share of the peak."""
    if n <= 0 or peak <= 0:
        return 0
    return max(1, min(TREND_LEVELS, math.ceil(n * TREND_LEVELS / peak)))


@register.simple_tag
def trend_strip(trend: dict[str, int] | None) -> SafeString:
    """The last 14 UTC days of a problem's outstanding items, by the day each last failed."""
    days = trend_days(trend or {})
    peak = max((n for _, n in days), default=0)
    label = (
        f"Outstanding items by the day they failed, last {len(days)} days (UTC), oldest first: "
        + ", ".join(str(n) for _, n in days)
    )
    # Each bar holds only an ISO date and numbers, made here: nothing to escape.
    bars = SafeString(
        "".join(f'<span class="t{level(n, peak)}" title="{day}: {n:,}"></span>' for day, n in days)
    )
    return html('<span class="trend" role="img" aria-label="{}">{}</span>', label, bars)


@register.filter
def status_text(code: int) -> str:
    """A status code's meaning in words (`4220` → "Company de-authorized")."""
    return status_label(code)


@register.simple_tag
def platform_list(platforms: dict[str, int] | None) -> SafeString:
    """A problem's platforms, most companies first: "Xero (3), QuickBooks Online (1)"."""
    ranked = sorted((platforms or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return html('<span class="muted">{}</span>', "none")
    return join((html("{} ({})", name, f"{n:,}") for name, n in ranked), ", ")


_MARKER = 987654321


@register.simple_tag
def problem_rows(problems: Iterable[Problem], since: datetime | None = None) -> SafeString:
    """The Problems page's rows, built here rather than by the template language (which
    took most of the page's time for fifty rows): the same cells, escaped the same way."""
    from .humanize_extras import brief, clip

    head, tail = reverse("problem-detail", args=[_MARKER]).split(str(_MARKER), 1)
    rows = []
    for p in problems:
        kind = html(' <span class="muted">· {}</span>', p.data_type) if p.data_type else ""
        fresh: SafeString | str = ""
        if since and p.created_at > since:
            fresh = SafeString(' <span class="fresh" data-testid="new">new</span>')
        elif since and p.regressed_at and p.regressed_at > since:
            fresh = SafeString(' <span class="fresh" data-testid="came-back">came back</span>')
        assignee = (
            html("{}", p.assignee.get_username())
            if p.assignee
            else SafeString('<span class="muted">nobody</span>')
        )
        rows.append(
            html(
                '<tr data-problem="{}">\n'
                '<td class="cause" data-label="Cause"><a href="{}{}{}">{}</a> '
                '<span class="muted">#{}</span></td>\n'
                '<td class="wide" data-label="Status"><span class="badge cat-failed" '
                'title="{}">{}</span> {}{}</td>\n'
                '<td class="num" data-label="Items">{}</td>\n'
                '<td class="num" data-label="Syncs">{}</td>\n'
                '<td class="num" data-label="Companies">{}</td>\n'
                '<td class="nowrap" data-label="First seen">{}</td>\n'
                '<td class="nowrap" data-label="Last seen">{}</td>\n'
                '<td data-label="Last 14 days">{}</td>\n'
                '<td class="wide" data-label="Platforms">{}</td>\n'
                '<td data-label="State"><span class="badge pstate-{}">{}</span>{}</td>\n'
                '<td data-label="Assignee">{}</td>\n</tr>\n',
                p.pk,
                head, p.pk, tail,
                clip(p.cause, 240),
                p.pk,
                p.status_code, p.status_code,
                status_label(p.status_code),
                kind,
                f"{p.items_outstanding:,}", f"{p.syncs_outstanding:,}",
                f"{p.companies_outstanding:,}",
                brief(p.first_seen),
                brief(p.last_seen),
                trend_strip(p.trend),
                platform_list(p.platforms),
                p.state, p.get_state_display(), fresh,
                assignee,
            )
        )  # fmt: skip
    return SafeString("".join(rows))


@register.simple_tag
def problem_company_rows(rows: Iterable[Any]) -> SafeString:
    """A problem's page of affected companies (`ProblemCompany` rows with their company),
    built here like the list's rows: the same cells the template wrote."""
    from .humanize_extras import stamp, thousands
    from .tables import route

    return join(
        html(
            '<tr><td class="wide" data-label="Company"><a href="{}">{}</a></td>\n'
            '<td data-label="Platform">{}</td>\n'
            '<td class="num" data-label="Items">{}</td>\n'
            '<td class="num" data-label="Syncs">{}</td>\n'
            '<td data-label="Last seen">{}</td></tr>\n',
            route(row.company.company_id, "company-detail"),
            row.company.name,
            row.company.platform_name or "Unknown",
            thousands(row.items),
            thousands(row.syncs),
            stamp(row.last_seen),
        )
        for row in rows
    )


@register.simple_tag
def problem_item_rows(rows: Iterable[Any]) -> SafeString:
    """A problem's page of outstanding items (`selectors.ItemRow`), each at the sync where
    it last failed, built here like the list's rows."""
    from .humanize_extras import clip, stamp
    from .tables import route

    return join(
        html(
            '<tr><td class="wide" data-label="Transaction"><a class="mono" href="{}">{}</a></td>\n'
            '<td data-label="Company"><a href="{}">{}</a></td>\n'
            '<td data-label="Sync"><a class="mono" href="{}">{}</a></td>\n'
            '<td data-label="When">{}</td></tr>\n',
            route(item.transaction_id, "transaction-detail"),
            item.transaction_id,
            route(item.company_uuid, "company-detail"),
            item.company_name,
            route(item.sync_id, "sync-detail"),
            clip(item.sync_id, 13),
            stamp(item.failed_at),
        )
        for item in rows
    )
