"""Small display filters and tags: numbers, durations, times, status badges, row links."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

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


def _text(value: object) -> str:
    """Django's `escape` without its check for lazy strings (which a table pays per cell)."""
    return html.escape(str(value))


def _joined(parts: Iterable[str]) -> SafeString:
    """Markup built by this module's tags, whose every interpolated text went through `_text`."""
    return mark_safe("".join(parts))  # noqa: S308 - each builder escapes what it interpolates


def _badge(code: int, category: int, label: str) -> str:
    return f'<span class="badge cat-{_text(category)}" title="{_text(label)}">{_text(code)}</span>'


@register.simple_tag
def status_badge(sync: Any) -> SafeString:
    """A sync's status code, coloured by category; the shared badge of every page."""
    return mark_safe(_badge(sync.status_code, sync.category, sync.status_label))  # noqa: S308 - escaped by _badge


@cache
def _url_parts(name: str, prefix: str, urlconf: str | None) -> tuple[str, str]:
    marker = uuid.UUID(int=0)
    return tuple(reverse(name, args=[marker], urlconf=urlconf).split(str(marker), 1))  # type: ignore[return-value]


def _route(name: str) -> tuple[str, str]:
    """The URL of a one-UUID route around its UUID, for this request's prefix.

    The tables link every row to a sync and a company; reversing each link
    costs more than the rest of the row, so each route is reversed once.
    """
    return _url_parts(name, get_script_prefix(), get_urlconf())


def _html_route(name: str) -> tuple[str, str]:
    """`_route`, escaped for an attribute (the script prefix is the deployment's)."""
    head, tail = _route(name)
    return _text(head), _text(tail)


def _uuid(value: uuid.UUID | str) -> str:
    """A UUID's canonical text; anything else raises (it never reaches a link)."""
    return str(uuid.UUID(str(value)))


@register.simple_tag
def sync_rows(syncs: list[Any]) -> SafeString:
    """The history table's rows (`selectors.HistoryRow`), built in Python.

    Fifty rows of seven cells through the template engine cost a third of the
    history page; the same markup built here costs a tenth of that. Every
    upstream text goes through `_text` (escaped).
    """
    company_head, company_tail = _html_route("company-detail")
    sync_head, sync_tail = _html_route("sync-detail")
    rows = []
    for sync in syncs:
        label = sync.status_label
        failed = (
            f' <span class="bad-text">({sync.items_failed:,} failed)</span>'
            if sync.items_failed
            else ""
        )
        rows.append(
            f"<tr><td>{stamp(sync.sync_utc)}</td>"
            f'<td><a href="{company_head}{sync.company_uuid}{company_tail}">'
            f"{_text(sync.company_name)}</a></td>"
            f"<td>{_text(sync.platform_name)}</td>"
            f"<td>{_badge(sync.status_code, sync.category, label)} "
            f'<span class="muted">{_text(label)}</span></td>'
            f'<td class="num">{sync.items_total:,}{failed}</td>'
            f'<td class="num">{duration(sync.duration_s)}</td>'
            f'<td><a class="mono" href="{sync_head}{sync.sync_id}{sync_tail}">{sync.sync_id}</a>'
            "</td></tr>\n"
        )
    return _joined(rows)


def _selected(bound_field: Any) -> set[str]:
    value = bound_field.value()
    if value is None:
        return {""}
    values = value if isinstance(value, list | tuple) else [value]
    return {str(v) for v in values}


@register.simple_tag
def select_field(bound_field: Any) -> SafeString:
    """A flat single-choice `<select>` for a form field, without the widget templates.

    The filter forms render on every page view; each widget through Django's
    form renderer costs as much as a query.
    """
    chosen = _selected(bound_field)
    options = _joined(
        f'<option value="{_text(value)}"{" selected" if str(value) in chosen else ""}>'
        f"{_text(label)}</option>"
        for value, label in bound_field.field.choices
    )
    return format_html(
        '<select name="{}" id="{}">{}</select>',
        bound_field.html_name,
        bound_field.auto_id,
        options,
    )


@register.simple_tag
def code_checkboxes(
    bound_field: Any, groups: list[tuple[str, list[tuple[int, str]]]]
) -> SafeString:
    """The status-code chips, grouped by category, checked as the field's value says."""
    chosen = _selected(bound_field)
    name = _text(bound_field.html_name)
    parts = []
    for group, options in groups:
        chips = "".join(
            f'<label class="chip"><input type="checkbox" name="{name}" value="{code}"'
            f"{' checked' if str(code) in chosen else ''}> {_text(label)}</label>"
            for code, label in options
        )
        parts.append(f'<div class="code-group"><strong>{_text(group)}</strong>{chips}</div>')
    return _joined(parts)


# The dashboard's tables, built in Python like the history's rows: through the
# engine they cost more than the rest of the page. Every text from the
# upstream (names, platforms, messages) goes through `_text`, and so do the
# query strings, as `{{ range_query }}` would be.


@register.simple_tag
def code_rows(by_code: list[tuple[int, str, int, int]], history_url: str, query: str) -> SafeString:
    """The "By status code" table: each code's badge, meaning and count, linked to its syncs."""
    base = f"{_text(history_url)}?{_text(query)}"
    return _joined(
        f'<tr><td><span class="badge cat-{_text(category)}">{_text(code)}</span></td>'
        f"<td>{_text(text)}</td>"
        f'<td class="num"><a href="{base}&amp;code={_text(code)}" data-code="{_text(code)}">'
        f"{_text(thousands(n))}</a></td></tr>\n"
        for code, text, category, n in by_code
    )


@register.simple_tag
def failing_company_rows(rows: list[dict[str, Any]], history_url: str, query: str) -> SafeString:
    """The companies with the most failed syncs, each linked to its page and its failures."""
    head, tail = _html_route("company-detail")
    base = f"{_text(history_url)}?{_text(query)}&amp;category=failed&amp;company="
    return _joined(
        f'<tr><td><a href="{head}{_uuid(row["company"]["company_id"])}{tail}">'
        f"{_text(row['company']['name'])}</a> "
        f'<span class="muted">{_text(row["company"]["platform_name"])}</span></td>'
        f'<td class="num"><a href="{base}{_uuid(row["company"]["company_id"])}">'
        f"{_text(thousands(row['failed']))}</a></td><td>{brief(row['last'])}</td></tr>\n"
        for row in rows
    )


@register.simple_tag
def streak_rows(companies: list[dict[str, Any]], history_url: str) -> SafeString:
    """The longest failing streaks, each linked to its company and its syncs."""
    head, tail = _html_route("company-detail")
    base = f"{_text(history_url)}?range=all&amp;company="
    return _joined(
        f'<tr><td><a href="{head}{_uuid(c["company_id"])}{tail}">{_text(c["name"])}</a></td>'
        f'<td class="num"><a href="{base}{_uuid(c["company_id"])}">'
        f"{_text(c['failing_streak'])} in a row</a></td>"
        f"<td>since {brief(c['failing_since'])}</td></tr>\n"
        for c in companies
    )


@register.simple_tag
def long_running_rows(syncs: list[dict[str, Any]]) -> SafeString:
    """The syncs running longest, each linked to its detail."""
    head, tail = _html_route("sync-detail")
    return _joined(
        f'<tr><td><a href="{head}{_uuid(s["sync_id"])}{tail}" class="mono">'
        f"{_text(clip(s['sync_id'], 13))}</a></td>"
        f"<td>{_text(s['company']['name'])}</td><td>since {brief(s['sync_utc'])}</td></tr>\n"
        for s in syncs
    )


@register.simple_tag
def error_rows(errors: list[dict[str, Any]], history_url: str, query: str) -> SafeString:
    """The most frequent error groups, each linked to its syncs."""
    base = f"{_text(history_url)}?{_text(query)}&amp;fingerprint="
    return _joined(
        f'<tr><td class="message">{_text(clip(e["message"], 220))}</td>'
        f'<td class="num"><a href="{base}{_text(e["fingerprint"])}">'
        f"{_text(thousands(e['count']))}</a></td>"
        f'<td class="num">{_text(e["companies"])}</td></tr>\n'
        for e in errors
    )
