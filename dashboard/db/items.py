"""Writing push items and the item counters on their syncs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.db import connection

from ..models import PushItem, Sync
from . import chunked, twins

# (sync, transaction ID, integration type, data type, status, message, fingerprint)
ItemRow = tuple[int, uuid.UUID, str, str, int, str | None, str]

COUNTER_FIELDS = (
    "items_total",
    "items_completed",
    "items_failed",
    "items_pending",
    "category",
    "chain_category",
    "items_outstanding",
    "items_status_code",
    "items_fetched_at",
)


def upsert_postgresql(rows: list[ItemRow]) -> None:
    """One INSERT ... ON CONFLICT per batch, its rows sent as one JSON array.

    One json.dumps costs the client far less than seven typed arrays (which
    psycopg dumps element by element), for the same work on the server.
    """
    table = PushItem._meta.db_table
    with connection.cursor() as cursor:
        for batch in chunked(rows, 5000):
            payload = json.dumps(
                [[s, str(t), i, d, st, m, f] for s, t, i, d, st, m, f in batch],
                separators=(",", ":"),
            )
            cursor.execute(
                f"INSERT INTO {table} "
                "(sync_id, transaction_id, integration_type, data_type, status, message,"
                " fingerprint) "
                "SELECT (r->>0)::bigint, (r->>1)::uuid, r->>2, r->>3, (r->>4)::smallint,"
                " r->>5, r->>6 FROM jsonb_array_elements(%s::jsonb) AS r "
                "ON CONFLICT (sync_id, transaction_id, integration_type) DO UPDATE SET "
                "status = EXCLUDED.status, message = EXCLUDED.message, "
                "fingerprint = EXCLUDED.fingerprint",
                [payload],
            )


def upsert_portable(rows: list[ItemRow]) -> None:
    for batch in chunked(rows, 2000):
        PushItem.objects.bulk_create(
            [
                PushItem(
                    sync_id=sync_pk,
                    transaction_id=tid,
                    integration_type=itype,
                    data_type=data_type,
                    status=status,
                    message=message,
                    fingerprint=print_,
                )
                for sync_pk, tid, itype, data_type, status, message, print_ in batch
            ],
            update_conflicts=True,
            unique_fields=["sync", "transaction_id", "integration_type"],
            update_fields=["status", "message", "fingerprint"],
        )


# Insert these items, or update the status, message and fingerprint of those that exist.
upsert = twins(upsert_postgresql, upsert_portable)


def set_counters_postgresql(syncs: list[Sync], now: datetime) -> None:
    """One UPDATE for all the syncs, their values sent as arrays."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Sync._meta.db_table} AS s SET "
            "items_total = v.total, items_completed = v.completed, items_failed = v.failed, "
            "items_pending = v.pending, category = v.category, chain_category = v.chain, "
            "items_outstanding = v.outstanding, items_status_code = v.code, "
            "items_fetched_at = %s "
            "FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::int[], "
            "%s::smallint[], %s::smallint[], %s::int[], %s::smallint[]) "
            "AS v(id, total, completed, failed, pending, category, chain, outstanding, code) "
            "WHERE s.id = v.id",
            [
                now,
                [s.pk for s in syncs],
                [s.items_total for s in syncs],
                [s.items_completed for s in syncs],
                [s.items_failed for s in syncs],
                [s.items_pending for s in syncs],
                [s.category for s in syncs],
                [s.chain_category for s in syncs],
                [s.items_outstanding for s in syncs],
                [s.items_status_code for s in syncs],
            ],
        )


def set_counters_portable(syncs: list[Sync], now: datetime) -> None:
    for sync in syncs:
        sync.items_fetched_at = now
    Sync.objects.bulk_update(syncs, list(COUNTER_FIELDS), batch_size=500)


# Write each sync's item counters (COUNTER_FIELDS), as fetched at `now`.
set_counters = twins(set_counters_postgresql, set_counters_portable)


def set_types_postgresql(sync_ids: list[int], types: dict[uuid.UUID, str]) -> int:
    # One statement, driven by the syncs (an index range) so that the plan
    # does not depend on the table's statistics.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PushItem._meta.db_table} AS p SET data_type = v.dt "
            "FROM unnest(%s::uuid[], %s::varchar[]) AS v(tid, dt) "
            "WHERE p.sync_id = ANY(%s::bigint[]) AND p.transaction_id = v.tid "
            "AND p.data_type = ''",
            [list(types), list(types.values()), sync_ids],
        )
        return cursor.rowcount


def set_types_portable(sync_ids: list[int], types: dict[uuid.UUID, str]) -> int:
    by_type: dict[str, list[uuid.UUID]] = {}
    for tid, data_type in types.items():
        by_type.setdefault(data_type, []).append(tid)
    updated = 0
    for data_type, typed_ids in by_type.items():
        for batch in chunked(sorted(typed_ids), 500):
            updated += PushItem.objects.filter(
                sync_id__in=sync_ids, transaction_id__in=batch, data_type=""
            ).update(data_type=data_type)
    return updated


# Give these syncs' items that have no data type the one `types` names; returns
# how many items changed.
set_types = twins(set_types_postgresql, set_types_portable)
