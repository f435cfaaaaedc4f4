"""Deliveries: created once per transition and channel, sent by a task each,
retried with backoff when a receiver is down (and nothing else waits for it),
swept up when a task is lost, summarised once per period for digest rules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from alerts import channels, delivery
from alerts.delivery import attempt, backoff, enqueue_for, send_test
from alerts.delivery_tasks import deliver_due_task, deliver_task, send_digests_task
from alerts.digests import send_digests
from alerts.models import Channel, Delivery, Transition
from alerts.vocabulary import ChannelKind, DeliveryKind, DeliveryState, Digest, TransitionKind
from dashboard.metrics import recorder
from dashboard.metrics.series import encode_labels
from tests.support.channels import (
    SIGNING_SECRET,
    free_port,
    http_receiver,
    make_channel,
    make_rule,
    make_transition,
)
from tests.support.metrics import TOKEN, scrape
from tests.support.services import only_on_postgresql
from tests.support.users import make_user

NOW = datetime(2026, 11, 28, 9, 14, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def local(settings):
    settings.ALERTS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def sent(monkeypatch):
    """Every send, recorded instead of made (for tests about the rows, not the wire)."""
    calls: list[tuple[Channel, str]] = []

    def send(channel, message, *, message_id=None):
        calls.append((channel, message.title))

    monkeypatch.setattr(channels, "send", send)
    return calls


@pytest.fixture(autouse=True)
def _counting_from_nothing():
    recorder.discard()
    yield
    recorder.discard()


def _webhook(receiver_port: int) -> Channel:
    return make_channel(
        f"http://127.0.0.1:{receiver_port}/hook",
        kind=ChannelKind.SIGNED_WEBHOOK,
        secret=SIGNING_SECRET,
    )


# --- creating deliveries ---


def test_a_transition_gets_one_delivery_per_enabled_channel_and_its_task_on_commit(
    db, django_capture_on_commit_callbacks, sent
):
    email, slack = make_channel("json://hooks.example.com/a"), make_channel("slack://T1/B2/C3")
    off = make_channel("json://hooks.example.com/b", enabled=False)
    transition = make_transition(make_rule(email, slack, off))

    with django_capture_on_commit_callbacks() as queued:
        enqueue_for([transition])

    deliveries = Delivery.objects.filter(transition=transition)
    assert {d.channel for d in deliveries} == {email, slack}
    assert {d.kind for d in deliveries} == {DeliveryKind.TRANSITION}
    assert {d.title for d in deliveries} == {"Started: Acme Ltd has failed 3 syncs in a row"}
    assert {d.payload["id"] for d in deliveries} == {str(transition.key)}
    assert len(queued) == 2


def test_enqueueing_twice_creates_nothing_new(db, django_capture_on_commit_callbacks):
    rule = make_rule(make_channel("json://hooks.example.com/a"), make_channel("slack://T/B/C"))
    transition = make_transition(rule)
    enqueue_for([transition])

    with django_capture_on_commit_callbacks() as queued:
        enqueue_for([transition])

    assert Delivery.objects.filter(transition=transition).count() == 2
    assert queued == []


def test_muted_transitions_and_digest_rules_get_no_delivery(db):
    channel = make_channel("json://hooks.example.com/a")
    muted = make_transition(make_rule(channel), muted=True)
    digested = make_transition(make_rule(channel, digest=Digest.HOURLY))

    enqueue_for([muted, digested])

    assert not Delivery.objects.exists()


def test_a_test_send_is_a_test_delivery_scheduled_at_once(
    db, django_capture_on_commit_callbacks, sent, celery_eager
):
    lead = make_user("lead", "Support lead")
    channel = make_channel("slack://T1/B2/C3", name="Support")

    with django_capture_on_commit_callbacks(execute=True):
        created = send_test(channel=channel, user=lead)

    created.refresh_from_db()
    assert created.kind == DeliveryKind.TEST
    assert created.title == "Test from Sync Health: this channel works"
    assert created.requested_by == lead
    assert created.payload["id"] == str(created.key)
    assert created.state == DeliveryState.DELIVERED
    assert sent == [(channel, created.title)]


# --- sending ---


def test_a_delivery_is_sent_once_and_recorded(db, clock, sent):
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    [created] = Delivery.objects.all()

    assert deliver_task(created.pk) == DeliveryState.DELIVERED
    assert deliver_task(created.pk) is None

    created.refresh_from_db()
    channel.refresh_from_db()
    assert (created.state, created.attempts, created.delivered_at) == ("delivered", 1, NOW)
    assert channel.last_success_at == NOW
    assert channel.failing_since is None
    assert len(sent) == 1


def test_two_claims_at_once_make_one_send(db, clock, monkeypatch):
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    [created] = Delivery.objects.all()
    sends, second_claims = [], []

    def send(channel, message, *, message_id=None):
        # A second worker (or the sweep) tries while the first is mid-send.
        second_claims.append(attempt(delivery_id=created.pk))
        sends.append(message_id)

    monkeypatch.setattr(channels, "send", send)

    assert attempt(delivery_id=created.pk).state == DeliveryState.DELIVERED
    assert second_claims == [None]
    assert sends == [str(created.key)]


@only_on_postgresql("two workers' claims at once need a database that runs them at once")
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_send_once(monkeypatch):
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    [created] = Delivery.objects.all()
    together = threading.Barrier(2)
    sends, outcomes = [], []

    def send(channel, message, *, message_id=None):
        sends.append(message_id)

    def worker():
        together.wait()
        try:
            outcomes.append(attempt(delivery_id=created.pk))
        finally:
            connection.close()

    monkeypatch.setattr(channels, "send", send)
    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert sends == [str(created.key)]
    assert sorted(str(o and o.state) for o in outcomes) == ["None", "delivered"]


def test_a_delivery_whose_worker_died_mid_send_is_swept_up_when_its_lease_ends(
    db, clock, sent, celery_eager
):
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    [created] = Delivery.objects.all()
    # A worker claimed it and was killed before it could record anything.
    Delivery.objects.filter(pk=created.pk).update(
        state=DeliveryState.SENDING, lease_until=NOW + delivery.LEASE, attempts=1
    )
    assert deliver_due_task() == 0

    clock.shift(delivery.LEASE)
    assert deliver_due_task() == 1

    created.refresh_from_db()
    assert (created.state, created.attempts) == (DeliveryState.DELIVERED, 2)


def test_backoff_starts_at_30_seconds_doubles_and_stops_at_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 7, 8, 12)] == [
        30,
        60,
        120,
        240,
        1920,
        3600,
        3600,
    ]


def test_a_permanent_refusal_is_given_up_at_once(db, clock, local):
    with http_receiver(status=410) as receiver:
        channel = _webhook(receiver.port)
        enqueue_for([make_transition(make_rule(channel))])
        [created] = Delivery.objects.all()
        assert deliver_task(created.pk) == DeliveryState.FAILED
    created.refresh_from_db()
    assert created.last_error == "The receiver answered 410."
    assert created.attempts == 1


def test_a_delivery_is_given_up_after_its_last_attempt(db, clock, monkeypatch):
    def send(channel, message, *, message_id=None):
        raise channels.DeliveryError("down")

    monkeypatch.setattr(channels, "send", send)
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    [created] = Delivery.objects.all()

    states = []
    for _ in range(delivery.MAX_ATTEMPTS):
        outcome = attempt(delivery_id=created.pk)
        states.append(outcome.state)
        clock.move_to(outcome.retry_at or NOW)

    assert states == [DeliveryState.RETRYING] * (delivery.MAX_ATTEMPTS - 1) + [DeliveryState.FAILED]
    assert attempt(delivery_id=created.pk) is None


@pytest.mark.system  # three real receivers, one of them down then back: about a second
def test_a_receiver_that_is_down_is_retried_and_delivered_when_back_and_delays_nothing_else(
    db, clock, local, celery_eager, django_capture_on_commit_callbacks
):
    port = free_port()  # nothing listens: the receiver is down
    down = _webhook(port)
    transition = make_transition(make_rule(down))

    with django_capture_on_commit_callbacks(execute=True):
        enqueue_for([transition])

    [waiting] = Delivery.objects.filter(channel=down)
    down.refresh_from_db()
    assert waiting.state == DeliveryState.RETRYING
    assert waiting.attempts == 1
    assert waiting.next_attempt_at == NOW + timedelta(seconds=30)
    assert "Could not reach the receiver" in waiting.last_error
    assert (down.failing_since, down.last_failure_at) == (NOW, NOW)
    assert "Could not reach the receiver" in down.last_error

    # Meanwhile another channel's delivery, created later, goes out at once.
    with http_receiver() as other_receiver:
        other = _webhook(other_receiver.port)
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_for([make_transition(make_rule(other), subject="company:beta")])
    assert Delivery.objects.get(channel=other).state == DeliveryState.DELIVERED
    assert len(other_receiver.requests) == 1

    # Its retry is not due yet: the sweep leaves it be.
    assert deliver_due_task() == 0
    with http_receiver(port=port) as back:
        clock.shift(timedelta(seconds=30) + delivery.SWEEP_GRACE)
        assert deliver_due_task() == 1

    waiting.refresh_from_db()
    down.refresh_from_db()
    assert waiting.state == DeliveryState.DELIVERED
    assert waiting.attempts == 2
    assert down.failing_since is None
    assert down.last_success_at == NOW + timedelta(seconds=90)
    [received] = back.requests
    assert received.headers["webhook-id"] == str(waiting.key)


def test_a_disabled_channel_s_waiting_deliveries_are_given_up(db, clock, sent):
    channel = make_channel("json://hooks.example.com/a")
    enqueue_for([make_transition(make_rule(channel))])
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    [created] = Delivery.objects.all()

    assert attempt(delivery_id=created.pk).state == DeliveryState.FAILED
    assert sent == []


# --- secrets ---


def test_secrets_appear_in_no_error_display_or_message(db, clock, local):
    token = "xoxb-9f8e7d6c5b4a"
    password = "s3cret-smtp-pass"
    urls = [
        f"json://alerts:{password}@127.0.0.1:{free_port()}/{token}?key={token}",
        f"mailto://alerts:{password}@127.0.0.1:{free_port()}/support@example.com"
        "?from=alerts@example.com",
    ]
    for url in urls:
        channel = make_channel(url)
        transition = make_transition(make_rule(channel), subject=f"company:{channel.pk}")
        enqueue_for([transition])
        [created] = Delivery.objects.filter(channel=channel)
        assert deliver_task(created.pk) == DeliveryState.RETRYING
        created.refresh_from_db()
        channel.refresh_from_db()
        shown = [
            created.last_error,
            channel.last_error,
            channel.display,
            created.title,
            created.body,
            str(created.payload),
        ]
        assert created.last_error
        for text in shown:
            assert token not in text
            assert password not in text
    signed = _webhook(free_port())
    enqueue_for([make_transition(make_rule(signed), subject="company:signed")])
    deliver_task(Delivery.objects.get(channel=signed).pk)
    signed.refresh_from_db()
    assert SIGNING_SECRET.removeprefix("whsec_") not in signed.last_error + signed.display


# --- digests ---


def test_a_digest_rule_sends_one_summary_per_period_exactly_once(
    db, clock, sent, django_capture_on_commit_callbacks
):
    first, second = make_channel("json://hooks.example.com/a"), make_channel("slack://T/B/C")
    rule = make_rule(first, second, digest=Digest.HOURLY, name="Quiet")
    make_transition(rule, subject="company:a", at=NOW - timedelta(minutes=20))
    make_transition(rule, subject="company:b", kind=TransitionKind.RECOVERED)
    make_transition(rule, subject="company:c", muted=True)

    with django_capture_on_commit_callbacks() as queued:
        assert send_digests_task() == 1
        assert send_digests_task() == 0  # the next tick, or one running alongside

    summaries = Delivery.objects.filter(kind=DeliveryKind.DIGEST)
    assert {d.channel for d in summaries} == {first, second}
    assert {d.title for d in summaries} == {"Summary: 2 changes for Quiet"}
    assert len(queued) == 2
    assert Transition.objects.filter(rule=rule, digested_at=NOW).count() == 2
    rule.refresh_from_db()
    assert rule.last_digest_at == NOW

    clock.shift(timedelta(minutes=30))
    make_transition(rule, subject="company:d")
    assert send_digests() == 0  # the period has not passed
    clock.shift(timedelta(minutes=30))
    assert send_digests() == 1
    latest = Delivery.objects.filter(kind=DeliveryKind.DIGEST).order_by("-pk").first()
    assert latest.title == "Summary: 1 change for Quiet"


def test_two_ticks_that_read_the_rule_together_send_one_summary(db, clock):
    from alerts.digests import _summarise

    rule = make_rule(make_channel("json://hooks.example.com/a"), digest=Digest.DAILY)
    make_transition(rule)
    seen_by_both = rule.last_digest_at

    assert _summarise(rule, seen_by_both, NOW) == 1
    assert _summarise(rule, seen_by_both, NOW) == 0
    assert Delivery.objects.filter(kind=DeliveryKind.DIGEST).count() == 1


def test_a_digest_period_with_nothing_to_say_sends_nothing(db, clock):
    rule = make_rule(make_channel("json://hooks.example.com/a"), digest=Digest.HOURLY)
    assert send_digests() == 0
    rule.refresh_from_db()
    assert rule.last_digest_at == NOW
    assert not Delivery.objects.exists()


# --- the tasks' names and the metrics ---


def test_the_worker_knows_the_alerts_tasks_by_their_names():
    from synchealth.celery import app

    app.loader.import_default_modules()
    assert {"alerts.deliver", "alerts.deliver_due", "alerts.send_digests"} <= set(app.tasks)


def test_deliveries_are_counted_by_kind_and_outcome_and_failing_channels_shown(
    db, clock, monkeypatch, settings
):
    settings.METRICS_TOKEN = TOKEN
    settings.REDIS_URL = ""

    def send(channel, message, *, message_id=None):
        if channel.name == "down":
            raise channels.DeliveryError("down")

    monkeypatch.setattr(channels, "send", send)
    up = make_channel("json://hooks.example.com/a", name="up")
    down = make_channel("json://hooks.example.com/b", name="down")
    enqueue_for([make_transition(make_rule(up, down))])
    for created in Delivery.objects.all():
        attempt(delivery_id=created.pk)

    counted = recorder.pending()
    name = "synchealth_alert_deliveries_total"
    assert counted[(name, encode_labels({"kind": "transition", "outcome": "delivered"}))] == 1
    assert counted[(name, encode_labels({"kind": "transition", "outcome": "retrying"}))] == 1
    seen = scrape()
    assert seen.value(name, kind="transition", outcome="delivered") == 1
    assert seen.value(name, kind="test", outcome="failed") == 0
    assert seen.value("synchealth_alert_channels_failing") == 1
    assert seen.value("synchealth_alert_deliveries_waiting", state="retrying") == 1
    assert seen.value("synchealth_alert_deliveries_waiting", state="pending") == 0
