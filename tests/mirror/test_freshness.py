"""Freshness: each change of a sync is written with when the mirror learned of it and the
best-known time it happened upstream; the lag is read over the last hour, shown on the
dashboard and exported in the metrics."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from dashboard import ingest, metrics
from dashboard import models as mirror
from dashboard.health_signals import mirror_lag
from dashboard.health_signals.freshness import p95
from dashboard.models import Sync, WebhookEvent
from dashboard.vocabulary import Learned
from sandbox import models as sb
from tests.mirror.test_webhooks import (  # noqa: F401 - fixtures
    consumer,
    finalize_everything_due,
    secret,
    start_expense_sync,
    upstream_is_sandbox,
)
from tests.support.factories import make_company, make_sync
from tests.support.metrics import TOKEN, scrape


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(sync_id: uuid.UUID, code: int, started: datetime, message: str = "") -> dict:
    return {
        "syncId": str(sync_id),
        "syncStatusCode": code,
        "syncStatus": "",
        "errorMessage": message,
        "syncExceptionMessage": "",
        "syncUtc": iso(started),
        "dataPushed": code == 2000,
    }


@pytest.fixture
def observed():
    """The lags ingest counted in the metrics: (seconds, source)."""
    seen: list[tuple[float, str]] = []
    with mock.patch.object(
        metrics.MIRROR_CHANGE_LAG,
        "observe",
        side_effect=lambda value, **labels: seen.append((value, labels["source"])),
    ):
        yield seen


# --- what is written ---


def test_a_company_s_first_read_is_written_but_counts_no_lag(db, observed):
    company = make_company()
    started = timezone.now() - timedelta(days=3)

    ingest.upsert_syncs(company, [record(uuid.uuid4(), 2000, started)], learned_by=Learned.BACKFILL)

    row = Sync.objects.get()
    assert row.learned_by == Learned.BACKFILL
    assert row.learned_at is not None and row.changed_at == started
    assert observed == []
    assert mirror_lag(timezone.now() - timedelta(hours=1)).p95_s is None


def test_a_new_sync_found_by_polling_is_timed_from_its_start(db, observed):
    company = make_company()
    started = timezone.now() - timedelta(minutes=4)

    ingest.upsert_syncs(company, [record(uuid.uuid4(), 1000, started)])

    row = Sync.objects.get()
    assert (row.learned_by, row.changed_at) == (Learned.POLL, started)
    lag = (row.learned_at - started).total_seconds()
    assert 240 <= lag < 300
    assert [source for _, source in observed] == ["poll"]
    found = mirror_lag(timezone.now() - timedelta(hours=1))
    assert found.changes == 1 and found.by_source == {"poll": (1, found.p95_s)}


def test_a_polled_end_is_timed_from_the_mirror_s_last_write_of_the_sync(db, observed):
    """It ended after the mirror last saw it running: the earliest it can have happened."""
    company = make_company()
    sync_id, started = uuid.uuid4(), timezone.now() - timedelta(hours=2)
    ingest.upsert_syncs(company, [record(sync_id, 1000, started)], learned_by=Learned.BACKFILL)
    seen_running = timezone.now() - timedelta(minutes=7)
    Sync.objects.update(last_refreshed=seen_running)

    ingest.upsert_syncs(company, [record(sync_id, 2000, started)])

    row = Sync.objects.get()
    assert (row.learned_by, row.changed_at) == (Learned.POLL, seen_running)
    assert len(observed) == 1 and 420 <= observed[0][0] < 480


def test_a_webhook_s_change_is_timed_from_the_webhook(db, observed):
    company = make_company()
    sync_id, started = uuid.uuid4(), timezone.now() - timedelta(minutes=30)
    ingest.upsert_syncs(company, [record(sync_id, 1000, started)])
    sent = timezone.now() - timedelta(seconds=3)

    ingest.upsert_syncs(
        company, [record(sync_id, 5130, started)], completed_at=sent, learned_by=Learned.WEBHOOK
    )

    row = Sync.objects.get()
    assert (row.learned_by, row.changed_at, row.completed_at) == (Learned.WEBHOOK, sent, sent)
    assert observed[-1][1] == "webhook" and 3 <= observed[-1][0] < 60
    found = mirror_lag(timezone.now() - timedelta(hours=1))
    assert found.changes == 1 and set(found.by_source) == {"webhook"}


def test_a_change_other_than_the_status_keeps_the_freshness_of_the_last_one(db, observed):
    company = make_company()
    sync_id, started = uuid.uuid4(), timezone.now() - timedelta(minutes=30)
    ingest.upsert_syncs(company, [record(sync_id, 5130, started)], learned_by=Learned.WEBHOOK)
    before = Sync.objects.values("learned_at", "changed_at", "learned_by").get()

    ingest.upsert_syncs(company, [record(sync_id, 5130, started, message="Now with a message")])

    row = Sync.objects.get()
    assert row.error_message == "Now with a message"
    assert {k: getattr(row, k) for k in before} == before
    assert len(observed) == 1


def test_the_lag_s_percentile_is_the_nearest_rank():
    assert p95([5.0]) == 5.0
    assert p95([float(n) for n in range(1, 101)]) == 95.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0


def test_changes_learned_before_the_window_are_not_counted(db):
    company = make_company()
    ingest.upsert_syncs(company, [record(uuid.uuid4(), 1000, timezone.now())])
    Sync.objects.update(learned_at=timezone.now() - timedelta(hours=2))

    assert mirror_lag(timezone.now() - timedelta(hours=1)).changes == 0


# --- shown and exported ---


def test_the_dashboard_shows_the_lag_and_says_what_it_measures(client, viewer):
    company = make_company()
    now = timezone.now()
    for seconds, source in ((2, Learned.WEBHOOK), (4, Learned.WEBHOOK), (600, Learned.POLL)):
        make_sync(
            company, learned_at=now, changed_at=now - timedelta(seconds=seconds), learned_by=source
        )
    client.force_login(viewer)

    page = client.get("/").content.decode()

    figure = page.split('data-stat="mirror_lag">', 1)[1].split("</dd>", 1)[0]
    assert figure.startswith("10m 00s")
    assert "over 3 changes" in figure
    assert "by webhook 4s (2)" in figure and "by poll 10m 00s (1)" in figure
    assert "a poll's from the earliest the change can have happened" in figure


def test_the_dashboard_says_when_no_change_was_learned(client, viewer):
    client.force_login(viewer)

    page = client.get("/").content.decode()

    assert "no change learned in the last hour" in page


def test_the_metrics_export_the_lag_of_the_last_hour(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    company = make_company()
    now = timezone.now()
    for seconds in range(1, 21):
        make_sync(
            company,
            learned_at=now,
            changed_at=now - timedelta(seconds=seconds),
            learned_by=Learned.WEBHOOK,
        )

    seen = scrape(client)

    assert seen.value("synchealth_mirror_lag_last_hour_seconds", source="all") == 19
    assert seen.value("synchealth_mirror_lag_last_hour_seconds", source="webhook") == 19
    assert seen.value("synchealth_mirror_lag_last_hour_seconds", source="poll") is None
    assert seen.types["synchealth_mirror_change_lag_seconds"] == "histogram"


# --- end to end: the sandbox's webhook, and its own record of when the sync ended ---


def test_a_sandbox_webhook_s_sync_is_timed_from_the_event_s_generated_date(
    api,
    upstream,
    small_estate,
    upstream_is_sandbox,  # noqa: F811
    live_server,
    secret,  # noqa: F811
):
    finalize_everything_due()
    for company in ingest.refresh_companies(upstream):
        ingest.refresh_company(upstream, company)
    consumer(live_server, secret, "current")
    sync = start_expense_sync(api, sb.Company.objects.order_by("pk")[0])

    finalize_everything_due()

    sync.refresh_from_db()
    event = WebhookEvent.objects.get(sync_id=sync.sync_id)
    generated = ingest.parse_time(json.loads(event.body)["generatedDate"])
    row = mirror.Sync.objects.get(sync_id=sync.sync_id)
    assert row.learned_by == Learned.WEBHOOK
    assert row.changed_at == generated
    assert event.received_at <= row.learned_at
    found = mirror_lag(timezone.now() - timedelta(hours=1))
    assert found.by_source["webhook"][0] == 1
