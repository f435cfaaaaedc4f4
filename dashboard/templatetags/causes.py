"""Upstream messages on a page: the cause first, the full text one click away.

Codat's messages open with the same hundred characters of wrapper
(`dashboard.fingerprint.split`), so a list cut short shows only that. These
show the cause, and keep the full text, wrapper and correlation ID and all, in
a `<details>` that opens without script (the site's CSP allows none inline).
Every value is escaped by `dashboard.markup.html`.

    {% load causes %}
    {{ item.message|cause }}            the cause, cut to 160 characters
    {{ item.message|cause:300 }}
    {% message_cause sync.error_message %}
    {% message_cause group.message 300 %}
"""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from dashboard.fingerprint import headline
from dashboard.markup import html

register = template.Library()

LIMIT = 160


def _limit(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return LIMIT


@register.filter
def cause(message: object, limit: object = LIMIT) -> str:
    """The message's cause, its real values kept, cut to `limit` characters."""
    if message is None:
        return ""
    return headline(str(message), _limit(limit))


def cause_markup(message: object, limit: int = LIMIT, summary: str | None = None) -> SafeString:
    """The cause (or `summary`), with the full message one click away.

    A message that is all cause, on one line and short enough, is just its
    text: there is nothing more to open.
    """
    if message is None or message == "":
        return html("{}", headline(summary, limit) if summary else "")
    full = str(message)
    shown = headline(full, limit) if summary is None else headline(summary, limit)
    if shown == full:
        return html("{}", full)
    return html(
        '<details class="message-cause"><summary>{}</summary><pre>{}</pre></details>',
        shown,
        full,
    )


@register.simple_tag
def message_cause(message: object, limit: object = LIMIT) -> SafeString:
    """`<details class="message-cause">`: the cause as its summary, the full text inside."""
    return cause_markup(message, _limit(limit))
