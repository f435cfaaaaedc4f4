"""Small display filters and tags: numbers, durations, times, status badges, row links."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.html import format_html

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


@register.simple_tag
def status_badge(sync: Any) -> str:
    """A sync's status code, coloured by category; the shared badge of every page."""
    return format_html(
        '<span class="badge cat-{}" title="{}">{}</span>',
        sync.category,
        sync.status_label,
        sync.status_code,
    )


@cache
def _url_parts(name: str, prefix: str, urlconf: str | None) -> tuple[str, str]:
    marker = uuid.UUID(int=0)
    return tuple(reverse(name, args=[marker], urlconf=urlconf).split(str(marker), 1))  # type: ignore[return-value]


@register.simple_tag
def uuid_url(name: str, value: uuid.UUID | str) -> str:
    """`{% url name value %}` for a route that takes one UUID, reversed once per route.

    The tables link every row to a sync and a company; reversing each link
    costs more than the rest of the row.
    """
    head, tail = _url_parts(name, get_script_prefix(), get_urlconf())
    return f"{head}{uuid.UUID(str(value))}{tail}"
