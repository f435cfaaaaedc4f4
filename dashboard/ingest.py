"""Turning upstream records into mirror rows.

Every write is an upsert keyed by the upstream's IDs, done in bulk, with
duplicates inside a batch removed first, and skipped when nothing changed, so
running any of these twice, in any order or at the same time, leaves the same
rows. Only `dashboard.upstream` speaks HTTP; this module decides what to ask
for: a company refresh costs one request (its sync list) when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .db import items as db_items
from .db.items import ItemRow
from .fingerprint import fingerprint
from .models import (
    FAILED_ITEM_STATUSES,
    OPEN_ITEM_STATUSES,
    Category,
    Company,
    ConfigSnapshot,
    ItemStatus,
    PushItem,
    RefreshState,
    Sync,
    code_category,
    forget_platform_names,
)
from .upstream import (
    CompanyRecord,
    PushOperationRecord,
    SyncRecord,
    TransactionRecord,
    Upstream,
    UpstreamError,
)

log = logging.getLogger(__name__)

BATCH = 2000
CONFIG_MAX_AGE = timedelta(days=1)
PUSH_MAX_AGE = timedelta(days=1)
# An in-progress sync's items are re-read at most this often while its status
# stays the same (a long-running 1010 sync moves item by item).
OPEN_ITEMS_MAX_AGE = timedelta(minutes=5)
# When nothing changed, the refresh state's "last success" is rewritten only
# this often, so an idle refresh writes (almost) nothing.
HEARTBEAT = timedelta(minutes=15)


@dataclass
class Stats:
    companies: int = 0
    syncs_seen: int = 0
    syncs_written: int = 0
    syncs_fetched: int = 0
    items_seen: int = 0
    items_written: int = 0
    items_deleted: int = 0
    configs_written: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Stats) -> None:
        for name in (
            "companies",
            "syncs_seen",
            "syncs_written",
            "syncs_fetched",
            "items_seen",
            "items_written",
            "items_deleted",
            "configs_written",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def chunked(rows: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --- companies ---


def _platform(record: CompanyRecord) -> tuple[str, str, str]:
    for link in record.get("dataConnections") or []:
        if link.get("sourceType") == "Accounting":
            return (
                str(link.get("integrationKey") or ""),
                str(link.get("platformName") or ""),
                str(link.get("status") or ""),
            )
    return "", "", ""


_COMPANY_FIELDS = (
    "name",
    "description",
    "platform_key",
    "platform_name",
    "connection_status",
    "created",
)


def upsert_companies(records: Iterable[CompanyRecord]) -> list[Company]:
    """Insert or update companies; returns the rows for the given records."""
    by_id: dict[uuid.UUID, Company] = {}
    for record in records:
        company_id = _uuid(record.get("id"))
        if company_id is None:
            continue
        key, platform, status = _platform(record)
        by_id[company_id] = Company(
            company_id=company_id,
            name=str(record.get("name") or "")[:500],
            description=str(record.get("description") or ""),
            platform_key=key[:50],
            platform_name=platform[:100],
            connection_status=status[:50],
            created=parse_time(record.get("created")),
        )
    if not by_id:
        return []
    existing = {c.company_id: c for c in Company.objects.filter(company_id__in=list(by_id))}
    now = timezone.now()
    changed = []
    for company_id, row in by_id.items():
        old = existing.get(company_id)
        if old is None or any(getattr(old, f) != getattr(row, f) for f in _COMPANY_FIELDS):
            row.updated = now
            if old is not None:
                row.first_seen = old.first_seen
            changed.append(row)
    moved: dict[str, list[uuid.UUID]] = {}
    for row in changed:
        old = existing.get(row.company_id)
        if old is not None and old.platform_name != row.platform_name:
            moved.setdefault(row.platform_name, []).append(row.company_id)
    # A company and its syncs' copy of its platform change together, or not at all.
    with transaction.atomic():
        for batch in chunked(changed):
            Company.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["company_id"],
                update_fields=[*_COMPANY_FIELDS, "updated"],
            )
        for platform, company_ids in moved.items():
            Sync.objects.filter(company__company_id__in=company_ids).update(platform_name=platform)
    if changed:
        forget_platform_names()
        existing = {c.company_id: c for c in Company.objects.filter(company_id__in=list(by_id))}
    return [existing[cid] for cid in by_id if cid in existing]


def refresh_companies(client: Upstream) -> list[Company]:
    """Read every company from the upstream (paged) and upsert them."""
    companies: list[Company] = []
    for page in client.list_companies():
        companies.extend(upsert_companies(page))
    return companies


def ensure_company(client: Upstream, company_id: str) -> Company:
    company = Company.objects.filter(company_id=company_id).first()
    if company is None:
        upsert_companies([client.get_company(company_id)])
        company = Company.objects.get(company_id=company_id)
    return company


# --- syncs ---

_SYNC_FIELDS = (
    "status_code",
    "status_text",
    "error_message",
    "exception_message",
    "sync_utc",
    "data_pushed",
)


def _sync_values(record: SyncRecord) -> dict[str, Any] | None:
    sync_id = _uuid(record.get("syncId"))
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


def upsert_syncs(
    company: Company,
    records: Iterable[SyncRecord],
    *,
    completed_at: datetime | None = None,
) -> tuple[list[Sync], list[Sync]]:
    """Upsert a company's syncs. Returns (rows written, rows whose items to fetch).

    Items are fetched for syncs that are new, whose status changed since their
    items were read, or that are still in progress and were read a while ago.
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
            "items_total",
            "items_completed",
            "items_pending",
            "platform_name",
        )
    }
    now = timezone.now()
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
        written.append(row)
    for batch in chunked(written):
        Sync.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["sync_id"],
            update_fields=[
                "company",
                "platform_name",
                *_SYNC_FIELDS,
                "category",
                "error_fingerprint",
                "last_refreshed",
                "completed_at",
                "duration_s",
            ],
        )
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


# --- push items ---

_OPEN = frozenset(int(s) for s in OPEN_ITEM_STATUSES)
_FAILED = frozenset(int(s) for s in FAILED_ITEM_STATUSES)
_COMPLETED = int(ItemStatus.COMPLETED)

# An item as written: (status, message, fingerprint), keyed by (transaction ID, type).
ItemKey = tuple[uuid.UUID, str]
ItemValues = tuple[int, str | None, str]


def _item_rows(records: Iterable[TransactionRecord]) -> dict[ItemKey, ItemValues]:
    rows: dict[ItemKey, ItemValues] = {}
    for record in records:
        tid = _uuid(record.get("transactionId"))
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


def write_items(sync: Sync, status_code: int, records: list[TransactionRecord]) -> tuple[int, int]:
    """Make the sync's items exactly `records`. Returns (written, deleted)."""
    sync.status_code = status_code
    written, deleted = write_items_many([(sync, records)])
    return written.get(sync.pk, 0), deleted


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
    for sync, _ in batch:
        rows, old_rows = incoming[sync.pk], existing[sync.pk]
        count = 0
        completed = failed = pending = 0
        for (tid, itype), (status, message, print_) in rows.items():
            if status == _COMPLETED:
                completed += 1
            elif status in _FAILED:
                failed += 1
            elif status in _OPEN:
                pending += 1
            old = old_rows.get((tid, itype))
            if old is None or old[0] != status or old[1] != message:
                data_type = types.get(tid, "")
                changed.append((sync.pk, tid, itype, data_type, status, message, print_))
                count += 1
                if old is None and not data_type and status not in _OPEN and untyped is not None:
                    untyped.add(sync.pk)
        written[sync.pk] = count
        gone.extend(pk for key, (_, _, pk) in old_rows.items() if key not in rows)
        sync.items_total = len(rows)
        sync.items_completed = completed
        sync.items_failed = failed
        sync.items_pending = pending
        sync.category = sync_category(sync.status_code, failed)
        sync.items_status_code = sync.status_code
        sync.items_fetched_at = now
        counters.append(sync)
    with transaction.atomic():
        if changed:
            db_items.upsert(changed)
        for pks in chunked(gone):
            PushItem.objects.filter(pk__in=pks).delete()
        if counters:
            db_items.set_counters(counters, now)
    return written, len(gone)


def fetch_items(client: Upstream, company_id: str, sync_id: str) -> list[TransactionRecord]:
    records: list[TransactionRecord] = []
    for page in client.transaction_pages(company_id, sync_id):
        records.extend(page)
    return records


def data_types(operations: Iterable[PushOperationRecord]) -> dict[uuid.UUID, str]:
    """Each transaction's data type, from the push operations that wrote or refused it.

    When operations name one transaction with several data types, the data
    type named first (in the operations' order) wins.
    """
    by_type: dict[str, list[uuid.UUID]] = {}
    for operation in operations:
        data_type = str(operation.get("dataType") or "")[:50]
        if not data_type:
            continue
        ids = [
            (change.get("recordRef") or {}).get("id") for change in operation.get("changes") or []
        ]
        ids += [
            error.get("itemId") for error in (operation.get("validation") or {}).get("errors") or []
        ]
        for raw in ids:
            tid = _uuid(raw)
            if tid is not None:
                by_type.setdefault(data_type, []).append(tid)
    chosen: dict[uuid.UUID, str] = {}
    for data_type, typed_ids in by_type.items():
        for tid in typed_ids:
            chosen.setdefault(tid, data_type)
    return chosen


def apply_data_types(company: Company, operations: Iterable[PushOperationRecord]) -> int:
    """Set each item's data type from the push operations that wrote it."""
    return apply_types(company, data_types(operations))


def apply_types(company: Company, types: dict[uuid.UUID, str]) -> int:
    """Give the company's items that have no data type the one `types` names."""
    if not types:
        return 0
    sync_ids = list(Sync.objects.filter(company=company).values_list("pk", flat=True))
    if not sync_ids:
        return 0
    return db_items.set_types(sync_ids, types)


def read_data_types(client: Upstream, company: Company, since: datetime) -> dict[uuid.UUID, str]:
    """Read push operations newest first, back to `since`: each transaction's data type."""
    types: dict[uuid.UUID, str] = {}
    for page in client.push_operation_pages(str(company.company_id)):
        for tid, data_type in data_types(page).items():
            types.setdefault(tid, data_type)  # an earlier page's data type wins
        times = [t for op in page if (t := parse_time(op.get("requestedOnUtc")))]
        if not times or min(times) < since:
            break
    RefreshState.objects.filter(company=company).update(push_fetched_at=timezone.now())
    return types


def refresh_data_types(client: Upstream, company: Company, since: datetime) -> int:
    """Read push operations newest first, back to `since`, and apply their data types."""
    return apply_types(company, read_data_types(client, company, since))


# --- config ---


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def store_config(company: Company, config: dict[str, Any]) -> bool:
    """Keep a new snapshot when the config differs from the latest one."""
    digest = config_digest(config)
    now = timezone.now()
    with transaction.atomic():
        # Serialise writers for this company, so two refreshes add one snapshot.
        RefreshState.objects.select_for_update().filter(company=company).update(
            config_fetched_at=now
        )
        latest = (
            ConfigSnapshot.objects.filter(company=company).order_by("-fetched_at", "-pk").first()
        )
        if latest is not None and latest.digest == digest:
            return False
        ConfigSnapshot.objects.create(company=company, fetched_at=now, digest=digest, config=config)
        return True


# --- the refreshes ---


def _state(company: Company) -> RefreshState:
    state, _ = RefreshState.objects.get_or_create(company=company)
    return state


def _needs_config(state: RefreshState, syncs: list[Sync], now: datetime) -> bool:
    if state.config_fetched_at is None or state.config_fetched_at < now - CONFIG_MAX_AGE:
        return True
    return any(s.status_code == 4000 for s in syncs)


def _fetch_all(
    client: Upstream,
    company: Company,
    syncs: list[Sync],
    write: Callable[[Sync, list[TransactionRecord]], None],
) -> None:
    """Fetch the syncs' items a few at a time; write each as it arrives."""
    company_id = str(company.company_id)
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


def _ingest_items(client: Upstream, company: Company, syncs: list[Sync], stats: Stats) -> None:
    """Fetch and write the syncs' items, each with the data type it was pushed as.

    Data types come from push operations, which name a transaction only once
    it was pushed or refused. When a new sync's items include such ones, the
    push operations are read (once, back to the oldest new sync) before those
    items are written, so they are written once, with their data type. Items
    of syncs read before, or that the operations did not name, are typed
    afterwards, reading the operations only if what was read does not reach
    back far enough.
    """
    changed: list[Sync] = []
    pending: list[tuple[Sync, list[TransactionRecord]]] = []
    buffered = 0
    seen_before = {s.pk for s in syncs if s.items_status_code is not None}
    new_since = min((s.sync_utc for s in syncs if s.pk not in seen_before), default=None)
    types: dict[uuid.UUID, str] = {}
    typed_since: datetime | None = None  # push operations were read back to here
    untyped: set[int] = set()

    def closed(records: list[TransactionRecord]) -> bool:
        return any(ItemStatus.parse(r.get("status")) not in _OPEN for r in records)

    def flush() -> None:
        nonlocal buffered, typed_since, types
        if (
            typed_since is None
            and new_since is not None
            and any(sync.pk not in seen_before and closed(records) for sync, records in pending)
        ):
            types = read_data_types(client, company, new_since)
            typed_since = new_since
        written, deleted = write_items_many(pending, types, untyped)
        for sync, records in pending:
            stats.syncs_fetched += 1
            stats.items_seen += len(records)
            stats.items_written += written[sync.pk]
            if written[sync.pk]:
                changed.append(sync)
        stats.items_deleted += deleted
        pending.clear()
        buffered = 0

    def write(sync: Sync, records: list[TransactionRecord]) -> None:
        # Buffer a few syncs' items and write them together: fewer statements.
        nonlocal buffered
        pending.append((sync, records))
        buffered += len(records)
        if buffered >= BATCH or len(pending) >= 100:
            flush()

    _fetch_all(client, company, syncs, write)
    if pending:
        flush()
    # Syncs read before keep the data types their items had; look for closed
    # items without one among those whose items changed.
    rewritten = [s.pk for s in changed if s.pk in seen_before]
    if rewritten:
        untyped.update(
            PushItem.objects.filter(sync_id__in=rewritten, data_type="")
            .exclude(status__in=OPEN_ITEM_STATUSES)
            .values_list("sync_id", flat=True)
            .distinct()
        )
    if not untyped:
        return
    since = min(s.sync_utc for s in changed if s.pk in untyped)
    if typed_since is not None and typed_since <= since:
        apply_types(company, types)
    else:
        refresh_data_types(client, company, since)


def refresh_company(client: Upstream, company: Company, *, force: bool = False) -> Stats:
    """Bring one company's syncs and items up to date. One request if nothing changed."""
    stats = Stats(companies=1)
    now = timezone.now()
    state = _state(company)
    company_id = str(company.company_id)
    try:
        records = client.list_syncs(company_id)
        stats.syncs_seen = len(records)
        written, to_fetch = upsert_syncs(company, records)
        if force:
            to_fetch = list(Sync.objects.filter(company=company))
        stats.syncs_written = len(written)
        if to_fetch:
            full = {s.pk: s for s in Sync.objects.filter(pk__in=[s.pk for s in to_fetch])}
            _ingest_items(client, company, [full[s.pk] for s in to_fetch], stats)
        if written or stats.items_written:
            update_streak(company)
        if force or _needs_config(state, written, now):
            stats.configs_written += store_config(company, client.get_config(company_id))
    except UpstreamError as exc:
        _record_error(company, exc)
        raise
    _record_success(state, stats, now)
    return stats


def refresh_sync(
    client: Upstream, company_id: str, sync_id: str, *, completed_at: datetime | None = None
) -> Stats:
    """Refresh one sync (a webhook's target): its status and, if needed, its items."""
    stats = Stats()
    company = ensure_company(client, company_id)
    try:
        record = client.get_sync(company_id, sync_id)
        written, to_fetch = upsert_syncs(company, [record], completed_at=completed_at)
        stats.syncs_seen, stats.syncs_written = 1, len(written)
        if to_fetch:
            full = list(Sync.objects.filter(pk__in=[s.pk for s in to_fetch]))
            _ingest_items(client, company, full, stats)
        if written or stats.items_written:
            update_streak(company)
        state = _state(company)
        if _needs_config(state, written, timezone.now()) and any(
            s.status_code == 4000 for s in written
        ):
            stats.configs_written += store_config(company, client.get_config(company_id))
    except UpstreamError as exc:
        _record_error(company, exc)
        raise
    return stats


STREAK_WINDOW = 1000


def update_streak(company: Company) -> None:
    """Count the failed syncs in a row since the company's last success."""
    streak, since = 0, None
    recent = (
        Sync.objects.filter(company=company)
        .order_by("-sync_utc", "-id")
        .values_list("category", "sync_utc")[:STREAK_WINDOW]
    )
    for category, started in recent:
        if category == Category.IN_PROGRESS:
            continue
        if category != Category.FAILED:
            break
        streak, since = streak + 1, started
    if (company.failing_streak, company.failing_since) != (streak, since):
        Company.objects.filter(pk=company.pk).update(failing_streak=streak, failing_since=since)
        company.failing_streak, company.failing_since = streak, since


def _record_success(state: RefreshState, stats: Stats, now: datetime) -> None:
    wrote = stats.syncs_written or stats.items_written or stats.items_deleted
    if (
        wrote
        or state.last_error
        or state.paused_until
        or state.last_success is None
        or state.last_success < now - HEARTBEAT
    ):
        RefreshState.objects.filter(pk=state.pk).update(
            last_success=now, last_error="", last_error_at=None, paused_until=None
        )


def _record_error(company: Company, exc: UpstreamError) -> None:
    now = timezone.now()
    values: dict[str, Any] = {"last_error": str(exc)[:2000], "last_error_at": now}
    if exc.retry_after:
        values["paused_until"] = now + timedelta(seconds=exc.retry_after)
    RefreshState.objects.update_or_create(company=company, defaults=values)
