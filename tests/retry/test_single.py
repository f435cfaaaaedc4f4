"""Retry failed items of one sync: exactly once, permitted, visible, recorded."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import models as mirror
from dashboard import retry
from dashboard.tasks import run_retry_task
from sandbox import models as sb
from sandbox import services


def _posts(sync: mirror.Sync) -> int:
    """Initiate-sync POSTs the sandbox received for this sync's company."""
    return sb.RequestLog.objects.filter(
        method="POST", company_id=sync.company.company_id, path__endswith="/sync/expenses/syncs"
    ).count()


def _submit(client: Client, sync: mirror.Sync, key: uuid.UUID | None = None):
    return client.post(
        reverse("sync-retry", args=[sync.sync_id]), {"key": str(key or uuid.uuid4())}
    )


def test_confirmation_shows_how_many_items_will_be_re_pushed(client, runner, failed_sync):
    client.force_login(runner)
    page = client.get(reverse("sync-retry", args=[failed_sync.sync_id]))
    assert page.status_code == 200
    count = len(retry.outstanding_item_ids(failed_sync))
    assert f'data-testid="retry-count">{count}<' in page.content.decode()


def test_a_retry_runs_end_to_end_and_records_each_items_outcome(client, runner, failed_sync):
    client.force_login(runner)
    with mock.patch.object(run_retry_task, "delay") as delay:
        response = _submit(client, failed_sync)
    request = mirror.RetryRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("retry-detail", args=[request.pk])
    delay.assert_called_once_with(request.pk)
    assert request.state == "queued" and request.user == runner
    assert set(request.failed_items) == set(retry.outstanding_item_ids(failed_sync))

    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "submitted"
    upstream_sync = sb.Sync.objects.get(sync_id=request.new_sync_id)
    assert upstream_sync.source_sync_ids == [str(failed_sync.sync_id)]
    new_sync = mirror.Sync.objects.get(sync_id=request.new_sync_id)
    assert new_sync.retry_of == failed_sync
    # Only the failed items were re-pushed.
    assert {str(i.transaction_id) for i in sb.Item.objects.filter(sync=upstream_sync)} == set(
        request.failed_items
    )

    services.finalize_sync(upstream_sync.pk)
    from dashboard.tasks import follow_retries_task

    assert follow_retries_task() == 1
    request.refresh_from_db()
    assert request.state == "completed"
    # Every requested item was re-pushed, and each came out complete or failed again.
    assert request.pushed == request.item_count
    assert request.completed + request.failed_again == request.item_count
    assert (request.not_repushed, request.not_repushed_reasons) == (0, {})
    page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
    assert page.count('data-testid="item-outcome"') == request.item_count
    assert ("pushed in sync" in page) == (request.completed > 0)
    detail = client.get(reverse("sync-detail", args=[failed_sync.sync_id])).content.decode()
    assert str(request.new_sync_id)[:10] in detail  # the retry chain


def test_a_double_click_makes_one_request_and_one_upstream_post(client, runner, failed_sync):
    client.force_login(runner)
    key = uuid.uuid4()
    with mock.patch.object(run_retry_task, "delay") as delay:
        first = _submit(client, failed_sync, key)
        second = _submit(client, failed_sync, key)  # the same form, twice
        third = _submit(client, failed_sync)  # a second form, while the first runs
    assert first["Location"] == second["Location"] == third["Location"]
    assert mirror.RetryRequest.objects.count() == 1
    assert delay.call_count == 1
    request = mirror.RetryRequest.objects.get()
    before = _posts(failed_sync)
    # Two deliveries of the task: the second finds the request claimed.
    run_retry_task(request.pk)
    run_retry_task(request.pk)
    assert _posts(failed_sync) - before == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_post_once(runner, failed_sync):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs on PostgreSQL)")
    request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
    before = _posts(failed_sync)
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        try:
            run_retry_task(request.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _posts(failed_sync) - before == 1
    request.refresh_from_db()
    assert request.state == "submitted"


def test_a_worker_killed_after_the_post_links_the_sync_it_started_without_posting_again(
    runner, failed_sync
):
    request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
    upstream_before = sb.Sync.objects.count()

    class Killed(BaseException):
        pass

    with mock.patch("dashboard.retry.record_submission", side_effect=Killed), pytest.raises(Killed):
        run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "running" and request.new_sync_id is None
    assert sb.Sync.objects.count() == upstream_before + 1

    # Redelivered before the claim's lease ran out: still claimed, nothing sent.
    with mock.patch.object(run_retry_task, "apply_async") as later:
        assert run_retry_task(request.pk) == "not claimed"
    assert later.call_args.kwargs["countdown"] > 0  # looks again when the lease ends
    assert sb.Sync.objects.count() == upstream_before + 1
    # After the lease, the task takes it again and finds the sync the POST started.
    mirror.RetryRequest.objects.filter(pk=request.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "submitted" and request.attempts == 2
    assert sb.Sync.objects.count() == upstream_before + 1  # no second sync upstream
    assert sb.Sync.objects.filter(sync_id=request.new_sync_id, kind="retry").exists()
    posts = sb.RequestLog.objects.filter(method="POST", idempotency_key=str(request.key))
    assert posts.count() == 1


def test_get_is_only_a_confirmation_and_other_methods_are_refused(client, runner, failed_sync):
    client.force_login(runner)
    url = reverse("sync-retry", args=[failed_sync.sync_id])
    assert client.put(url).status_code == 405
    assert client.delete(url).status_code == 405
    client.get(url)
    assert not mirror.RetryRequest.objects.exists()


def test_a_post_without_csrf_token_is_refused(runner, failed_sync):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(runner)
    response = _submit(strict, failed_sync)
    assert response.status_code == 403
    assert not mirror.RetryRequest.objects.exists()


def test_a_viewer_is_refused_and_the_attempt_is_recorded(client, viewer, failed_sync):
    client.force_login(viewer)
    assert client.get(reverse("sync-retry", args=[failed_sync.sync_id])).status_code == 403
    assert _submit(client, failed_sync).status_code == 403
    denied = mirror.RetryRequest.objects.get()
    assert denied.state == "denied" and denied.user == viewer and denied.sync == failed_sync
    detail = client.get(reverse("sync-detail", args=[failed_sync.sync_id])).content.decode()
    assert 'data-testid="retry-button"' not in detail


def test_a_sync_without_failed_items_is_refused_with_a_clear_message(client, runner, mirrored):
    clean = mirror.Sync.objects.filter(items_failed=0, status_code=2000).first()
    client.force_login(runner)
    response = _submit(client, clean)
    assert response.status_code == 409
    assert "nothing to retry here: no item of this sync failed" in response.content.decode()
    assert not mirror.RetryRequest.objects.exists()


def test_an_upstream_refusal_ends_in_a_visible_failed_state(runner, failed_sync, client):
    request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
    # The upstream no longer knows the sync: a 404, which retrying cannot fix.
    sb.Sync.objects.filter(sync_id=failed_sync.sync_id).update(sync_id=uuid.uuid4())
    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "failed"
    assert "refused" in request.reason and "404" in request.reason
    client.force_login(runner)
    page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
    assert "Failed" in page and "404" in page


def test_a_rate_limited_request_waits_visibly_and_is_retried_with_the_same_key(
    runner, failed_sync, sandbox_config
):
    from celery.exceptions import Retry

    request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
    sandbox_config.rate_limit_per_day = 1
    sandbox_config.save()
    # At midday: a run across midnight would find the daily quota renewed.
    midday = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    with (
        time_machine.travel(midday, tick=True),
        mock.patch.object(run_retry_task, "retry", side_effect=Retry()) as again,
        pytest.raises(Retry),
    ):
        run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "queued"
    assert "Waiting to try again" in request.reason
    assert again.call_args.kwargs["countdown"] > 30
    sandbox_config.rate_limit_per_day = 0
    sandbox_config.save()
    from dashboard.ratelimit import get_limiter

    get_limiter().reset()
    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "submitted"
    assert set(
        sb.RequestLog.objects.filter(method="POST", company_id=failed_sync.company.company_id)
        .exclude(idempotency_key="")
        .values_list("idempotency_key", flat=True)
    ) == {str(request.key)}
