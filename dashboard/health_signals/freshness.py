"""The mirror's lag: how long after a sync changed upstream the mirror knew.

Ingest writes each change (a new sync, a new status) with when it learned of
it and the best-known time it happened upstream (`ingest.syncs.changed_at`):
a webhook's own time; for a poll, the earliest the change can have happened,
so a poll's lag is an upper bound. A company's first read brings history, not
news, and is not counted. Read here for the dashboard and `/metrics`: the
changes learned in a window (each sync's latest), through a partial index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..models import Sync
from ..vocabulary import Learned

# The dashboard's and the metrics' window.
WINDOW = timedelta(hours=1)
# At most this many of the window's changes are read (the latest): a bound on the read.
CAP = 50_000


@dataclass(frozen=True)
class Lag:
    """The lag's 95th percentile in seconds over the window's changes, overall and by source."""

    changes: int
    p95_s: float | None
    by_source: dict[str, tuple[int, float]] = field(default_factory=dict)  # label -> (n, p95)


def p95(samples: list[float]) -> float:
    """The nearest-rank 95th percentile of non-empty samples."""
    ordered = sorted(samples)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 n)
    return ordered[rank - 1]


def mirror_lag(since: datetime) -> Lag:
    """The lag of the changes the mirror learned of since `since` (first reads apart)."""
    rows = (
        Sync.objects.filter(learned_by__gt=Learned.BACKFILL, learned_at__gte=since)
        .order_by("-learned_at")
        .values_list("learned_at", "changed_at", "learned_by")[:CAP]
    )
    samples: dict[int, list[float]] = {}
    for learned_at, changed_at, learned_by in rows:
        if learned_at is None or changed_at is None:
            continue
        lag = max(0.0, (learned_at - changed_at).total_seconds())
        samples.setdefault(learned_by, []).append(lag)
    every = [lag for lags in samples.values() for lag in lags]
    if not every:
        return Lag(0, None)
    return Lag(
        len(every),
        p95(every),
        {
            Learned(source).label: (len(lags), p95(lags))
            for source, lags in sorted(samples.items(), reverse=True)
        },
    )
