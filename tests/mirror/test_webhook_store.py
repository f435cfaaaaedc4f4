"""The receiver's one write: a verified event stored once per delivery ID, never for a
purged company; forged and replayed deliveries are still refused or stored once.

The store's two twins (PostgreSQL's one statement, the portable transaction)
run where they can: both on PostgreSQL, the portable one on SQLite.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from dashboard.db import webhooks as db_webhooks
from dashboard.models import PurgeRecord, WebhookEvent
from tests.mirror.test_webhooks import (  # noqa: F401 - fixtures
    current_event,
    delay,
    dumps,
    new_secret,
    post,
    secret,
    sign,
)


def twins() -> list:
    found = [db_webhooks.store_portable]
    if connection.vendor == "postgresql":
        found.append(db_webhooks.store_postgresql)
    return found


def new_event(company_id: uuid.UUID | None = None, delivery_id: str = "msg_1"):
    now = timezone.now()
    return db_webhooks.NewEvent(
        delivery_id=delivery_id,
        event_type="expenses.sync.successful",
        body="{}",
        received_at=now,
        company_id=company_id or uuid.uuid4(),
        sync_id=uuid.uuid4(),
        processed_at=None,
        error="",
    )


@pytest.mark.parametrize("twin", range(2), ids=["portable", "postgresql"])
def test_an_event_is_stored_once_per_delivery_id(db, twin):
    if twin >= len(twins()):
        pytest.skip("PostgreSQL's statement runs on PostgreSQL (CI runs on PostgreSQL)")
    store = twins()[twin]
    event = new_event()

    first = store(event)
    again = store(event)

    assert first == WebhookEvent.objects.get().pk
    assert again is None
    row = WebhookEvent.objects.get()
    assert (row.delivery_id, row.company_id, row.sync_id) == (
        "msg_1",
        event.company_id,
        event.sync_id,
    )


@pytest.mark.parametrize("twin", range(2), ids=["portable", "postgresql"])
def test_a_purged_company_s_event_is_not_stored(db, twin):
    if twin >= len(twins()):
        pytest.skip("PostgreSQL's statement runs on PostgreSQL (CI runs on PostgreSQL)")
    company_id = uuid.uuid4()
    PurgeRecord.objects.create(company_id=company_id, reason="erasure_request", requested_by="dpo")

    assert twins()[twin](new_event(company_id)) is None
    assert twins()[twin](new_event(None, delivery_id="msg_2")) is not None
    assert list(WebhookEvent.objects.values_list("delivery_id", flat=True)) == ["msg_2"]


def test_a_forged_delivery_is_refused_and_nothing_is_stored(post, secret, delay):  # noqa: F811
    body = dumps(current_event())

    answer = post(body, sign(body, new_secret()))

    assert answer.status_code == 400
    assert WebhookEvent.objects.count() == 0
    delay.assert_not_called()


def test_a_replayed_delivery_is_stored_once_and_a_stale_replay_refused(
    post,  # noqa: F811
    secret,  # noqa: F811
    delay,  # noqa: F811
):
    body = dumps(current_event())
    headers = sign(body, secret)

    first = post(body, headers)
    replayed = post(body, headers)
    # The same captured delivery, replayed once its timestamp is more than five minutes old.
    stale = post(body, sign(body, secret, at=timezone.now() - timedelta(minutes=6)))

    assert [first.json()["status"], replayed.json()["status"]] == ["accepted", "duplicate"]
    assert stale.status_code == 400
    event = WebhookEvent.objects.get()
    delay.assert_called_once_with(event.pk)
    # A body changed after signing is refused: the signature covers its bytes.
    tampered = post(body.replace("Toft", "Toff"), sign(body, secret))
    assert tampered.status_code == 400
    assert WebhookEvent.objects.count() == 1


def test_a_purged_company_s_delivery_is_answered_ignored(post, secret, delay):  # noqa: F811
    company_id = uuid.uuid4()
    PurgeRecord.objects.create(company_id=company_id, reason="erasure_request", requested_by="dpo")
    body = dumps(current_event(company_id=company_id))

    answer = post(body, sign(body, secret))

    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert WebhookEvent.objects.count() == 0
    delay.assert_not_called()
