"""Ingest's word that the mirror changed: one evaluation of the checks it can move,
soon after the change commits.

`changed(*events)` is called inside ingest's transaction. Calls in one
transaction make one callback on commit; after commit, an event already
announced less than `DEBOUNCE` seconds ago schedules nothing more, since the
evaluation scheduled then has not started yet: it runs `DEBOUNCE` seconds
after it was scheduled, no earlier than the cache forgets the event. So every
change is seen by an evaluation that starts after it committed, and a burst
of changes costs one task per event a second.

The cache is per process without Redis: each process then debounces its own
changes, which is more tasks, never a lost one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction

from .conditions import EVENTS, PROBLEMS, REFRESH, STREAK, SYNCS, UPSTREAM, WEBHOOKS

__all__ = ["PROBLEMS", "REFRESH", "STREAK", "SYNCS", "UPSTREAM", "WEBHOOKS", "changed"]

log = logging.getLogger(__name__)

# Seconds: the window in which one event's announcements make one evaluation,
# and that evaluation's delay. Keep it well inside the 5 s budget.
DEBOUNCE = 1


def changed(*events: str) -> None:
    """Evaluate the checks these events can move, once the current transaction commits."""
    unknown = set(events) - EVENTS
    if unknown:
        raise ValueError(f"unknown alert events: {sorted(unknown)}")
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        # One callback per transaction: a later call adds its events to it.
        for _, callback, _ in connection.run_on_commit:
            if isinstance(callback, _Announce):
                callback.events.update(events)
                return
    transaction.on_commit(_Announce(set(events)), robust=True)


@dataclass
class _Announce:
    events: set[str] = field(default_factory=set)

    def __call__(self) -> None:
        fresh = sorted(event for event in self.events if _first(event))
        if not fresh:
            return
        from .tasks import evaluate_task

        try:
            evaluate_task.apply_async(kwargs={"events": fresh}, countdown=DEBOUNCE)
        except Exception:
            # Let the next change schedule it (beat's evaluation catches up meanwhile).
            cache.delete_many([_key(event) for event in fresh])
            raise


def _first(event: str) -> bool:
    """Whether no evaluation of this event is already waiting to start."""
    try:
        return bool(cache.add(_key(event), 1, timeout=DEBOUNCE))
    except Exception:
        log.warning("alerts: the cache is unavailable; evaluating without debounce", exc_info=True)
        return True


def _key(event: str) -> str:
    return f"alerts:evaluate:{event}"
