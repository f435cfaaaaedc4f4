"""Fetching syncs' items from the upstream and writing them in batches, typed.

Data types come from push operations, which name a transaction only once it
was pushed or refused. When a new sync's items include such ones, the push
operations are read (once, back to the oldest new sync) before those items are
written, so they are written once, with their data type. Items of syncs read
before, or that the operations did not name, are typed afterwards, reading the
operations only if what was read does not reach back far enough.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from django.conf import settings

from ..models import Company, PushItem, Sync
from ..upstream import TransactionRecord, Upstream
from ..vocabulary import OPEN_ITEM_STATUSES, ItemStatus
from .carried import Items
from .items import OPEN, write_items_many
from .push_operations import apply_types, read_data_types, refresh_data_types
from .records import BATCH, Stats

# A batch is written when it holds this many syncs (or BATCH items).
BATCH_SYNCS = 100


def fetch_items(client: Upstream, company_id: str, sync_id: str) -> list[TransactionRecord]:
    records: list[TransactionRecord] = []
    for page in client.transaction_pages(company_id, sync_id):
        records.extend(page)
    return records


def fetch_all(
    client: Upstream,
    company: Company,
    syncs: list[Sync],
    write: Callable[[Sync, list[TransactionRecord]], None],
    known: dict[int, list[TransactionRecord]] | None = None,
) -> None:
    """Fetch the syncs' items a few at a time; write each as it arrives.

    `known`: items already in hand by sync pk (a webhook's), written without a read.
    """
    company_id = str(company.company_id)
    if known:
        for sync in syncs:
            if sync.pk in known:
                write(sync, known[sync.pk])
        syncs = [s for s in syncs if s.pk not in known]
        if not syncs:
            return
    threads = max(1, settings.CODAT_FETCH_THREADS)
    if threads == 1 or len(syncs) == 1:
        for sync in syncs:
            write(sync, fetch_items(client, company_id, str(sync.sync_id)))
        return

    def job(sync: Sync) -> list[TransactionRecord]:
        # HTTP only: the threads never touch the database.
        return fetch_items(client, company_id, str(sync.sync_id))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: list[tuple[Sync, Future[list[TransactionRecord]]]] = []
        queue = iter(syncs)
        for sync in queue:
            pending.append((sync, pool.submit(job, sync)))
            if len(pending) >= threads * 2:
                break
        while pending:
            sync, future = pending.pop(0)
            try:
                records = future.result()
            except BaseException:
                for _, other in pending:
                    other.cancel()
                raise
            write(sync, records)
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(job, nxt)))


def _closed(records: list[TransactionRecord]) -> bool:
    return any(ItemStatus.parse(r.get("status")) not in OPEN for r in records)


class ItemBatch:
    """A few syncs' fetched items, written together (fewer statements), each typed."""

    def __init__(
        self,
        client: Upstream,
        company: Company,
        syncs: list[Sync],
        stats: Stats,
        types: dict[uuid.UUID, str] | None = None,
        typed_since: datetime | None = None,
    ):
        self.client, self.company, self.stats = client, company, stats
        self.pending: list[tuple[Sync, list[TransactionRecord]]] = []
        self.buffered = 0
        self.changed: list[Sync] = []  # syncs whose items were written
        self.seen_before = {s.pk for s in syncs if s.items_status_code is not None}
        self.new_since = min(
            (s.sync_utc for s in syncs if s.pk not in self.seen_before), default=None
        )
        self.types: dict[uuid.UUID, str] = dict(types or {})
        # Push operations were read back to here (or the types given cover the syncs since).
        self.typed_since: datetime | None = typed_since
        self.untyped: set[int] = set()  # syncs with closed items written without a type

    def add(self, sync: Sync, records: list[TransactionRecord]) -> None:
        self.pending.append((sync, records))
        self.buffered += len(records)
        if self.buffered >= BATCH or len(self.pending) >= BATCH_SYNCS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        if (
            self.typed_since is None
            and self.new_since is not None
            and any(s.pk not in self.seen_before and _closed(r) for s, r in self.pending)
        ):
            self.types = read_data_types(self.client, self.company, self.new_since)
            self.typed_since = self.new_since
        written, deleted = write_items_many(self.pending, self.types, self.untyped)
        for sync, records in self.pending:
            self.stats.syncs_fetched += 1
            self.stats.items_seen += len(records)
            self.stats.items_written += written[sync.pk]
            if written[sync.pk]:
                self.changed.append(sync)
        self.stats.items_deleted += deleted
        self.pending.clear()
        self.buffered = 0

    def type_the_rest(self) -> None:
        """Once all is written: type the closed items that were written without a type."""
        # Syncs read before keep the data types their items had; look for closed
        # items without one among those whose items changed.
        rewritten = [s.pk for s in self.changed if s.pk in self.seen_before]
        if rewritten:
            self.untyped.update(
                PushItem.objects.filter(sync_id__in=rewritten, data_type="")
                .exclude(status__in=OPEN_ITEM_STATUSES)
                .values_list("sync_id", flat=True)
                .distinct()
            )
        if not self.untyped:
            return
        since = min(s.sync_utc for s in self.changed if s.pk in self.untyped)
        if self.typed_since is not None and self.typed_since <= since:
            apply_types(self.company, self.types)
        else:
            refresh_data_types(self.client, self.company, since)


def ingest_items(
    client: Upstream,
    company: Company,
    syncs: list[Sync],
    stats: Stats,
    carried: Items | None = None,
) -> None:
    """Fetch and write the syncs' items, each with the data type it was pushed as.

    `carried`: the items of one of the syncs that a webhook brought
    (`carried.sync_items`), written as they are, typed with their types.
    """
    if carried is None:
        batch = ItemBatch(client, company, syncs, stats)
        fetch_all(client, company, syncs, batch.add)
    else:
        batch = ItemBatch(client, company, syncs, stats, carried.types, carried.typed_since)
        fetch_all(client, company, syncs, batch.add, {carried.sync_pk: carried.records})
    batch.flush()
    batch.type_the_rest()
