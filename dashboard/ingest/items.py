"""Push items: each sync's items made exactly what the upstream lists, and its counters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from alerts import triggers

from ..db import items as db_items
from ..db.items import ItemRow
from ..fingerprint import fingerprint
from ..models import PushItem, Sync
from ..upstream import TransactionRecord
from ..vocabulary import FAILED_ITEM_STATUSES, OPEN_ITEM_STATUSES, ItemStatus
from . import state
from .records import BATCH, chunked, parse_uuid
from .syncs import sync_category

OPEN = frozenset(int(s) for s in OPEN_ITEM_STATUSES)
FAILED = frozenset(int(s) for s in FAILED_ITEM_STATUSES)
COMPLETED = int(ItemStatus.COMPLETED)

# An item as written: (status, message, fingerprint), keyed by (transaction ID, type).
ItemKey = tuple[uuid.UUID, str]
ItemValues = tuple[int, str | None, str]


def _item_rows(records: Iterable[TransactionRecord]) -> dict[ItemKey, ItemValues]:
    rows: dict[ItemKey, ItemValues] = {}
    for record in records:
        tid = parse_uuid(record.get("transactionId"))
        if tid is None:
            continue
        itype = str(record.get("integrationType") or "expenses")[:20]
        message = record.get("message")
        message = None if message is None else str(message)
        rows[(tid, itype)] = (
            int(ItemStatus.parse(record.get("status"))),
            message,
            fingerprint(message),
        )
    return rows


def write_items_many(
    batch: list[tuple[Sync, list[TransactionRecord]]],
    types: dict[uuid.UUID, str] | None = None,
    untyped: set[int] | None = None,
) -> tuple[dict[int, int], int]:
    """Make each sync's items exactly its records, in a few statements for all of them.

    Returns (rows written per sync, rows deleted). Items are read back only for
    syncs whose items were fetched before; a new sync has none to compare.
    A new row takes its data type from `types` (an existing row keeps its
    own); the syncs that got a closed row without one are added to `untyped`.
    """
    types = types or {}
    incoming = {sync.pk: _item_rows(records) for sync, records in batch}
    seen_before = [sync.pk for sync, _ in batch if sync.items_status_code is not None]
    existing: dict[int, dict[ItemKey, tuple[int, str | None, int]]] = {pk: {} for pk in incoming}
    for chunk in chunked(seen_before, 500):
        for sync_pk, tid, itype, status, message, pk in PushItem.objects.filter(
            sync_id__in=chunk
        ).values_list("sync_id", "transaction_id", "integration_type", "status", "message", "pk"):
            existing[sync_pk][(tid, itype)] = (status, message, pk)
    changed: list[ItemRow] = []
    written: dict[int, int] = {}
    gone: list[int] = []
    now = timezone.now()
    counters: list[Sync] = []
    touched: dict[int, tuple[set[uuid.UUID], set[uuid.UUID]]] = {}
    emptied: set[int] = set()  # syncs that lost an item: recounted whatever else changed
    for sync, _ in batch:
        rows, old_rows = incoming[sync.pk], existing[sync.pk]
        count = 0
        completed = failed = pending = 0
        for (tid, itype), (status, message, print_) in rows.items():
            if status == COMPLETED:
                completed += 1
            elif status in FAILED:
                failed += 1
            elif status in OPEN:
                pending += 1
            old = old_rows.get((tid, itype))
            if old is None or old[0] != status or old[1] != message:
                data_type = types.get(tid, "")
                changed.append((sync.pk, tid, itype, data_type, status, message, print_))
                count += 1
                if old is None and not data_type and status not in OPEN and untyped is not None:
                    untyped.add(sync.pk)
        written[sync.pk] = count
        # The current state's upkeep: a pending item of a sync still running
        # changes nothing yet (it is not outstanding); it is looked at again
        # when the sync ends, as its items are read again then.
        unfinished, completed_ids = touched.setdefault(sync.company_id, (set(), set()))
        running = not sync.is_terminal
        left: set[uuid.UUID] = set()  # transactions this sync left unpushed
        for (tid, _itype), (status, _, _) in rows.items():
            if status == COMPLETED:
                completed_ids.add(tid)
            elif not (running and status in OPEN):
                unfinished.add(tid)
                if status in FAILED or not running:
                    left.add(tid)
        if sync.items_status_code is None:
            # A sync seen for the first time: its items are outstanding unless a
            # later push completed them, which the upkeep below finds (and only
            # then writes the sync again).
            sync.items_outstanding = len(left)
        for key, (_, _, pk) in old_rows.items():
            if key not in rows:
                gone.append(pk)
                unfinished.add(key[0])
                emptied.add(sync.pk)
        sync.items_total = len(rows)
        sync.items_completed = completed
        sync.items_failed = failed
        sync.items_pending = pending
        sync.category = sync_category(sync.status_code, failed)
        sync.chain_category = state.chain_category(
            sync.category, sync.retry_of_id, sync.resolved_at is not None
        )
        sync.items_status_code = sync.status_code
        sync.items_fetched_at = now
        counters.append(sync)
    with transaction.atomic():
        # The current state's lock first, before any row is written: a writer
        # never holds a row that the lock's holder is waiting for.
        state.lock_companies(pk for pk, (open_ids, done) in touched.items() if open_ids or done)
        if changed:
            db_items.upsert(changed)
        for pks in chunked(gone, BATCH):
            PushItem.objects.filter(pk__in=pks).delete()
        if counters:
            db_items.set_counters(counters, now)
            # Items decide a sync's category: a platform's success rate may move.
            triggers.changed(triggers.SYNCS)
        state.track(touched, emptied=emptied, locked=True)
    return written, len(gone)
