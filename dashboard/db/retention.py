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

# (a sync of the batch, another sync of its company that pushed one of its
# transactions without completing it, no later than it)
Pair = tuple[int, int]


def earlier_unfinished_postgresql(sync_pks: list[int]) -> set[Pair]:
    """One statement; both lookups per item are index probes, whatever the statistics say.

    Only items whose transaction has a current state can have an unfinished
    push elsewhere (a transaction never left unpushed has no row), so the
    state's key is probed first and most items stop there. `OFFSET 0` keeps
    each lateral subquery as written (see `db.state.pushes`): flattened, the
    planner may hash the whole state or item table for a batch of 500 syncs.
    """
    if not sync_pks:
        return set()
    items, syncs, states = (
        PushItem._meta.db_table,
        Sync._meta.db_table,
        TransactionState._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT p.sync_id, e.sync_id FROM {items} p "
            f"JOIN {syncs} s ON s.id = p.sync_id "
            f"CROSS JOIN LATERAL (SELECT 1 FROM {states} t WHERE t.company_id = s.company_id "
            f"AND t.transaction_id = p.transaction_id OFFSET 0) AS t "
            f"CROSS JOIN LATERAL (SELECT sync_id FROM {items} WHERE transaction_id = "
            f"p.transaction_id AND status <> %s AND sync_id <> p.sync_id OFFSET 0) AS e "
            f"JOIN {syncs} k ON k.id = e.sync_id "
            f"WHERE p.sync_id = ANY(%s) AND k.company_id = s.company_id "
            f"AND k.sync_utc <= s.sync_utc",
            [COMPLETED, list(sync_pks)],
        )
        return {(int(later), int(earlier)) for later, earlier in cursor.fetchall()}


def earlier_unfinished_portable(sync_pks: list[int]) -> set[Pair]:
    """The same, as two reads: the batch's items that have a state, then their unfinished pushes."""
    mine: dict[uuid.UUID, list[tuple[int, int, datetime]]] = defaultdict(list)
    for chunk in chunked(list(sync_pks), 500):
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
