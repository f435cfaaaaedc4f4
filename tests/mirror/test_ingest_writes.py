"""How ingest writes: item rows (arrays on PostgreSQL), counters, data types at insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard import ingest, vocabulary
from dashboard import models as mirror
from dashboard.fingerprint import fingerprint
from dashboard.ingest.fetch import ItemBatch
from sandbox import models as sb
from tests.support.mirror import assert_mirror_exact

# Messages that a text or array literal could get wrong.
AWKWARD = [
    None,
    "",
    'quote " and \\ backslash',
    "{braces, commas} and 'single' quotes",
    "NULL",
    "tab\tnewline\nend",
    "ünïcödé ✓ — 日本語",
    "x" * 5000,
]


@pytest.fixture
def sync(transactional_db) -> mirror.Sync:
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    return mirror.Sync.objects.create(
        company=company,
        sync_id=uuid.uuid4(),
        status_code=5130,
        sync_utc=datetime(2026, 11, 20, 10, tzinfo=UTC),
        category=vocabulary.Category.FAILED,
    )


def _records(statuses: list[str]) -> list[dict]:
    return [
        {"transactionId": str(uuid.uuid4()), "status": status, "message": message}
        for status, message in zip(statuses, AWKWARD, strict=False)
    ]


def test_items_and_counters_are_written_exactly(sync):
    statuses = ["Completed", "PushError", "ValidationError", "Pending", "Unknown", "Failed"]
    records = _records([*statuses, "Completed", "Completed"])
    types = {uuid.UUID(records[0]["transactionId"]): "bills"}
    untyped: set[int] = set()

    written, deleted = ingest.write_items_many([(sync, records)], types, untyped)

    assert (written, deleted) == ({sync.pk: len(records)}, 0)
    rows = {str(i.transaction_id): i for i in sync.items.all()}
    for record in records:
        row = rows[record["transactionId"]]
        assert row.message == record["message"]
        assert row.status == vocabulary.ItemStatus.parse(record["status"])
        assert row.fingerprint == fingerprint(record["message"])
        assert row.integration_type == "expenses"
    assert rows[records[0]["transactionId"]].data_type == "bills"
    assert {r.data_type for r in rows.values()} == {"bills", ""}
    # Closed items without a data type: this sync still needs its types.
    assert untyped == {sync.pk}
    sync.refresh_from_db()
    assert (sync.items_total, sync.items_completed, sync.items_failed, sync.items_pending) == (
        8,
        3,
        3,
        2,
    )
    assert sync.items_status_code == 5130
    assert sync.category == vocabulary.Category.FAILED


def test_a_rewrite_changes_only_what_changed_and_removes_what_went(sync):
    records = _records(["PushError", "Pending", "Completed"])
    ingest.write_items_many([(sync, records)])
    mirror.PushItem.objects.update(data_type="bills")
    sync.refresh_from_db()
    records[1] = {**records[1], "status": "Completed"}
    del records[2]
    sync.status_code = 2000

    written, deleted = ingest.write_items_many([(sync, records)])

    assert (written, deleted) == ({sync.pk: 1}, 1)
    assert sync.items.count() == 2
    # A row that was rewritten keeps the data type it had.
    assert set(sync.items.values_list("data_type", flat=True)) == {"bills"}
    sync.refresh_from_db()
    assert (sync.items_total, sync.items_completed, sync.items_failed) == (2, 1, 1)


def test_a_batch_writes_its_syncs_items_together_when_flushed(sync):
    # All running: their pending items change no current state yet.
    mirror.Sync.objects.filter(pk=sync.pk).update(status_code=1010)
    sync.refresh_from_db()
    others = [
        mirror.Sync.objects.create(
            company=sync.company,
            sync_id=uuid.uuid4(),
            status_code=1010,
            sync_utc=sync.sync_utc,
            category=vocabulary.Category.IN_PROGRESS,
        )
        for _ in range(2)
    ]
    syncs = [sync, *others]
    stats = ingest.Stats()
    # Open items only: nothing to type, so no upstream is asked.
    batch = ItemBatch(None, sync.company, syncs, stats)
    with CaptureQueriesContext(connection) as adding:
        for each in syncs:
            batch.add(each, _records(["Pending", "Pending"]))
    with CaptureQueriesContext(connection) as flushing:
        batch.flush()
        batch.type_the_rest()

    assert adding.captured_queries == []
    statements = [q["sql"].lstrip().split()[0].upper() for q in flushing.captured_queries]
    assert [s for s in statements if s in ("SELECT", "INSERT", "UPDATE", "DELETE")] == [
        "INSERT",
        "UPDATE",
    ]
    assert (stats.syncs_fetched, stats.items_seen, stats.items_written) == (3, 6, 6)
    assert mirror.PushItem.objects.count() == 6


def test_the_first_data_type_named_wins():
    tid = str(uuid.uuid4())
    operations = [
        {"dataType": "bills", "changes": [{"recordRef": {"id": tid}}]},
        {"dataType": "directCosts", "validation": {"errors": [{"itemId": tid}]}},
        {"dataType": "", "changes": [{"recordRef": {"id": str(uuid.uuid4())}}]},
        {"dataType": "transfers", "changes": [{"recordRef": {"id": "not-a-uuid"}}]},
    ]
    assert ingest.data_types(operations) == {uuid.UUID(tid): "bills"}


def test_apply_types_fills_only_items_without_one(sync):
    records = _records(["Completed", "PushError"])
    ingest.write_items_many([(sync, records)])
    first, second = (uuid.UUID(r["transactionId"]) for r in records)
    mirror.PushItem.objects.filter(transaction_id=first).update(data_type="bills")

    updated = ingest.apply_types(sync.company, {first: "transfers", second: "directCosts"})

    assert updated == 1
    assert dict(sync.items.values_list("transaction_id", "data_type")) == {
        first: "bills",
        second: "directCosts",
    }


def test_a_first_refresh_writes_each_item_once_with_its_data_type(upstream, small_estate):
    with CaptureQueriesContext(connection) as queries:
        for company in ingest.refresh_companies(upstream):
            ingest.refresh_company(upstream, company)

    assert_mirror_exact()
    updates = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("UPDATE")
        and mirror.PushItem._meta.db_table in q["sql"]
    ]
    assert updates == []
    closed = mirror.PushItem.objects.exclude(status__in=vocabulary.OPEN_ITEM_STATUSES)
    assert closed.exists()
    assert not closed.filter(data_type="").exists()
    # One read of the push operations per company whose syncs pushed anything.
    pushed = sb.Company.objects.filter(syncs__items__status=sb.ItemStatus.COMPLETED).distinct()
    assert mirror.RefreshState.objects.exclude(push_fetched_at=None).count() == pushed.count()
