"""Webhook gap detection: a sync that polling finds finished, whose webhook should
have come and has not, is a missed webhook, per company and overall."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from dashboard import health_signals
from dashboard.metrics import exposition
from dashboard.models import WebhookEvent, WebhookGap
from tests.support.factories import make_company
from tests.support.health import poll, refreshed_before, sync_record
from tests.support.metrics import Scrape

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("announced")]

T0 = "2026-11-24 10:00:00Z"
TOTAL = "synchealth_webhooks_missed_total"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver(settings):
    """Our webhook receiver is configured: every finished sync should be announced."""
    settings.CODAT_WEBHOOK_SECRET = SECRET
    settings.WEBHOOK_GAP_GRACE_SECONDS = 300
    return settings


@pytest.fixture
def company(db):
    company = make_company(name="Acme Ltd")
    refreshed_before(company, timezone.now() - timedelta(days=1))
    return company


def heard(sync_id: uuid.UUID) -> WebhookEvent:
    return WebhookEvent.objects.create(
        delivery_id=f"msg_{uuid.uuid4().hex}",
        event_type="expenses.sync.successful",
        body="{}",
        sync_id=sync_id,
    )


def missed(hours: int = 24) -> health_signals.MissedWebhooks:
    return health_signals.missed_webhooks(timezone.now() - timedelta(hours=hours))


def test_a_sync_found_finished_long_after_it_started_without_its_webhook_is_missed(
    receiver, company, announced
):
    with time_machine.travel(T0, tick=False):
        poll(company, [sync_record(company, started=timezone.now() - timedelta(minutes=20))])
        result = missed()
        day = timezone.now() - timedelta(days=1)
        assert health_signals.company_missed_webhooks(company, day) == (1, 0)
    assert (result.missed, result.late, result.companies) == (1, 0, 1)
    assert result.most == [health_signals.CompanyGaps(company.company_id, "Acme Ltd", 1)]
    assert announced.count("webhooks") == 1


def test_a_sync_found_within_the_grace_is_missed_only_once_the_grace_has_passed(
    receiver, company, announced
):
    with time_machine.travel(T0, tick=False) as clock:
        poll(company, [sync_record(company, started=timezone.now() - timedelta(minutes=1))])
        assert missed().missed == 0 and health_signals.settle() == 0
        clock.shift(timedelta(minutes=4, seconds=1))
        assert health_signals.settle() == 1
        assert health_signals.settle() == 0  # counted once
        gap = WebhookGap.objects.get()
        assert gap.missed_at == gap.ended_at + timedelta(minutes=5)
        assert missed().missed == 1
    assert announced == ["refresh", "webhooks"]


def test_a_sync_seen_running_is_given_the_grace_from_when_it_was_seen_running(receiver, company):
    sync_id = uuid.uuid4()
    with time_machine.travel(T0, tick=False) as clock:
        started = timezone.now() - timedelta(hours=2)
        poll(company, [sync_record(company, started=started, code=1010, sync_id=sync_id)])
        clock.shift(timedelta(minutes=2))
        poll(company, [sync_record(company, started=started, code=2000, sync_id=sync_id)])
        assert missed().missed == 0
        clock.shift(timedelta(minutes=3))
        assert health_signals.settle() == 1


def test_a_webhook_that_comes_late_turns_a_missed_webhook_into_a_late_one(
    receiver, company, announced
):
    sync_id = uuid.uuid4()
    with time_machine.travel(T0, tick=False):
        poll(
            company,
            [sync_record(company, started=timezone.now() - timedelta(hours=1), sync_id=sync_id)],
        )
        assert missed().missed == 1
        event = heard(sync_id)
        assert health_signals.webhook_heard(sync_id=sync_id, received_at=event.received_at)
        result = missed()
    assert (result.missed, result.late, result.companies, result.most) == (0, 1, 0, [])
    assert announced.count("webhooks") == 2


def test_a_webhook_stored_before_the_grace_ends_makes_no_gap_at_all(receiver, company):
    sync_id = uuid.uuid4()
    with time_machine.travel(T0, tick=False) as clock:
        poll(company, [sync_record(company, started=timezone.now(), sync_id=sync_id)])
        heard(sync_id)  # stored; its processing has not run yet
        clock.shift(timedelta(minutes=10))
        assert health_signals.settle() == 0
        result = missed()
    assert (result.missed, result.late) == (0, 0)


def test_a_sync_whose_webhook_came_first_is_no_gap(receiver, company):
    sync_id = uuid.uuid4()
    heard(sync_id)
    with time_machine.travel(T0, tick=False):
        poll(
            company,
            [sync_record(company, started=timezone.now() - timedelta(hours=1), sync_id=sync_id)],
        )
    assert not WebhookGap.objects.exists()


def test_no_webhooks_are_expected_while_the_receiver_is_not_configured(settings, company):
    settings.CODAT_WEBHOOK_SECRET = ""
    with time_machine.travel(T0, tick=False):
        poll(company, [sync_record(company, started=timezone.now() - timedelta(hours=1))])
    assert not WebhookGap.objects.exists()
    assert health_signals.overview().webhooks is None


def test_a_companys_import_expects_no_webhooks(receiver):
    company = make_company()
    now = timezone.now()
    poll(company, [sync_record(company, started=now - timedelta(hours=h)) for h in (1, 2)])
    assert not WebhookGap.objects.exists()


def test_syncs_still_running_and_syncs_known_finished_are_no_gaps(receiver, company):
    known = uuid.uuid4()
    with time_machine.travel(T0, tick=False) as clock:
        poll(
            company,
            [sync_record(company, started=timezone.now() - timedelta(hours=3), sync_id=known)],
        )
        WebhookGap.objects.all().delete()
        clock.shift(timedelta(minutes=10))
        poll(
            company,
            [
                sync_record(company, started=timezone.now() - timedelta(hours=3), sync_id=known),
                sync_record(company, started=timezone.now() - timedelta(hours=1), code=1000),
            ],
        )
    assert not WebhookGap.objects.exists()


def test_the_most_affected_companies_come_first_and_the_window_bounds_the_count(receiver):
    quiet, busy = make_company(name="Quiet"), make_company(name="Busy")
    for company in (quiet, busy):
        refreshed_before(company, timezone.now() - timedelta(days=3))
    with time_machine.travel(T0, tick=False) as clock:
        poll(quiet, [sync_record(quiet, started=timezone.now() - timedelta(hours=1))])
        clock.shift(timedelta(hours=2))
        poll(
            busy, [sync_record(busy, started=timezone.now() - timedelta(hours=1)) for _ in range(3)]
        )
        assert [(c.name, c.missed) for c in missed().most] == [("Busy", 3), ("Quiet", 1)]
        assert missed(hours=1).missed == 3
        assert (
            health_signals.missed_webhooks(
                timezone.now() - timedelta(days=1), companies=[quiet.pk]
            ).missed
            == 1
        )


def test_old_gaps_are_forgotten(receiver, company):
    with time_machine.travel(T0, tick=False) as clock:
        poll(company, [sync_record(company, started=timezone.now() - timedelta(hours=1))])
        clock.shift(timedelta(days=7, seconds=1))
        assert health_signals.prune() == 1


def test_missed_webhooks_show_on_the_dashboard_the_company_page_and_in_the_metrics(
    receiver, company, client, viewer
):
    client.force_login(viewer)
    before = Scrape.parse(exposition.render().decode()).value(TOTAL) or 0
    poll(
        company,
        [sync_record(company, started=timezone.now() - timedelta(hours=1)) for _ in range(2)],
    )
    summary = client.get(reverse("summary")).content.decode()
    assert 'data-stat="webhooks_missed"><span class="bad-text">2 from 1 company</span>' in summary
    assert reverse("company-detail", args=[company.company_id]) in summary
    page = client.get(reverse("company-detail", args=[company.company_id])).content.decode()
    assert 'data-stat="webhooks_missed"><span class="bad-text">2</span>' in page
    scrape = Scrape.parse(exposition.render().decode())
    assert scrape.value("synchealth_webhooks_missed_last_hour") == 2
    assert scrape.value(TOTAL) == before + 2
