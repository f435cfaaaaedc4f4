"""Builds a deterministic estate of companies, syncs and transaction statuses.

Small estates (the `make run` demo, tests) go through the ORM; on PostgreSQL
large ones stream through COPY, so ten thousand companies, a million syncs and
twenty million items build in minutes on two cores. The same seed always
builds the same estate.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from . import catalogue
from .models import (
    Company,
    IdempotencyRecord,
    Item,
    RequestLog,
    RetryScript,
    Sync,
    SyncKind,
    WebhookDelivery,
)

# How often each code ends a sync of the history (a healthy company's syncs
# draw from these; a company with a standing problem ends its history in a
# streak of its failure code).
HISTORY_WEIGHTS = {**catalogue.HEALTHY_WEIGHTS, 4040: 0.3, 4220: 0.4, 4260: 0.5}
FAILURE_MODE_SHARE = {4000: 0.02, 4220: 0.02, 4040: 0.005, 4260: 0.015}
IN_PROGRESS_SHARE = 0.04


@dataclass
class EstateStats:
    companies: int = 0
    syncs: int = 0
    items: int = 0
    seconds: float = 0.0
    codes: dict[int, int] = field(default_factory=dict)


def reset() -> None:
    """Delete the whole sandbox estate and its retry scripts (not settings or consumers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE sandbox_item, sandbox_webhookdelivery, sandbox_retryscript, "
                "sandbox_sync, sandbox_company, sandbox_idempotencyrecord, sandbox_requestlog "
                "RESTART IDENTITY"
            )
        return
    for model in (
        Item,
        WebhookDelivery,
        RetryScript,
        Sync,
        Company,
        IdempotencyRecord,
        RequestLog,
    ):
        model.objects.all().delete()


def _next_id(model: type[Company] | type[Sync]) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def _company_rows(
    rng: random.Random, index: int, now: datetime, days: int
) -> tuple[Company, int, int]:
    platform = rng.choices(
        list(catalogue.PLATFORM_WEIGHTS), weights=list(catalogue.PLATFORM_WEIGHTS.values())
    )[0]
    failure_mode, roll, acc = 0, rng.random(), 0.0
    for code, share in FAILURE_MODE_SHARE.items():
        acc += share
        if roll < acc:
            failure_mode = code
            break
    created = now - timedelta(days=days + rng.uniform(1, 400))
    company = Company(
        company_id=catalogue.new_uuid(rng),
        name=catalogue.company_name(rng, index),
        description=f"{catalogue.Platform(platform).label} customer since {created:%B %Y}",
        created=created,
        platform=platform,
        connection_id=catalogue.new_uuid(rng),
        source_id=catalogue.new_uuid(rng),
        connection_status="Deauthorized" if failure_mode in (4040, 4220) else "Linked",
        failure_mode=failure_mode,
        config=catalogue.company_config(rng),
        config_modified=created + timedelta(days=rng.uniform(0, days)),
    )
    streak = rng.randint(2, 8) if failure_mode else 0
    return company, failure_mode, streak


def _generate(
    *,
    companies: int,
    syncs_per_company: int,
    items_per_sync: float,
    days: int,
    seed: int,
    now: datetime,
    company_start: int,
    sync_start: int,
    big_sync_items: int = 0,
) -> Iterator[tuple[Company, list[Sync], list[tuple]]]:
    """Yield (company, its syncs, its item tuples) one company at a time."""
    span = timedelta(days=days).total_seconds()
    next_sync = sync_start
    for index in range(companies):
        rng = random.Random(seed * 1_000_003 + index)
        company, failure_mode, streak = _company_rows(rng, index, now, days)
        company.pk = company_start + index
        offsets = sorted(rng.uniform(300, span) for _ in range(syncs_per_company))
        starts = [now - timedelta(seconds=o) for o in reversed(offsets)]
        in_progress_last = rng.random() < IN_PROGRESS_SHARE
        syncs: list[Sync] = []
        items: list[tuple] = []
        for number, started in enumerate(starts):
            last = number == len(starts) - 1
            if failure_mode and number >= len(starts) - streak:
                code = failure_mode
            else:
                code = catalogue.pick_code(rng, HISTORY_WEIGHTS)
            finalized = not (last and in_progress_last)
            if not finalized:
                code = 1000
                if rng.random() < 0.4:
                    # Started minutes ago (1000); the others have run for
                    # hours by now and report 1010.
                    started = now - timedelta(seconds=rng.uniform(30, 540))
                completes = started + timedelta(hours=rng.uniform(2, 6))
            else:
                completes = started + timedelta(seconds=rng.lognormvariate(3.5, 1.0))
            count = (
                0
                if code == 2040
                else min(int(rng.expovariate(1 / items_per_sync)) + 1, int(items_per_sync * 40) + 1)
            )
            if big_sync_items and index == 0 and number == 0:
                # One very large sync, for paging benchmarks.
                code, count = 5130, big_sync_items
            sync_pk = next_sync
            next_sync += 1
            outcomes = catalogue.item_outcomes(rng, company.platform, code, count)
            error, exception = catalogue.sync_messages(rng, company.platform, code)
            syncs.append(
                Sync(
                    pk=sync_pk,
                    sync_id=catalogue.new_uuid(rng),
                    company_id=company.pk,
                    kind=SyncKind.GENERATED,
                    started_at=started,
                    completes_at=completes,
                    finalized=finalized,
                    status_code=code,
                    data_pushed=code in (2000, 5120, 5130),
                    error_message=error,
                    exception_message=exception,
                    item_count=count,
                )
            )
            getbits = rng.getrandbits
            for position, (status, message) in enumerate(outcomes):
                integration, data_type = catalogue.item_kind(rng)
                items.append(
                    (
                        sync_pk,
                        position,
                        uuid.UUID(int=getbits(128), version=4),
                        integration,
                        data_type,
                        status,
                        message,
                    )
                )
        company.last_sync_at = syncs[-1].started_at if syncs else None
        yield company, syncs, items


_COMPANY_COLUMNS = (
    "id",
    "company_id",
    "name",
    "description",
    "created",
    "platform",
    "connection_id",
    "source_id",
    "connection_status",
    "failure_mode",
    "config",
    "config_modified",
    "last_sync_at",
)
_SYNC_COLUMNS = (
    "id",
    "sync_id",
    "company_id",
    "kind",
    "started_at",
    "completes_at",
    "finalized",
    "status_code",
    "data_pushed",
    "error_message",
    "exception_message",
    "item_count",
    "source_sync_ids",
)
_ITEM_COLUMNS = (
    "sync_id",
    "position",
    "transaction_id",
    "integration_type",
    "data_type",
    "status",
    "message",
)


def _copy_build(batches: Iterator, stats: EstateStats, tick: Callable[[EstateStats], None]) -> None:
    import json

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # One index built at the end beats twenty million random inserts.
        cursor.execute("DROP INDEX IF EXISTS sandbox_item_transaction")
    raw = connection.connection  # the psycopg connection under Django's
    pending: list[tuple[Company, list[Sync], list[tuple]]] = []

    def flush() -> None:
        # One transaction per batch keeps the queue of deferred foreign-key
        # checks short; a failed build leaves whole companies only.
        with transaction.atomic(), raw.cursor() as cur:
            with cur.copy(f"COPY sandbox_company ({', '.join(_COMPANY_COLUMNS)}) FROM STDIN") as cp:
                for company, _, _ in pending:
                    cp.write_row(
                        (
                            company.pk,
                            company.company_id,
                            company.name,
                            company.description,
                            company.created,
                            company.platform,
                            company.connection_id,
                            company.source_id,
                            company.connection_status,
                            company.failure_mode,
                            json.dumps(company.config),
                            company.config_modified,
                            company.last_sync_at,
                        )
                    )
            with cur.copy(f"COPY sandbox_sync ({', '.join(_SYNC_COLUMNS)}) FROM STDIN") as cp:
                for _, syncs, _ in pending:
                    for s in syncs:
                        cp.write_row(
                            (
                                s.pk,
                                s.sync_id,
                                s.company_id,
                                s.kind,
                                s.started_at,
                                s.completes_at,
                                s.finalized,
                                s.status_code,
                                s.data_pushed,
                                s.error_message,
                                s.exception_message,
                                s.item_count,
                                "[]",
                            )
                        )
            with cur.copy(f"COPY sandbox_item ({', '.join(_ITEM_COLUMNS)}) FROM STDIN") as cp:
                for _, _, items in pending:
                    for row in items:
                        cp.write_row(row)
        pending.clear()
        tick(stats)

    for company, syncs, items in batches:
        pending.append((company, syncs, items))
        stats.companies += 1
        stats.syncs += len(syncs)
        stats.items += len(items)
        for s in syncs:
            stats.codes[s.status_code] = stats.codes.get(s.status_code, 0) + 1
        if sum(len(i) for _, _, i in pending) >= 200_000 or len(pending) >= 500:
            flush()
    if pending:
        flush()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS sandbox_item_transaction ON sandbox_item (transaction_id)"
        )
        for table in ("sandbox_company", "sandbox_sync"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        cursor.execute("ANALYZE sandbox_company")
        cursor.execute("ANALYZE sandbox_sync")
        cursor.execute("ANALYZE sandbox_item")
        cursor.execute("SET synchronous_commit = on")


def _orm_build(batches: Iterator, stats: EstateStats, tick: Callable[[EstateStats], None]) -> None:
    for company, syncs, items in batches:
        Company.objects.bulk_create([company])
        Sync.objects.bulk_create(syncs, batch_size=500)
        Item.objects.bulk_create(
            [
                Item(
                    sync_id=r[0],
                    position=r[1],
                    transaction_id=r[2],
                    integration_type=r[3],
                    data_type=r[4],
                    status=r[5],
                    message=r[6],
                )
                for r in items
            ],
            batch_size=2000,
        )
        stats.companies += 1
        stats.syncs += len(syncs)
        stats.items += len(items)
        for s in syncs:
            stats.codes[s.status_code] = stats.codes.get(s.status_code, 0) + 1
        if stats.companies % 50 == 0:
            tick(stats)
    tick(stats)


def build_estate(
    *,
    companies: int,
    syncs_per_company: int,
    items_per_sync: float,
    days: int = 30,
    seed: int = 1,
    now: datetime | None = None,
    progress: Callable[[EstateStats], None] | None = None,
    big_sync_items: int = 0,
    use_copy: bool = True,
) -> EstateStats:
    """Add `companies` companies with their history to the estate."""
    started = time.monotonic()
    stats = EstateStats()
    batches = _generate(
        companies=companies,
        syncs_per_company=syncs_per_company,
        items_per_sync=items_per_sync,
        days=days,
        seed=seed,
        now=now or timezone.now(),
        company_start=_next_id(Company),
        sync_start=_next_id(Sync),
        big_sync_items=big_sync_items,
    )

    def tick(current: EstateStats) -> None:
        current.seconds = time.monotonic() - started
        if progress:
            progress(current)

    if connection.vendor == "postgresql" and use_copy:
        _copy_build(batches, stats, tick)
    else:
        with transaction.atomic():
            _orm_build(batches, stats, tick)
    stats.seconds = time.monotonic() - started
    return stats
