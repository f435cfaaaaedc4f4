"""A sync's platform column is its company's accounting platform, whoever wrote it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from dashboard import ingest
from dashboard import models as mirror

pytestmark = pytest.mark.django_db


def _company_record(company_id: uuid.UUID, platform: str) -> dict:
    return {
        "id": str(company_id),
        "name": "Acme",
        "dataConnections": [
            {"sourceType": "Accounting", "platformName": platform, "status": "Linked"}
        ],
    }


def _sync_record(code: int = 2000) -> dict:
    return {
        "syncId": str(uuid.uuid4()),
        "syncUtc": "2026-11-20T10:00:00Z",
        "syncStatusCode": code,
        "syncStatus": "x",
    }


def test_ingest_copies_the_platform_and_follows_a_change_of_it():
    company_id = uuid.uuid4()
    (company,) = ingest.upsert_companies([_company_record(company_id, "Xero")])
    records = [_sync_record(), _sync_record(5130)]
    written, _ = ingest.upsert_syncs(company, records)
    assert {s.platform_name for s in mirror.Sync.objects.all()} == {"Xero"}

    # The company moves to another platform: its syncs follow.
    (company,) = ingest.upsert_companies([_company_record(company_id, "Sage Intacct")])
    assert {s.platform_name for s in mirror.Sync.objects.all()} == {"Sage Intacct"}
    # A sync re-read later with no other change keeps the company's platform.
    written, _ = ingest.upsert_syncs(company, records)
    assert written == []
    assert {s.platform_name for s in mirror.Sync.objects.all()} == {"Sage Intacct"}


def test_a_sync_left_behind_by_another_writer_is_corrected_on_its_next_read():
    company_id = uuid.uuid4()
    (company,) = ingest.upsert_companies([_company_record(company_id, "Xero")])
    records = [_sync_record()]
    ingest.upsert_syncs(company, records)
    mirror.Sync.objects.update(platform_name="")
    written, _ = ingest.upsert_syncs(company, records)
    assert len(written) == 1
    assert mirror.Sync.objects.get().platform_name == "Xero"


@pytest.mark.django_db(transaction=True)
@pytest.mark.system  # migrates the schema back and forth: `make test` and CI run it
def test_the_migration_copies_each_company_platform_onto_its_syncs():
    executor = MigrationExecutor(connection)
    before = [("dashboard", "0013_rollup_covering_key")]
    after = [("dashboard", "0014_sync_platform")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Company = old.get_model("dashboard", "Company")
    Sync = old.get_model("dashboard", "Sync")
    xero = Company.objects.create(company_id=uuid.uuid4(), name="A", platform_name="Xero")
    qbo = Company.objects.create(
        company_id=uuid.uuid4(), name="B", platform_name="QuickBooks Online"
    )
    moment = datetime(2026, 11, 20, 10, tzinfo=UTC)
    for company in (xero, qbo, qbo):
        Sync.objects.create(
            sync_id=uuid.uuid4(), company=company, status_code=2000, sync_utc=moment, category=1
        )
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert sorted(mirror.Sync.objects.values_list("platform_name", flat=True)) == [
        "QuickBooks Online",
        "QuickBooks Online",
        "Xero",
    ]


def test_a_company_and_its_syncs_change_platform_together_or_not_at_all(monkeypatch):
    company_id = uuid.uuid4()
    (company,) = ingest.upsert_companies([_company_record(company_id, "Xero")])
    ingest.upsert_syncs(company, [_sync_record()])

    def broken(self, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(mirror.Sync.objects.none().__class__, "update", broken)
    with pytest.raises(RuntimeError):
        ingest.upsert_companies([_company_record(company_id, "Sage Intacct")])
    monkeypatch.undo()
    assert mirror.Company.objects.get().platform_name == "Xero"
    # So the next read still sees the change, and moves the syncs with it.
    ingest.upsert_companies([_company_record(company_id, "Sage Intacct")])
    assert mirror.Sync.objects.get().platform_name == "Sage Intacct"


def test_the_rollup_key_is_unique_on_every_database():
    from django.db import IntegrityError, transaction

    moment = datetime(2026, 11, 20, 10, tzinfo=UTC)
    mirror.SyncRollup.objects.create(
        hour=moment, status_code=2000, category=1, syncs=1, items_completed=0, items_failed=0
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        mirror.SyncRollup.objects.create(
            hour=moment, status_code=2000, category=1, syncs=2, items_completed=0, items_failed=0
        )
