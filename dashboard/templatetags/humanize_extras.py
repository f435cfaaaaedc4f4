"""Small display filters: thousands separators, percentages, durations."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def thousands(value: object) -> str:
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


@register.filter
def percent(value: object) -> str:
    try:
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"


@register.filter
def duration(seconds: object) -> str:
    if seconds is None or seconds == "":
        return "—"
    try:
        total = int(seconds)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "—"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
