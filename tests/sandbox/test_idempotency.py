"""Idempotency-Key on initiate-sync and expense transactions (90 minutes)."""

import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from sandbox.models import IdempotencyRecord, RequestLog, Sync
from tests.workers import wait_for


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


def test_with_keys_switched_off_every_post_makes_a_sync_and_the_key_is_still_logged(
    api, small_estate, sandbox_config
):
    sandbox_config.idempotency_keys = False
    sandbox_config.save()
    source = _failed_sync(small_estate)
    first = _initiate(api, source, "key-7")
    again = _initiate(api, source, "key-7")
    assert first.status_code == again.status_code == 202
    assert "Idempotent-Replayed" not in again.headers
    assert first.json()["syncId"] != again.json()["syncId"]
    assert not IdempotencyRecord.objects.filter(key="key-7").exists()
    logged = RequestLog.objects.filter(method="POST", idempotency_key="key-7")
    assert list(logged.values_list("status", flat=True)) == [202, 202]


def test_the_initiate_delay_holds_back_the_answer_of_a_sync_already_started(
    api, small_estate, sandbox_config
):
    sandbox_config.initiate_delay_ms = 1500
    sandbox_config.save()
    source = _failed_sync(small_estate)
    before = set(Sync.objects.values_list("sync_id", flat=True))
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            f"/companies/{source.company.company_id}/sync/expenses/syncs",
            json={"syncIds": [str(source.sync_id)]},
            headers={"Idempotency-Key": "key-8"},
            timeout=httpx.Timeout(5, read=0.5),
        )
    # The client gave up, but the upstream had already started the sync.
    started = Sync.objects.exclude(sync_id__in=before).get()
    assert started.kind == "retry" and started.source_sync_ids == [str(source.sync_id)]
    wait_for(
        lambda: RequestLog.objects.filter(idempotency_key="key-8", status=202).exists(),
        10,
        "the held-back answer to be logged",
    )
    log = RequestLog.objects.get(idempotency_key="key-8")
    assert (log.finished_at - log.started_at).total_seconds() >= 1.5
