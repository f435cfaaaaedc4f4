"""Idempotency-Key on initiate-sync and expense transactions (90 minutes)."""

import uuid
from datetime import timedelta

from django.utils import timezone

from sandbox.models import IdempotencyRecord, Sync


def _failed_sync(small_estate) -> Sync:
    return Sync.objects.filter(finalized=True, status_code=5130).order_by("pk").first()


def _initiate(api, sync, key, sync_ids=None):
    return api.post(
        f"/companies/{sync.company.company_id}/sync/expenses/syncs",
        json={"syncIds": sync_ids or [str(sync.sync_id)]},
        headers={"Idempotency-Key": key},
    )


def test_same_key_and_body_gets_the_same_answer_and_one_sync(api, small_estate):
    source = _failed_sync(small_estate)
    before = Sync.objects.count()
    first = _initiate(api, source, "key-1")
    again = _initiate(api, source, "key-1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Sync.objects.count() == before + 1


def test_same_key_with_another_body_is_422(api, small_estate):
    source = _failed_sync(small_estate)
    other = Sync.objects.filter(company=source.company).exclude(pk=source.pk).first()
    assert _initiate(api, source, "key-2").status_code == 202
    response = _initiate(api, source, "key-2", sync_ids=[str(other.sync_id)])
    assert response.status_code == 422
    assert "different request body" in response.json()["error"]


def test_same_key_while_the_first_is_processing_is_409(api, small_estate):
    source = _failed_sync(small_estate)
    # What a concurrent first request leaves behind while it runs.
    body_request = _initiate(api, source, "probe")  # learn the stored hash
    probe = IdempotencyRecord.objects.get(key="probe")
    IdempotencyRecord.objects.create(
        key="key-3", request_hash=probe.request_hash, created=timezone.now()
    )
    before = Sync.objects.count()
    response = _initiate(api, source, "key-3")
    assert body_request.status_code == 202
    assert response.status_code == 409
    assert response.json()["canBeRetried"] == "Yes"
    assert Sync.objects.count() == before


def test_a_key_expires_after_90_minutes(api, small_estate):
    source = _failed_sync(small_estate)
    first = _initiate(api, source, "key-4")
    IdempotencyRecord.objects.filter(key="key-4").update(
        created=timezone.now() - timedelta(minutes=91)
    )
    second = _initiate(api, source, "key-4")
    assert second.status_code == 202
    assert second.json()["syncId"] != first.json()["syncId"]


def test_a_refused_request_is_replayed_not_re_executed(api, small_estate):
    source = _failed_sync(small_estate)
    missing = str(uuid.uuid4())
    first = _initiate(api, source, "key-5", sync_ids=[missing])
    again = _initiate(api, source, "key-5", sync_ids=[missing])
    assert first.status_code == again.status_code == 404
    assert again.headers["Idempotent-Replayed"] == "true"


def test_expense_transactions_honour_the_key(api, small_estate):
    company = _failed_sync(small_estate).company
    body = [
        {"id": str(uuid.uuid4()), "type": "Payment", "issueDate": "2026-11-01", "currency": "GBP"}
    ]
    path = f"/companies/{company.company_id}/sync/expenses/expense-transactions"
    first = api.post(path, json=body, headers={"Idempotency-Key": "key-6"})
    again = api.post(path, json=body, headers={"Idempotency-Key": "key-6"})
    assert first.json() == again.json()
    assert Sync.objects.filter(sync_id=first.json()["syncId"]).count() == 1
