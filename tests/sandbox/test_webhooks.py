"""Signed webhooks: both formats, verifiable with svix, delivered at least once."""

import json
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from svix.webhooks import Webhook, WebhookVerificationError

from sandbox import services, webhooks
from sandbox.models import Company, SandboxSettings, Sync, WebhookConsumer, WebhookDelivery

from .consumer import start_consumer


@pytest.fixture
def consumer(transactional_db):
    state, server = start_consumer()
    yield state
    server.shutdown()


def _register(consumer, event_format="current") -> WebhookConsumer:
    return WebhookConsumer.objects.create(
        url=consumer.url, secret=webhooks.new_secret(), event_format=event_format
    )


def _finished_sync(api, company: Company) -> Sync:
    body = [
        {"id": str(uuid.uuid4()), "type": "Payment", "issueDate": "2026-11-01", "currency": "GBP"}
        for _ in range(3)
    ]
    response = api.post(
        f"/companies/{company.company_id}/sync/expenses/expense-transactions", json=body
    )
    sync = Sync.objects.get(sync_id=response.json()["syncId"])
    services.finalize_sync(sync.pk)
    sync.refresh_from_db()
    return sync


def test_a_finished_sync_sends_a_signed_current_format_event(
    api, small_estate, consumer, celery_eager
):
    registered = _register(consumer)
    company = Company.objects.filter(failure_mode=0).first()
    sync = _finished_sync(api, company)

    assert len(consumer.received) == 1
    received = consumer.received[0]
    Webhook(registered.secret).verify(received.body, received.headers)  # raises if forged
    # Both header families carry the same signature.
    svix_only = {k: v for k, v in received.headers.items() if not k.startswith("webhook-")}
    Webhook(registered.secret).verify(received.body, svix_only)
    event = json.loads(received.body)
    expected = (
        "expenses.sync.successful" if sync.status_code < 4000 else ("expenses.sync.unsuccessful")
    )
    assert event["eventType"] == expected
    assert event["payload"]["syncId"] == str(sync.sync_id)
    assert event["payload"]["referenceCompany"]["id"] == str(company.company_id)
    statuses = {t["status"] for t in event["payload"]["transactions"]}
    assert statuses <= {"Unknown", "PushError", "Completed", "Failed", "Pending"}
    assert len(event["payload"]["transactions"]) == 3
    delivery = WebhookDelivery.objects.get(sync=sync)
    assert delivery.delivered_at is not None
    assert received.headers["webhook-id"] == delivery.msg_id


def test_a_legacy_consumer_gets_sync_completed_or_failed(api, small_estate, consumer, celery_eager):
    registered = _register(consumer, "legacy")
    company = Company.objects.first()
    Company.objects.filter(pk=company.pk).update(failure_mode=4260)
    sync = _finished_sync(api, company)
    received = consumer.received[0]
    Webhook(registered.secret).verify(received.body, received.headers)
    event = json.loads(received.body)
    assert event["RuleType"] == "Sync Failed"
    assert event["CompanyId"] == str(company.company_id)
    assert event["Data"] == {
        "syncId": str(sync.sync_id),
        "syncType": "Expense",
        "FailureStage": "Pushing",
    }
    assert WebhookDelivery.objects.get(sync=sync).event_type == "SyncFailed"


def test_a_tampered_body_or_wrong_secret_does_not_verify(api, small_estate, consumer, celery_eager):
    registered = _register(consumer)
    _finished_sync(api, Company.objects.first())
    received = consumer.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(registered.secret).verify(received.body + b" ", received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(received.body, received.headers)


def test_a_failing_consumer_gets_the_event_again_until_it_answers(
    api, small_estate, consumer, celery_eager
):
    _register(consumer)
    consumer.fail_next = 2
    sync = _finished_sync(api, Company.objects.first())
    delivery = WebhookDelivery.objects.get(sync=sync)
    assert delivery.delivered_at is None
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at > timezone.now()

    # Beat's sweep sends what is due; nothing is due yet.
    assert webhooks.redeliver_due() == 0
    for _ in range(2):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        assert webhooks.redeliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None
    assert delivery.attempts == 3
    ids = {r.headers["webhook-id"] for r in consumer.received}
    assert len(consumer.received) == 3 and ids == {delivery.msg_id}


def test_a_lost_first_task_is_picked_up_by_the_sweep(api, small_estate, consumer):
    _register(consumer)
    with mock.patch("sandbox.webhooks._send_later"):  # the task never reaches a worker
        sync = _finished_sync(api, Company.objects.first())
    delivery = WebhookDelivery.objects.get(sync=sync)
    assert webhooks.redeliver_due() == 0  # still within its lease
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    with mock.patch("sandbox.tasks.deliver_webhook_task.delay") as delay:
        assert webhooks.redeliver_due() == 1
        assert webhooks.redeliver_due() == 0  # claimed: a second sweep leaves it alone
    delay.assert_called_once_with(delivery.pk)


def test_finalizing_twice_queues_one_delivery_per_consumer(api, small_estate, consumer):
    _register(consumer)
    _register(consumer, "legacy")
    with mock.patch("sandbox.webhooks._send_later"):
        sync = _finished_sync(api, Company.objects.first())
        assert services.finalize_sync(sync.pk) is False
    assert WebhookDelivery.objects.filter(sync=sync).count() == 2


def test_duplicate_delivery_fault_sends_the_same_message_twice(
    api, small_estate, consumer, celery_eager
):
    _register(consumer)
    config = SandboxSettings.load()
    config.duplicate_webhook_rate = 1.0
    config.save()
    sync = _finished_sync(api, Company.objects.first())
    assert len(consumer.received) == 2
    assert consumer.received[0].body == consumer.received[1].body
    assert consumer.received[0].headers["webhook-id"] == consumer.received[1].headers["webhook-id"]
    assert WebhookDelivery.objects.get(sync=sync).sends == 2


def test_a_consumer_that_never_answers_is_given_up_on(api, small_estate, consumer):
    _register(consumer)
    consumer.fail_next = 100
    with mock.patch("sandbox.webhooks._send_later"):
        sync = _finished_sync(api, Company.objects.first())
    delivery = WebhookDelivery.objects.get(sync=sync)
    for _ in range(len(webhooks.RETRY_SCHEDULE) + 1):
        webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.failed and delivery.delivered_at is None
    assert webhooks.attempt_delivery(delivery.pk) is None  # nothing more is sent


def test_out_of_order_fault_delays_deliveries_at_random(api, small_estate, consumer):
    _register(consumer)
    config = SandboxSettings.load()
    config.out_of_order_webhooks = True
    config.save()
    with mock.patch("sandbox.tasks.deliver_webhook_task.apply_async") as apply_async:
        for _ in range(4):
            _finished_sync(api, Company.objects.filter(failure_mode=0).first())
    delays = [call.kwargs["countdown"] for call in apply_async.call_args_list]
    assert len(delays) == 4
    assert all(0 <= d <= 5 for d in delays) and len(set(delays)) == 4


def test_drop_rate_loses_deliveries_for_good(api, small_estate, consumer, celery_eager):
    _register(consumer)
    config = SandboxSettings.load()
    config.webhook_drop_rate = 1.0
    config.save()
    sync = _finished_sync(api, Company.objects.first())
    delivery = WebhookDelivery.objects.get(sync=sync)
    assert consumer.received == []
    assert delivery.dropped and delivery.sends == 0 and delivery.delivered_at is None
    assert not delivery.failed and delivery.next_attempt_at is None
    assert webhooks.redeliver_due() == 0  # a lost delivery is not retried
    assert webhooks.attempt_delivery(delivery.pk) is None
    assert consumer.received == []
    sync.refresh_from_db()
    assert sync.finalized_at is not None  # when the sandbox finished it


def test_drop_rate_picks_the_same_deliveries_for_the_same_seed(api, small_estate, consumer):
    _register(consumer)
    config = SandboxSettings.load()
    config.webhook_drop_rate = 0.5
    config.save()
    with mock.patch("sandbox.webhooks._send_later"):
        syncs = [_finished_sync(api, Company.objects.first()) for _ in range(20)]
    deliveries = [WebhookDelivery.objects.get(sync=sync) for sync in syncs]
    first = [webhooks.dropped(d, config) for d in deliveries]
    assert first == [webhooks.dropped(d, config) for d in deliveries]
    assert 0 < sum(first) < 20
    config.webhook_drop_rate = 0.0
    assert not any(webhooks.dropped(d, config) for d in deliveries)
