"""Syncs start, run, end and get retried the way the seed describes."""

import uuid
from datetime import timedelta

import time_machine
from django.utils import timezone

from sandbox import estate, services
from sandbox.catalogue import STATUS_TEXT
from sandbox.models import Company, Item, ItemStatus, SandboxSettings, Sync, SyncKind


def _post_expenses(api, company, count=4):
    body = [
        {"id": str(uuid.uuid4()), "type": "Payment", "issueDate": "2026-11-01", "currency": "GBP"}
        for _ in range(count)
    ]
    response = api.post(
        f"/companies/{company.company_id}/sync/expenses/expense-transactions", json=body
    )
    assert response.status_code == 200
    return Sync.objects.get(sync_id=response.json()["syncId"]), [tx["id"] for tx in body]


def _status(api, sync):
    return api.get(
        f"/companies/{sync.company.company_id}/sync/expenses/syncs/{sync.sync_id}/status"
    ).json()


def test_creating_expenses_starts_a_sync_that_ends_in_a_terminal_code(api, small_estate):
    company = Company.objects.filter(failure_mode=0).first()
    sync, ids = _post_expenses(api, company)
    running = _status(api, sync)
    assert running["syncStatusCode"] == 1000
    assert running["dataPushed"] is False
    items = api.get(
        f"/companies/{company.company_id}/sync/expenses/syncs/{sync.sync_id}/transactions"
    ).json()["results"]
    assert [i["transactionId"] for i in items] == ids
    assert {i["status"] for i in items} == {"Pending"}

    assert services.finalize_due(now=timezone.now() + timedelta(hours=2)) >= 1
    done = _status(api, sync)
    assert done["syncStatusCode"] in {2000, 2040, 4000, 5000, 5080, 5120, 5130}
    assert done["syncStatus"] == STATUS_TEXT[done["syncStatusCode"]]
    assert services.finalize_sync(sync.pk) is False  # a second run changes nothing


def test_a_sync_running_over_ten_minutes_reports_1010(api, small_estate):
    company = Company.objects.first()
    sync, _ = _post_expenses(api, company)
    Sync.objects.filter(pk=sync.pk).update(completes_at=timezone.now() + timedelta(hours=1))
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert _status(api, sync)["syncStatusCode"] == 1010


def test_latest_sync_is_the_newest_started(api, small_estate):
    company = Company.objects.first()
    sync, _ = _post_expenses(api, company)
    latest = api.get(f"/companies/{company.company_id}/sync/expenses/syncs/latest/status")
    assert latest.json()["syncId"] == str(sync.sync_id)


def test_a_retry_re_pushes_only_failed_and_pending_items(api, small_estate):
    source = Sync.objects.filter(status_code=5130, company__failure_mode=0).first()
    source_items = list(source.items.order_by("position"))
    failed = [i.transaction_id for i in source_items if i.status != ItemStatus.COMPLETED]
    assert failed and len(failed) < len(source_items)

    response = api.post(
        f"/companies/{source.company.company_id}/sync/expenses/syncs",
        json={"syncIds": [str(source.sync_id)]},
    )
    assert response.status_code == 202
    retry = Sync.objects.get(sync_id=response.json()["syncId"])
    assert retry.kind == SyncKind.RETRY
    assert retry.source_sync_ids == [str(source.sync_id)]
    assert [i.transaction_id for i in retry.items.order_by("position")] == failed

    config = SandboxSettings.load()
    config.retry_success_rate = 0.5
    config.save()
    services.finalize_sync(retry.pk)
    retry.refresh_from_db()
    outcomes = list(retry.items.values_list("transaction_id", "status"))
    pushed = {tid for tid, status in outcomes if status == ItemStatus.COMPLETED}
    assert retry.status_code == (2000 if len(pushed) == len(failed) else 5130)

    # A second retry of the same source leaves out what the first one pushed.
    again = api.post(
        f"/companies/{source.company.company_id}/sync/expenses/syncs",
        json={"datasetIds": [str(source.sync_id)]},
    )
    second = Sync.objects.get(sync_id=again.json()["syncId"])
    assert set(second.items.values_list("transaction_id", flat=True)) == set(failed) - pushed


def test_a_retry_with_nothing_left_to_push_ends_2040(api, small_estate):
    source = Sync.objects.filter(status_code=2000, company__failure_mode=0).first()
    response = api.post(
        f"/companies/{source.company.company_id}/sync/expenses/syncs",
        json={"syncIds": [str(source.sync_id)]},
    )
    retry = Sync.objects.get(sync_id=response.json()["syncId"])
    assert retry.item_count == 0
    services.finalize_sync(retry.pk)
    retry.refresh_from_db()
    assert (retry.status_code, retry.data_pushed) == (2040, False)


def test_a_company_with_a_standing_problem_fails_again_with_its_code(api, small_estate):
    company = Company.objects.first()
    Company.objects.filter(pk=company.pk).update(failure_mode=4220)
    sync, _ = _post_expenses(api, company)
    services.finalize_sync(sync.pk)
    sync.refresh_from_db()
    assert sync.status_code == 4220
    assert "de-authorized" in sync.error_message
    assert set(sync.items.values_list("status", flat=True)) == {ItemStatus.PENDING}


def test_the_same_seed_builds_the_same_estate(transactional_db):
    def snapshot():
        return list(
            Sync.objects.order_by("pk").values_list("sync_id", "status_code", "item_count")
        ), list(Item.objects.order_by("pk").values_list("transaction_id", "status")[:500])

    now = timezone.now()
    estate.build_estate(companies=5, syncs_per_company=6, items_per_sync=5, seed=3, now=now)
    first = snapshot()
    estate.reset()
    estate.build_estate(companies=5, syncs_per_company=6, items_per_sync=5, seed=3, now=now)
    assert snapshot() == first


def test_every_status_code_occurs_in_an_estate(transactional_db):
    estate.build_estate(companies=150, syncs_per_company=25, items_per_sync=3, seed=11)
    now = timezone.now()
    codes = {services.api_status_code(s, now) for s in Sync.objects.all()}
    assert codes == set(STATUS_TEXT)
    statuses = set(Item.objects.values_list("status", flat=True).distinct())
    assert statuses == {
        ItemStatus.COMPLETED,
        ItemStatus.PUSH_ERROR,
        ItemStatus.VALIDATION_ERROR,
        ItemStatus.PENDING,
    }
    messages = list(
        Item.objects.filter(status=ItemStatus.PUSH_ERROR).values_list("message", flat=True)[:50]
    )
    assert all("Correlation ID: " in m for m in messages)
    assert len(set(messages)) == len(messages)  # a fresh correlation ID each time
