"""What an alert says: a one-line title, a plain-text body for people, and the
JSON a webhook receives. Rendered once, when a delivery is created, so every
retry sends the same words and the log shows what was sent.

Times state their zone ("2026-11-28 09:14 UTC") and links are absolute when
`SITE_URL` is set. Nothing here reads a channel's URL or secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .vocabulary import THRESHOLD, TransitionKind

if TYPE_CHECKING:
    from .models import Channel, Rule, Transition

TITLE_LIMIT = 200
VALUE_LIMIT = 300
NAMES_SHOWN = 10
DIGEST_LINES = 50
TEST_TITLE = "Test from Sync Health: this channel works"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)


def render(transition: Transition) -> Message:
    rule = transition.rule
    fired = transition.kind == TransitionKind.FIRED
    title = _one_line(f"{TransitionKind(transition.kind).label}: {transition.summary}")
    url = link(transition.path)
    # The title goes with it on every channel; the body carries the rest.
    lines = _detail_lines(transition.detail)
    lines += [
        f"Rule: {rule.name} ({_condition_text(rule)})",
        f"When: {when(transition.at)}",
    ]
    if url:
        lines.append(f"See: {url}")
    payload = {
        "type": "alert.fired" if fired else "alert.recovered",
        "id": str(transition.key),
        "rule": _rule_payload(rule),
        "subject": transition.subject,
        "label": transition.label,
        "summary": transition.summary,
        "detail": transition.detail,
        "url": url,
        "at": transition.at.isoformat(),
    }
    return Message(title=title, body="\n".join(lines), payload=payload)


def render_digest(
    rule: Rule, transitions: Sequence[Transition], *, total: int | None = None
) -> Message:
    """One summary of a digest rule's changes; `transitions` may be the first of
    `total` (a flapping rule must not make a summary of thousands of lines)."""
    total = len(transitions) if total is None else total
    started = sum(1 for t in transitions if t.kind == TransitionKind.FIRED)
    recovered = len(transitions) - started
    changes = "1 change" if total == 1 else f"{total} changes"
    title = _one_line(f"Summary: {changes} for {rule.name}")
    lines = []
    if len(transitions) == total:
        lines.append(f"Started: {started}, recovered: {recovered}")
    for item in transitions[:DIGEST_LINES]:
        url = link(item.path)
        text = f"{when(item.at)}  {TransitionKind(item.kind).label}: {_one_line(item.summary)}"
        lines.append(f"{text}  {url}" if url else text)
    if total > min(len(transitions), DIGEST_LINES):
        lines.append(f"and {total - min(len(transitions), DIGEST_LINES)} more")
    lines.append(f"Rule: {rule.name} ({_condition_text(rule)})")
    payload = {
        "type": "alert.digest",
        "rule": _rule_payload(rule),
        "count": total,
        "transitions": [
            {
                "type": "alert.fired" if item.kind == TransitionKind.FIRED else "alert.recovered",
                "id": str(item.key),
                "subject": item.subject,
                "summary": item.summary,
                "url": link(item.path),
                "at": item.at.isoformat(),
            }
            for item in transitions[:DIGEST_LINES]
        ],
    }
    return Message(title=title, body="\n".join(lines), payload=payload)


def render_test(channel: Channel, *, at: datetime | None = None) -> Message:
    at = at or timezone.now()
    lines = [
        f"Channel: {channel.name}",
        f"When: {when(at)}",
    ]
    if settings.SITE_URL:
        lines.append(f"From: {settings.SITE_URL}")
    payload = {"type": "alert.test", "channel": channel.name, "at": at.isoformat()}
    return Message(title=TEST_TITLE, body="\n".join(lines), payload=payload)


def when(moment: datetime) -> str:
    """The time in the site's zone, the zone named: "2026-11-28 09:14 UTC"."""
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def link(path: str) -> str:
    """The absolute link to a page (the path alone when SITE_URL is not set)."""
    if not path:
        return ""
    return f"{settings.SITE_URL}{path}" if path.startswith("/") else path


def _rule_payload(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "condition": rule.condition,
        "threshold": rule.threshold,
    }


def _condition_text(rule: Rule) -> str:
    meaning = THRESHOLD.get(rule.condition)
    text = rule.get_condition_display()
    if meaning is None:
        return text
    threshold = rule.threshold if rule.threshold is not None else meaning[1]
    return text.replace(" N", f" {threshold}", 1) if " N" in text else f"{text}: {threshold}"


def _detail_lines(detail: dict[str, Any]) -> list[str]:
    """The counts and companies a check recorded, one line each, for people."""
    lines = []
    for key, value in detail.items():
        name = str(key).replace("_", " ").capitalize()
        if isinstance(value, list):
            names = [_name_of(entry) for entry in value]
            shown = ", ".join(names[:NAMES_SHOWN])
            more = len(names) - NAMES_SHOWN
            lines.append(f"{name}: {shown} and {more} more" if more > 0 else f"{name}: {shown}")
        elif isinstance(value, dict):
            lines.append(f"{name}: {_bounded(json.dumps(value, sort_keys=True))}")
        elif value is not None and value != "":
            lines.append(f"{name}: {_bounded(_moment_or_text(value))}")
    return lines


def _moment_or_text(value: Any) -> str:
    """Checks keep times as ISO 8601 (the payload's form); people read them in the
    site's zone, the zone named, like every other time in the message."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        moment = parse_datetime(value)
        if moment is not None and timezone.is_aware(moment):
            return when(moment)
    return str(value)


def _name_of(entry: Any) -> str:
    if isinstance(entry, dict):
        entry = entry.get("name") or entry.get("label") or entry.get("id") or ""
    return _bounded(_one_line(str(entry)))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def _bounded(text: str) -> str:
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"
