"""The push items of a date range, across syncs and companies, newest sync first.

Nothing here counts the range's items or reads them as a whole: a range of
a month holds millions. A page walks the range's syncs newest first on the
sync time index (with a platform, that platform's), at most `SCAN` of them
from the page's cursor, and reads the items of only the syncs whose own
counters (`items_failed`, …) say they hold some of the status asked for: the
first few whose counts fill a page, then, if those held fewer (the rest of
the cursor's sync, or a counter shared by two statuses), the others of the
stretch, in one query each. When the stretch runs out before the page
fills, the page says how far back it looked and offers the next stretch.

A cursor is (the sync's start, its pk, an item's pk): the next page begins
with that sync's items after that item (0: all of them), then the older syncs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from . import cursors
from .filters import SyncFilter
from .models import PushItem
from .problems.rows import ProblemRef, pushes_problems
from .selectors import filtered_syncs
from .vocabulary import ItemFilter

PAGE_SIZE = 50
# The syncs one page examines at most.
SCAN = 1000
# A cursor's values: the sync's start, its pk, the last item's pk shown.
CURSOR = ((datetime, False), (int, False), (int, False))
# The sync's counter of the items each filter shows (pending counts unknown items too).
_COUNTERS = {
    None: "items_total",
    ItemFilter.FAILED: "items_failed",
    ItemFilter.COMPLETED: "items_completed",
    ItemFilter.PENDING: "items_pending",
    ItemFilter.UNKNOWN: "items_pending",
}

Cursor = tuple[datetime, int, int]


def encode_cursor(sync_utc: datetime, sync_pk: int, item_pk: int) -> str:
    return cursors.encode(sync_utc, sync_pk, item_pk)


def decode_cursor(raw: str) -> Cursor | None:
    """The cursor a page link holds, typed; None if it is not one of this page's."""
    values = cursors.decode(raw, CURSOR)
    return None if values is None else (values[0], values[1], values[2])


@dataclass
class PushedPage:
    """One page of the range's push items, and how far back it looked."""

    # Each item (its sync and company read with it) and its problem, if any.
    rows: list[tuple[PushItem, ProblemRef | None]] = field(default_factory=list)
    # Where the next page starts; None: the range holds nothing older.
    next_cursor: str | None = None
    # The page filled up (else it examined every sync of its stretch).
    full: bool = False
    # The syncs examined: from `newest` (None: the range's newest) back to `oldest`.
    examined: int = 0
    newest: datetime | None = None
    oldest: datetime | None = None
    # The stretch stopped at `SCAN` syncs before the range ended.
    stopped: bool = False

    @property
    def scan(self) -> int:
        return SCAN


def _from_cursor(sync_utc: datetime, sync_pk: int) -> Q:
    """The cursor's sync and the syncs after it, newest first; the first term bounds the index."""
    return Q(sync_utc__lte=sync_utc) & (
        Q(sync_utc__lt=sync_utc) | Q(sync_utc=sync_utc, pk__lte=sync_pk)
    )


def _items(
    syncs: Sequence[tuple[int, datetime]],
    status: ItemFilter | None,
    after: Cursor | None,
    limit: int,
) -> list[PushItem]:
    """The first `limit` items of these syncs ((pk, start), newest first), newest sync first,
    in each by pk.

    The syncs' span of starts repeats what their keys say, so that no plan
    reads the syncs' side of the join beyond them.
    """
    if not syncs or limit <= 0:
        return []
    items = PushItem.objects.filter(
        sync_id__in=sorted(pk for pk, _ in syncs),
        sync__sync_utc__lte=syncs[0][1],
        sync__sync_utc__gte=syncs[-1][1],
    ).select_related("sync__company")
    if status is not None:
        items = items.filter(status__in=status.statuses)
    if after is not None:
        items = items.exclude(sync_id=after[1], pk__lte=after[2])
    return list(items.order_by("-sync__sync_utc", "-sync_id", "pk")[:limit])


def page(
    filters: SyncFilter, status: ItemFilter | None = None, after: Cursor | None = None
) -> PushedPage:
    """A page of the push items of the filter's range (and platform) with this status."""
    counter = _COUNTERS[status]
    walk = filtered_syncs(filters).order_by("-sync_utc", "-pk")
    if after is not None:
        walk = walk.filter(_from_cursor(after[0], after[1]))
    stretch: list[tuple[int, datetime, int]] = list(
        walk.values_list("pk", "sync_utc", counter)[: SCAN + 1]
    )
    beyond = stretch[SCAN] if len(stretch) > SCAN else None
    stretch = stretch[:SCAN]
    holding = [(pk, utc, n) for pk, utc, n in stretch if n]
    # The syncs whose counts fill the page; the cursor's own sync counts for
    # nothing (some of its items were on the pages before).
    first = 0
    expected = 0
    while first < len(holding) and expected <= PAGE_SIZE:
        pk, _utc, n = holding[first]
        if after is None or pk != after[1]:
            expected += n
        first += 1
    keys = [(pk, utc) for pk, utc, _n in holding]
    items = _items(keys[:first], status, after, PAGE_SIZE + 1)
    if len(items) <= PAGE_SIZE:
        items += _items(keys[first:], status, after, PAGE_SIZE + 1 - len(items))
    result = PushedPage(examined=len(stretch), newest=after[0] if after is not None else None)
    if len(items) > PAGE_SIZE:
        items = items[:PAGE_SIZE]
        last = items[-1]
        result.full = True
        result.next_cursor = encode_cursor(last.sync.sync_utc, last.sync_id, last.pk)
    elif beyond is not None:
        result.stopped = True
        result.oldest = stretch[-1][1]
        result.next_cursor = encode_cursor(beyond[1], beyond[0], 0)
    groups = pushes_problems([(item.sync, item) for item in items])
    result.rows = [(item, groups.get(item.pk)) for item in items]
    return result
