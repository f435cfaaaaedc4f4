"""A sync's items from its webhook: what the event carries, completed with what the mirror knows.

A current-format event (`expenses.sync.*`) lists the sync's transactions,
each with its status and error message: the transactions endpoint's answer
less each item's integration type, and the push operations' less its data
type. Those two are a transaction's own: a retry re-pushes a transaction as
it was, and a sync read while it ran has its items in the mirror already. So
the webhook's items are written without reading the transactions endpoint
when the mirror knows every transaction's integration type and data type;
otherwise the push operations are read once (back to the sync's start),
which name the data type of every item pushed or refused, and with it its
integration type (the bank-feeds integration pushes bank transactions, the
expenses integration everything else). Only when an item stays unknown (an
item never attempted is in no push operation) is the sync's list read as
before: the mirror never guesses.

The webhook's words are the API's but one: its `Failed` is the API's
`ValidationError` (the two status sets differ only there), written as the
API's so that a later poll finds nothing changed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..db import chunked
from ..models import Company, PushItem, Sync
from ..upstream import TransactionRecord, Upstream
from .push_operations import read_data_types
from .records import parse_uuid

# The webhook's status words, as the transactions endpoint says them.
_STATUS = {
    "Unknown": "Unknown",
    "Pending": "Pending",
    "Completed": "Completed",
    "PushError": "PushError",
    "Failed": "ValidationError",
}
_OPEN = {"Unknown", "Pending"}
# The integration that pushes each data type; any other is the expenses integration.
_INTEGRATION_OF = {"bankTransactions": "bankfeeds"}
EXPENSES = "expenses"


@dataclass(frozen=True)
class WebhookItem:
    transaction_id: uuid.UUID
    status: str  # the API's word
    message: str | None


@dataclass
class Items:
    """A sync's items ready to write: its records, and the data type of each transaction."""

    sync_pk: int
    records: list[TransactionRecord]
    types: dict[uuid.UUID, str]
    typed_since: datetime


def webhook_items(body: Any) -> list[WebhookItem] | None:
    """The transactions a current-format event carries; None when it carries none to trust
    (the legacy format, a malformed entry, a transaction listed twice)."""
    if not isinstance(body, dict) or "eventType" not in body:
        return None
    payload = body.get("payload")
    listed = payload.get("transactions") if isinstance(payload, dict) else None
    if not isinstance(listed, list):
        return None
    items: list[WebhookItem] = []
    seen: set[uuid.UUID] = set()
    for entry in listed:
        if not isinstance(entry, dict):
            return None
        tid = parse_uuid(entry.get("id"))
        status = _STATUS.get(entry.get("status"))  # type: ignore[arg-type]
        message = entry.get("errorMessage")
        if tid is None or status is None or tid in seen:
            return None
        if message is not None and not isinstance(message, str):
            return None
        seen.add(tid)
        items.append(WebhookItem(tid, status, message))
    return items


def _known(company: Company, sync: Sync, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """(integration type, data type) of each transaction the mirror knows one way of pushing.

    This sync's own rows first (read while it ran); else the company's other
    pushes of it, when they agree on its integration type. A data type is
    "" when none is known.
    """
    own: dict[uuid.UUID, set[tuple[str, str]]] = defaultdict(set)
    other: dict[uuid.UUID, set[tuple[str, str]]] = defaultdict(set)
    for chunk in chunked(ids, 1000):
        for tid, itype, data_type, sync_pk in PushItem.objects.filter(
            sync__company_id=company.pk, transaction_id__in=chunk
        ).values_list("transaction_id", "integration_type", "data_type", "sync_id"):
            (own if sync_pk == sync.pk else other)[tid].add((itype, data_type))
    known: dict[uuid.UUID, tuple[str, str]] = {}
    for tid in ids:
        kinds = own.get(tid) or other.get(tid)
        if not kinds or len({itype for itype, _ in kinds}) != 1:
            continue
        itype = next(iter(kinds))[0]
        typed = sorted(dt for _, dt in kinds if dt)
        known[tid] = (itype, typed[0] if typed else "")
    return known


def sync_items(
    client: Upstream, company: Company, sync: Sync, carried: list[WebhookItem]
) -> Items | None:
    """The sync's items from its webhook, or None when they must be read from the upstream.

    Costs no request when the mirror knows every transaction, else one read
    of the push operations (or two, when they are many).
    """
    known = _known(company, sync, [item.transaction_id for item in carried])
    unknown = [item for item in carried if item.transaction_id not in known]
    if any(item.status in _OPEN for item in unknown):
        return None  # never attempted: no push operation names it
    untyped = [
        item
        for item in carried
        if item.status not in _OPEN and not known.get(item.transaction_id, ("", ""))[1]
    ]
    pushed: dict[uuid.UUID, str] = {}
    if unknown or untyped:
        pushed = read_data_types(client, company, sync.sync_utc)
        if any(item.transaction_id not in pushed for item in unknown):
            return None
    records: list[TransactionRecord] = []
    types: dict[uuid.UUID, str] = {}
    for item in carried:
        tid = item.transaction_id
        itype, data_type = known.get(tid, ("", ""))
        data_type = data_type or pushed.get(tid, "")
        if not itype:
            itype = _INTEGRATION_OF.get(data_type, EXPENSES)
        record: TransactionRecord = {
            "transactionId": str(tid),
            "status": item.status,
            "integrationType": itype,
        }
        if item.message is not None:
            record["message"] = item.message
        records.append(record)
        if data_type:
            types[tid] = data_type
    return Items(sync.pk, records, types, sync.sync_utc)
