"""Reading what retention must keep: the older unfinished pushes of a batch's transactions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import Exists, OuterRef

from ..models import PushItem, Sync, TransactionState
from ..vocabulary import ItemStatus
from . import chunked, twins

COMPLETED = int(ItemStatus.COMPLETED)

# A sync of a batch: its pk, its company's pk and its start (syncUtc).
SyncRow = tuple[int, int, datetime]
# (a sync of the batch, another sync of its company that pushed one of its
# transactions without completing it, no later than it)
Pair = tuple[int, int]


def earlier_unfinished_postgresql(syncs: list[SyncRow]) -> set[Pair]:
    """One statement, every lookup an index probe whatever the statistics say.

    Only an item whose transaction has a current state can have an unfinished
    push elsewhere (a transaction never left unpushed has no row), so the
    state's key is probed first and most items stop there; the other pushes
    are read only for the rest (the second subquery reads the first's
    column, which fixes that order). `OFFSET 0` keeps each subquery as
    written (see `db.state.pushes`): flattened, the planner hashes the whole
    syncs table, or probes every item before its state.
    """
    if not syncs:
        return set()
    items, sync_table, states = (
        PushItem._meta.db_table,
        Sync._meta.db_table,
        TransactionState._meta.db_table,
    )
    pks, companies, starts = zip(*syncs, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT b.id, e.sync_id "
            f"FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS b(id, company, start) "
            f"JOIN {items} p ON p.sync_id = b.id "
            f"CROSS JOIN LATERAL (SELECT t.transaction_id FROM {states} t "
            f"WHERE t.company_id = b.company AND t.transaction_id = p.transaction_id "
            f"OFFSET 0) AS t "
            f"CROSS JOIN LATERAL (SELECT o.sync_id FROM {items} o "
            f"JOIN {sync_table} k ON k.id = o.sync_id "
            f"WHERE o.transaction_id = t.transaction_id AND o.status <> %s "
            f"AND o.sync_id <> b.id AND k.company_id = b.company AND k.sync_utc <= b.start "
            f"OFFSET 0) AS e",
            [list(pks), list(companies), list(starts), COMPLETED],
        )
        return {(int(later), int(earlier)) for later, earlier in cursor.fetchall()}


def earlier_unfinished_portable(syncs: list[SyncRow]) -> set[Pair]:
    """The same, as two reads: the batch's items that have a state, then their unfinished pushes."""
    mine: dict[uuid.UUID, list[tuple[int, int, datetime]]] = defaultdict(list)
    for chunk in chunked([pk for pk, _, _ in syncs], 500):
        has_state = TransactionState.objects.filter(
            company_id=OuterRef("sync__company_id"), transaction_id=OuterRef("transaction_id")
        )
        for tid, sync_pk, company_pk, started in (
            PushItem.objects.filter(sync_id__in=chunk)
            .filter(Exists(has_state))
            .values_list("transaction_id", "sync_id", "sync__company_id", "sync__sync_utc")
        ):
            mine[tid].append((sync_pk, company_pk, started))
    pairs: set[Pair] = set()
    for chunk in chunked(list(mine), 500):
        for tid, sync_pk, company_pk, started in (
            PushItem.objects.filter(transaction_id__in=chunk)
            .exclude(status=COMPLETED)
            .values_list("transaction_id", "sync_id", "sync__company_id", "sync__sync_utc")
        ):
            for later, company, later_start in mine[tid]:
                if company == company_pk and sync_pk != later and started <= later_start:
                    pairs.add((later, sync_pk))
    return pairs


# For each sync of a batch, the other syncs of its company that pushed one of
# its transactions no later than it without completing it.
earlier_unfinished = twins(earlier_unfinished_postgresql, earlier_unfinished_portable)
