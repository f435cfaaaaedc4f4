"""The problems' small pictures: a 14-day trend as a strip of bars, built in Python.

No inline style (the Content-Security-Policy allows none): each bar's height
is one of `TREND_LEVELS` classes (`t0` … `t8`) that app.css sizes. The strip
reads as an image with its numbers spelled out, for a screen reader.
"""

from __future__ import annotations

import math

from django import template
from django.utils.safestring import SafeString

from dashboard.markup import html, join
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
