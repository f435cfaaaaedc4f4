"""Storing a verified webhook event once per delivery ID, unless its company was purged.

The receiver's one write, on the path of every delivery: on PostgreSQL one
statement (an `INSERT ... SELECT` that skips a purged company's event, `ON
CONFLICT DO NOTHING` on the delivery ID, `RETURNING` the new row's ID), in
autocommit, so a delivery costs one round trip to the database; the portable
twin asks the purge records, then inserts in a transaction of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction

from ..models import PurgeRecord, WebhookEvent
from . import twins


@dataclass(frozen=True)
class NewEvent:
    delivery_id: str
    event_type: str
    body: str
    received_at: datetime
    company_id: uuid.UUID | None
    sync_id: uuid.UUID | None
    processed_at: datetime | None
    error: str


def store_postgresql(event: NewEvent) -> int | None:
    """The stored event's ID; None when nothing was stored (a duplicate, or a purged company)."""
    table, purged = WebhookEvent._meta.db_table, PurgeRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "
            "(delivery_id, event_type, body, received_at, company_id, sync_id, processed_at,"
            " attempts, error) "
            "SELECT %s, %s, %s, %s, %s::uuid, %s::uuid, %s, 0, %s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {purged} WHERE company_id = %s::uuid) "
            "ON CONFLICT (delivery_id) DO NOTHING RETURNING id",
            [
                event.delivery_id,
                event.event_type,
                event.body,
                event.received_at,
                event.company_id,
                event.sync_id,
                event.processed_at,
                event.error,
                event.company_id,
            ],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def store_portable(event: NewEvent) -> int | None:
    if (
        event.company_id is not None
        and PurgeRecord.objects.filter(company_id=event.company_id).exists()
    ):
        return None
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                delivery_id=event.delivery_id,
                event_type=event.event_type,
                body=event.body,
                received_at=event.received_at,
                company_id=event.company_id,
                sync_id=event.sync_id,
                processed_at=event.processed_at,
                error=event.error,
            ).pk
    except IntegrityError:
        return None


# Store a verified event once: its ID, or None (delivered before, or its company was purged).
store = twins(store_postgresql, store_portable)
