"""What the open pages ask for again while they stay open: the syncs newer than the history
shows, the syncs that arrived since a person's last visit, and the first import's progress.

Each is one bounded read: an index probe with a LIMIT, or (the import) one pass over the
companies, kept briefly in the cache because every page shows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q

from .filters import SyncFilter
from .models import Company, Sync
from .selectors import filtered_syncs
from .vocabulary import Category

log = logging.getLogger(__name__)

# The history says "50+ new syncs" past this: the count stops there.
NEW_SYNCS_BOUND = 50
# The dashboard says "1,000+ new syncs since your last visit" past this.
ARRIVED_BOUND = 1_000
# Once the first import has finished, every page asks again this rarely.
IMPORT_DONE_CACHE_SECONDS = 60
IMPORT_CACHE_KEY = "live:first-import"


def poll_seconds() -> int:
    """How often the live regions ask again (`LIVE_POLL_SECONDS`)."""
    return int(settings.LIVE_POLL_SECONDS)


@dataclass(frozen=True)
class Bounded:
    """A count that stops at `bound`: `capped` says there are more."""

    count: int
    capped: bool


def newer_syncs(filters: SyncFilter, newest: tuple[datetime, int] | None) -> Bounded:
    """How many syncs the filter selects that come before `newest` (the (start, pk) of
    the history's top row) in its newest-first order; all of them with no top row.

    Read on the history's time index from `newest` upwards, stopping at the bound.
    """
    syncs = filtered_syncs(filters)
    if newest is not None:
        moment, pk = newest
        syncs = syncs.filter(sync_utc__gte=moment).exclude(sync_utc=moment, pk__lte=pk)
    n = syncs.order_by().values("pk")[: NEW_SYNCS_BOUND + 1].count()
    return Bounded(min(n, NEW_SYNCS_BOUND), n > NEW_SYNCS_BOUND)


@dataclass(frozen=True)
class Arrived:
    """The syncs the mirror first saw after a moment, and how many of them failed."""

    since: datetime
    count: int
    capped: bool
    failed: int


def arrived_since(since: datetime) -> Arrived:
    """The syncs first seen after `since` (up to the bound), from their own index."""
    newest = Sync.objects.filter(first_seen__gt=since).order_by().values("pk")
    figures = Sync.objects.filter(pk__in=newest[: ARRIVED_BOUND + 1]).aggregate(
        n=Count("pk"), failed=Count("pk", filter=Q(category=Category.FAILED))
    )
    n = int(figures["n"])
    return Arrived(since, min(n, ARRIVED_BOUND), n > ARRIVED_BOUND, int(figures["failed"]))


@dataclass(frozen=True)
class ImportProgress:
    """The companies the mirror knows, and how many it has read (or tried to) once."""

    total: int
    read: int
    failed: int  # never read: every attempt so far failed

    @property
    def done(self) -> int:
        return self.read + self.failed

    @property
    def running(self) -> bool:
        """Some company known has not been read yet: its syncs are still to come."""
        return self.done < self.total

    @property
    def percent(self) -> int:
        return self.done * 100 // self.total if self.total else 100


def first_import() -> ImportProgress:
    """The first import's progress: one pass over the companies and their refresh states,
    kept for a poll's length while it runs (a minute once it has finished). The cache
    being down costs the query, never the page."""
    try:
        progress = cache.get(IMPORT_CACHE_KEY)
    except Exception:  # the cache is an optimisation here
        log.warning("first import: the cache is unavailable", exc_info=True)
        progress = None
    if isinstance(progress, ImportProgress):
        return progress
    figures = Company.objects.aggregate(
        total=Count("pk"),
        read=Count("pk", filter=Q(refresh__last_success__isnull=False)),
        failed=Count(
            "pk",
            filter=Q(refresh__last_success__isnull=True, refresh__last_error_at__isnull=False),
        ),
    )
    progress = ImportProgress(int(figures["total"]), int(figures["read"]), int(figures["failed"]))
    timeout = poll_seconds() if progress.running else IMPORT_DONE_CACHE_SECONDS
    try:
        cache.set(IMPORT_CACHE_KEY, progress, timeout)
    except Exception:
        log.warning("first import: the cache is unavailable", exc_info=True)
    return progress
