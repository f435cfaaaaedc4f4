"""Alert rules and what their evaluation hands to delivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Rule


def make_rule(condition: str, *, made_ago: timedelta = timedelta(days=1), **fields) -> Rule:
    """An enabled rule made a while ago (problems' conditions count what came after)."""
    values = {"name": f"Rule for {condition}", "condition": condition, "hold_minutes": 0}
    values.update(fields)
    made = timezone.now() - made_ago
    return Rule.objects.create(created_at=made, updated_at=made, **values)


class Enqueued(list):
    """Each batch of transitions handed to `alerts.delivery.enqueue_for`, in order."""

    @property
    def transitions(self) -> list:
        return [t for batch in self for t in batch]


def capture_enqueued(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    """Record what evaluation hands to delivery, instead of delivering it."""
    calls = Enqueued()
    monkeypatch.setattr(
        "alerts.delivery.enqueue_for", lambda transitions: calls.append(transitions)
    )
    return calls
