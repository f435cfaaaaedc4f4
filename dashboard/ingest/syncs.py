"""Syncs: upserted from the upstream's records, and which of them need their items read."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from alerts import triggers

from .. import metrics
from ..fingerprint import fingerprint
from ..models import Company, RetryRequest, Sync
from ..upstream import SyncRecord
from ..vocabulary import Category, Learned, code_category
from .records import BATCH, chunked, parse_time, parse_uuid
from .state import chain_category

log = logging.getLogger(__name__)

# An in-progress sync's items are re-read at most this often while its status
# stays the same (a long-running 1010 sync moves item by item).
OPEN_ITEMS_MAX_AGE = timedelta(minutes=5)


_SYNC_FIELDS = (
    "status_code",
    "status_text",
    "error_message",
    "exception_message",
    "sync_utc",
    "data_pushed",
)


def _sync_values(record: SyncRecord) -> dict[str, Any] | None:
    sync_id = parse_uuid(record.get("syncId"))
    started = parse_time(record.get("syncUtc"))
    code = record.get("syncStatusCode")
    if sync_id is None or started is None or not isinstance(code, int):
        log.warning("skipping malformed sync record %r", str(record)[:200])
        return None
    return {
        "sync_id": sync_id,
        "status_code": code,
        "status_text": str(record.get("syncStatus") or "")[:200],
        "error_message": str(record.get("errorMessage") or ""),
        "exception_message": str(record.get("syncExceptionMessage") or ""),
        "sync_utc": started,
        "data_pushed": bool(record.get("dataPushed")),
    }


def sync_category(code: int, items_failed: int) -> int:
    category = code_category(code)
    if category == Category.SUCCESS and items_failed:
        return Category.FAILED
    return int(category)


def _retry_roots(new_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """New syncs that a retry request of ours started: the original each retries.

    A retry links to the original of its chain (the sync first retried), so a
    chain is the original and every sync whose `retry_of` is it.
    """
    if not new_ids:
        return {}
    return {
        new_sync_id: root or original
        for new_sync_id, original, root in RetryRequest.objects.filter(
            new_sync_id__in=new_ids
        ).values_list("new_sync_id", "sync_id", "sync__retry_of_id")
        if new_sync_id is not None
    }


def changed_at(
    values: dict[str, Any], old: Sync | None, ended: bool, hint: datetime | None
) -> datetime:
    """The best-known upstream time of a sync's change, as it is written.

    The hint (a webhook's time) for a sync that ended; else the earliest the
    change can have happened: the sync's start, or, for a sync the mirror had
    already written in another status, the time it wrote it (the upstream said
    that status then). A poll's lag is so an upper bound, never flattering.
    """
    if ended and hint is not None:
        return hint
    earliest: datetime = values["sync_utc"]
    if old is not None and old.last_refreshed is not None:
        earliest = max(earliest, old.last_refreshed)
    return earliest


def upsert_syncs(
    company: Company,
    records: Iterable[SyncRecord],
    *,
    completed_at: datetime | None = None,
    learned_by: int = Learned.POLL,
) -> tuple[list[Sync], list[Sync]]:
    """Upsert a company's syncs. Returns (rows written, rows whose items to fetch).

    Items are fetched for syncs that are new, whose status changed since their
    items were read, or that are still in progress and were read a while ago.
    A new sync or a new status is written with its freshness (`learned_at`,
    `changed_at`, `learned_by`) and its lag counted in the metrics, first
    reads (`Learned.BACKFILL`) apart; the same statement writes them.
    """
    incoming: dict[uuid.UUID, dict[str, Any]] = {}
    for record in records:
        values = _sync_values(record)
        if values is not None:
            incoming[values["sync_id"]] = values
    if not incoming:
        return [], []
    existing = {
        s.sync_id: s
        for s in Sync.objects.filter(sync_id__in=list(incoming)).only(
            "id",
            "sync_id",
            "company_id",
            *_SYNC_FIELDS,
            "category",
            "first_seen",
            "completed_at",
            "duration_s",
            "items_failed",
            "items_status_code",
            "items_fetched_at",
            "retry_of_id",
            "resolved_at",
            "items_total",
            "items_completed",
            "items_pending",
            "platform_name",
            "last_refreshed",
            "learned_at",
            "changed_at",
            "learned_by",
        )
    }
    now = timezone.now()
    retries = _retry_roots([sync_id for sync_id in incoming if sync_id not in existing])
    written: list[Sync] = []
    for sync_id, values in incoming.items():
        old = existing.get(sync_id)
        terminal = code_category(values["status_code"]) != Category.IN_PROGRESS
        if (
            old is not None
            and old.company_id == company.pk
            and old.platform_name == company.platform_name
            and all(getattr(old, f) == values[f] for f in _SYNC_FIELDS)
        ):
            continue
        row = Sync(company=company, platform_name=company.platform_name, **values)
        row.items_failed = old.items_failed if old else 0
        row.category = sync_category(values["status_code"], row.items_failed)
        row.error_fingerprint = fingerprint(values["error_message"] or values["exception_message"])
        row.retry_of_id = old.retry_of_id if old else retries.get(sync_id)
        row.chain_category = chain_category(
            row.category, row.retry_of_id, bool(old and old.resolved_at)
        )
        row.last_refreshed = now
        if old is None:
            row.first_seen = now
            row.completed_at = completed_at if terminal else None
        else:
            row.first_seen = old.first_seen
            row.completed_at = old.completed_at or (
                (completed_at or now) if terminal and not old.is_terminal else None
            )
        if row.completed_at is not None:
            row.duration_s = max(0, int((row.completed_at - row.sync_utc).total_seconds()))
        if old is None or old.status_code != row.status_code:
            ended = terminal and (old is None or not old.is_terminal)
            row.learned_at, row.learned_by = now, learned_by
            row.changed_at = changed_at(values, old, ended, completed_at)
            if learned_by != Learned.BACKFILL:
                lag = max(0.0, (now - row.changed_at).total_seconds())
                metrics.MIRROR_CHANGE_LAG.observe(lag, source=Learned(learned_by).label)
        else:
            row.learned_at, row.changed_at = old.learned_at, old.changed_at
            row.learned_by = old.learned_by
        written.append(row)
    for batch in chunked(written, BATCH):
        Sync.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["sync_id"],
            update_fields=[
                "company",
                "platform_name",
                *_SYNC_FIELDS,
                "category",
                "chain_category",
                "error_fingerprint",
                "last_refreshed",
                "completed_at",
                "duration_s",
                "learned_at",
                "changed_at",
                "learned_by",
            ],
        )
    if written:
        triggers.changed(triggers.SYNCS)
    rows = {
        s.sync_id: s
        for s in Sync.objects.filter(sync_id__in=list(incoming)).only(
            "id", "sync_id", "company_id", "status_code", "items_status_code", "items_fetched_at"
        )
    }
    to_fetch = []
    for row in rows.values():
        if row.items_status_code != row.status_code or (
            not row.is_terminal
            and (row.items_fetched_at is None or row.items_fetched_at < now - OPEN_ITEMS_MAX_AGE)
        ):
            to_fetch.append(row)
    return written, to_fetch
