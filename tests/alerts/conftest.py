"""Fixtures of the alerts' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard import health_signals


@pytest.fixture
def announced(monkeypatch) -> Iterator[list[str]]:
    """The alerts' events the health signals announced, in order (nothing is evaluated);
    each test starts with a process that has recorded nothing."""
    events: list[str] = []
    monkeypatch.setattr("dashboard.health_signals.announce.changed", events.append)
    health_signals.forget()
    yield events
    health_signals.forget()
