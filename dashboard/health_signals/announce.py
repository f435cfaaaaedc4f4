"""Telling the alerts that a signal changed, once the change is committed."""

from __future__ import annotations


def changed(event: str) -> None:
    # Imported late: the alerts app's models import the dashboard's.
    from alerts import triggers

    triggers.changed(event)
