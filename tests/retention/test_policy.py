"""The retention policy as configured: webhook events, the sandbox's log, beat and the command."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dashboard import retention
from dashboard.models import PurgeRecord, Sync, WebhookEvent
from dashboard.tasks import apply_retention_task
from sandbox import retention as sandbox_retention
from sandbox.models import RequestLog
from sandbox.tasks import prune_request_log_task
from synchealth.settings import CELERY_BEAT_SCHEDULE
from tests.support.factories import make_company, make_sync
from tests.support.retention import DONE, days

pytestmark = pytest.mark.django_db


def event(age: timedelta) -> WebhookEvent:
    return WebhookEvent.objects.create(
        delivery_id=f"msg_{uuid.uuid4().hex}",
        event_type="expenses.sync.successful",
        body='{"payload": {"referenceCompany": {"name": "Someone Ltd"}}}',
        received_at=timezone.now() - age,
    )


def log_row(age: timedelta) -> RequestLog:
    started = timezone.now() - age
    return RequestLog.objects.create(
        method="GET", path="/companies", status=200, started_at=started, finished_at=started
    )


def test_webhook_events_go_after_their_days_in_batches(settings):
    settings.RETENTION_BATCH_ITEMS = 2
    for n in range(5):
        event(days(31 + n))
    recent = event(days(29))
    outcome = {o.step: o for o in retention.run()}["webhook events"]
    assert outcome.counts["webhook events"] == 5
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert retention.events.prune(timezone.now() - days(30), 2) == 0


def test_one_webhook_batch_deletes_the_oldest_first():
    events = [event(days(40 - n)) for n in range(4)]
    assert retention.events.prune(timezone.now() - days(30), 3) == 3
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [events[-1].pk]


def test_the_sandbox_prunes_its_request_log(settings):
    for n in range(3):
        log_row(days(31 + n))
    recent = log_row(days(1))
    assert sandbox_retention.prune_request_log(timezone.now() - days(30), batch=2) == 2
    assert prune_request_log_task.apply().get() == 1
    assert list(RequestLog.objects.values_list("pk", flat=True)) == [recent.pk]
    settings.RETENTION_REQUEST_LOG_DAYS = 0
    log_row(days(400))
    assert prune_request_log_task.apply().get() == 0


def test_beat_applies_the_policy_every_hour():
    assert CELERY_BEAT_SCHEDULE["dashboard-retention"] == {
        "task": "dashboard.apply_retention",
        "schedule": 3600.0,
    }
    assert CELERY_BEAT_SCHEDULE["sandbox-prune-request-log"]["task"] == "sandbox.prune_request_log"


def test_the_task_prunes_and_carries_on_a_purge_whose_worker_died(celery_eager):
    company = make_company()
    old = make_sync(company, ago=days(500), items=[DONE])
    make_sync(company, ago=days(1), items=[DONE])
    event(days(40))
    gone = make_company(name="Gone Ltd")
    make_sync(gone, ago=days(1), items=[DONE])
    # A purge whose worker died after its first batch: no lease left.
    record = PurgeRecord.objects.create(
        company_id=gone.company_id, requested_by="lead", reason="offboarding"
    )
    counts = apply_retention_task.apply().get()
    assert counts["history: syncs"] == 1 and counts["webhook events: webhook events"] == 1
    assert not Sync.objects.filter(pk=old.pk).exists()
    record.refresh_from_db()
    assert record.finished_at is not None
    assert not Sync.objects.filter(company=gone).exists()


def test_the_command_reports_what_it_would_remove_then_removes_it(capsys):
    company = make_company()
    make_sync(company, ago=days(500), items=[DONE] * 2)
    make_sync(company, ago=days(1), items=[DONE])
    event(days(40))
    call_command("prune_history", "--dry-run")
    out = capsys.readouterr().out
    assert "history before" in out and "would remove 2 push items, 1 syncs" in out
    assert "webhook events before" in out and "would remove 1 webhook events" in out
    assert "older syncs kept" not in out
    assert Sync.objects.count() == 2
    call_command("prune_history")
    out = capsys.readouterr().out
    assert "removed 1 bulk retries" not in out and "removed 2 push items, 1 syncs" in out
    assert Sync.objects.count() == 1


def test_audit_rows_go_after_their_days_in_batches(settings):
    from dashboard.models import AccessEvent

    settings.RETENTION_BATCH_ITEMS = 2
    settings.RETENTION_AUDIT_DAYS = 400
    old = [
        AccessEvent.objects.create(action="login", at=timezone.now() - days(401 + n))
        for n in range(5)
    ]
    recent = AccessEvent.objects.create(action="login", at=timezone.now() - days(399))

    assert {o.step: o for o in retention.run(dry_run=True)}["audit events"].counts[
        "audit events"
    ] == len(old)
    outcome = {o.step: o for o in retention.run()}["audit events"]

    assert outcome.counts["audit events"] == 5 and outcome.finished
    assert list(AccessEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert retention.audit.prune_batch(timezone.now() - days(400), 2) == 0
