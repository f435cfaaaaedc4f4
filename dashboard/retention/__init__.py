"""Retention and erasure: how long the mirror keeps what, and erasing one company.

`run` applies the retention policy: each `Step` removes one kind of row older
than its cut-off (`RETENTION_*_DAYS`; 0 keeps it for ever), batch by batch,
each batch its own transaction, until none is left or the run's time is spent.
Beat runs it every hour; `manage.py prune_history` runs it by hand (and counts
what it would remove with `--dry-run`). `history` decides which old syncs may
go and which stay however old; `events` the webhook deliveries; `purge` erases
one company's mirrored data and records that it was done.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .. import audit
from . import events, history, purge
from .purge import request_purge

log = logging.getLogger(__name__)

# A step's batches: (cut-off, dry run) -> the counts of each batch, by kind of row.
Batches = Callable[[datetime, bool], Iterator[Counter[str]]]


@dataclass(frozen=True)
class Step:
    """One kind of row that retention removes once older than `days` (0: kept for ever)."""

    name: str
    days: int
    batches: Batches


def one_by_one(
    prune: Callable[[datetime, int], int], kind: str, count: Callable[[datetime], int]
) -> Batches:
    """A step's batches from `prune(before, batch) -> rows removed` (0 once none is left)
    and `count(before)` for a dry run."""

    def batches(before: datetime, dry_run: bool) -> Iterator[Counter[str]]:
        if dry_run:
            yield Counter({kind: count(before)})
            return
        while removed := prune(before, settings.RETENTION_BATCH_ITEMS):
            yield Counter({kind: removed})

    return batches


def _history(before: datetime, dry_run: bool) -> Iterator[Counter[str]]:
    return history.batches(before, dry_run=dry_run)


def steps() -> list[Step]:
    """What retention removes, in this order: the light steps first, the history last.

    A new kind of row that grows for ever adds its step here.
    """
    return [
        Step(
            "webhook events",
            settings.RETENTION_WEBHOOK_DAYS,
            one_by_one(events.prune, "webhook events", events.count),
        ),
        Step(
            "audit events",
            settings.RETENTION_AUDIT_DAYS,
            one_by_one(audit.prune_batch, "audit events", audit.count),
        ),
        Step("history", settings.RETENTION_HISTORY_DAYS, _history),
    ]


@dataclass
class Outcome:
    """What one step removed (or would), before which time, and whether it got to the end."""

    step: str
    before: datetime | None  # None: kept for ever
    counts: Counter[str]
    finished: bool


def run(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Apply the retention policy; stop between batches once `max_seconds` have passed."""
    now = now or timezone.now()
    deadline = None if max_seconds is None else clock() + max_seconds
    outcomes = []
    for step in steps():
        if not step.days:
            outcomes.append(Outcome(step.name, None, Counter(), True))
            continue
        before = now - timedelta(days=step.days)
        counts: Counter[str] = Counter()
        finished = deadline is None or clock() < deadline
        if finished:
            for batch in step.batches(before, dry_run):
                counts.update(batch)
                if deadline is not None and clock() >= deadline:
                    finished = False
                    break
        outcomes.append(Outcome(step.name, before, counts, finished))
        if not dry_run:
            log.info(
                "retention %s before %s: %s%s",
                step.name,
                before.isoformat(),
                ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "nothing",
                "" if finished else " (time spent; the next run carries on)",
            )
    return outcomes


__all__ = [
    "Outcome",
    "Step",
    "events",
    "history",
    "one_by_one",
    "purge",
    "request_purge",
    "run",
    "steps",
]
