"""The Celery tasks: fan-out, pauses on long rate limits, and retries."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from dashboard import ingest
from dashboard import models as mirror
from dashboard.tasks import reconcile_task, refresh_company_task
from dashboard.upstream import UpstreamError
from sandbox import models as sb


@pytest.fixture
def aimed(settings, sandbox_url, api_key):
    settings.CODAT_BASE_URL = sandbox_url
    settings.CODAT_API_KEY = api_key
    return settings


def test_reconcile_fans_out_one_task_per_company_except_paused_ones(aimed, small_estate):
    with mock.patch.object(refresh_company_task, "delay") as delay:
        assert reconcile_task() == sb.Company.objects.count()
    assert {c.args[0] for c in delay.call_args_list} == {
        str(c) for c in sb.Company.objects.values_list("company_id", flat=True)
    }

    paused = mirror.Company.objects.order_by("pk").first()
    mirror.RefreshState.objects.update_or_create(
        company=paused, defaults={"paused_until": timezone.now() + timedelta(minutes=5)}
    )
    with mock.patch.object(refresh_company_task, "delay") as delay:
        assert reconcile_task() == sb.Company.objects.count() - 1
    assert str(paused.company_id) not in {c.args[0] for c in delay.call_args_list}


def test_a_long_rate_limit_pauses_the_company_and_reschedules_the_task(
    aimed, small_estate, sandbox_config, upstream
):
    company = sb.Company.objects.order_by("pk").first()
    ingest.refresh_companies(upstream)
    sandbox_config.rate_limit_per_day = 1
    sandbox_config.save()

    with (
        mock.patch.object(refresh_company_task, "retry", side_effect=Retry()) as retry,
        pytest.raises(Retry),
    ):
        refresh_company_task(str(company.company_id))
    countdown = retry.call_args.kwargs["countdown"]
    assert countdown > 30  # until the daily quota resets, not a busy loop
    state = mirror.RefreshState.objects.get(company__company_id=company.company_id)
    assert state.paused_until > timezone.now() + timedelta(seconds=30)
    assert "quota" in state.last_error.lower() or "rate" in state.last_error.lower()


def test_a_refresh_after_a_pause_clears_it(aimed, small_estate, upstream):
    company = ingest.upsert_companies(
        [upstream.get_company(str(sb.Company.objects.order_by("pk").first().company_id))]
    )[0]
    mirror.RefreshState.objects.create(
        company=company, paused_until=timezone.now() - timedelta(seconds=1), last_error="429"
    )
    ingest.refresh_company(upstream, company)
    state = mirror.RefreshState.objects.get(company=company)
    assert state.paused_until is None and state.last_error == ""
    assert state.last_success is not None


def test_a_single_sync_refresh_that_succeeds_clears_the_companys_error_and_pause(
    aimed, small_estate, upstream
):
    sync = sb.Sync.objects.select_related("company").order_by("pk").first()
    company = ingest.upsert_companies([upstream.get_company(str(sync.company.company_id))])[0]
    mirror.RefreshState.objects.create(
        company=company,
        paused_until=timezone.now() + timedelta(minutes=5),
        last_error="429: rate limited",
        last_error_at=timezone.now(),
    )
    ingest.refresh_sync(upstream, str(company.company_id), str(sync.sync_id))
    state = mirror.RefreshState.objects.get(company=company)
    assert (state.paused_until, state.last_error, state.last_error_at) == (None, "", None)
    # One sync is not the company's whole refresh: its time is left as it was.
    assert state.last_success is None


def test_a_single_sync_refresh_that_fails_records_the_error(aimed, small_estate, upstream):
    sync = sb.Sync.objects.select_related("company").order_by("pk").first()
    company = ingest.upsert_companies([upstream.get_company(str(sync.company.company_id))])[0]
    error = UpstreamError("503: unavailable", retryable=True, status=503)
    with mock.patch.object(upstream, "get_sync", side_effect=error), pytest.raises(UpstreamError):
        ingest.refresh_sync(upstream, str(company.company_id), str(sync.sync_id))
    assert mirror.RefreshState.objects.get(company=company).last_error == "503: unavailable"


def test_a_permanent_error_is_not_retried(aimed, small_estate):
    error = UpstreamError("404: Company not found", retryable=False, status=404)
    with (
        mock.patch("dashboard.ingest.refresh_company", side_effect=error),
        mock.patch.object(refresh_company_task, "retry") as retry,
        pytest.raises(UpstreamError),
    ):
        refresh_company_task(str(sb.Company.objects.first().company_id))
    retry.assert_not_called()


def test_events_whose_task_was_lost_are_queued_again(db):
    from dashboard.tasks import process_pending_webhooks_task, process_webhook_event_task

    old = timezone.now() - timedelta(minutes=5)
    lost = mirror.WebhookEvent.objects.create(
        delivery_id="msg_lost", event_type="expenses.sync.successful", body="{}", received_at=old
    )
    mirror.WebhookEvent.objects.create(
        delivery_id="msg_done", event_type="expenses.sync.successful", body="{}",
        received_at=old, processed_at=old,
    )  # fmt: skip
    mirror.WebhookEvent.objects.create(
        delivery_id="msg_new", event_type="expenses.sync.successful", body="{}"
    )
    with mock.patch.object(process_webhook_event_task, "delay") as delay:
        assert process_pending_webhooks_task() == 1
    delay.assert_called_once_with(lost.pk)
