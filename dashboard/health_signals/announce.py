"""Telling the alerts that a signal changed (they evaluate once the change commits)."""

from __future__ import annotations

from alerts import triggers


def changed(event: str) -> None:
    triggers.changed(event)
