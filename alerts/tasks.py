"""The alerts' evaluation task: thin, safe to run twice (the engine records each
transition once). Deliveries have their own tasks (`alerts.delivery_tasks`)."""

from __future__ import annotations

from celery import shared_task

from . import engine


@shared_task(name="alerts.evaluate")
def evaluate_task(events: list[str] | None = None) -> int:
    """Evaluate the rules these events can move; beat calls it with none: every rule,
    so that hold times run out and time-based conditions move with the clock."""
    return len(engine.evaluate(events=frozenset(events) if events is not None else None))
