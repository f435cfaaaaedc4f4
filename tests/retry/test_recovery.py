"""No stuck retry requests: leases that end, recovery without a second push,
errors retried a bounded number of times, countdowns inside the broker's
visibility timeout, and a cancel until the POST is sent."""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from unittest import mock

import pytest
import redis
import time_machine
from celery.exceptions import Retry
from django.contrib.auth.models import Group
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import models as mirror
from dashboard import retry
from dashboard.ratelimit import Limiter
from dashboard.tasks import (
    _retry_later,
    follow_retries_task,
    refresh_company_task,
    run_retry_task,
)
from dashboard.upstream import Upstream, UpstreamError
from sandbox import models as sb
from sandbox import services
from synchealth.celery import countdown_ceiling
from tests.support.factories import make_company, make_sync
from tests.workers import wait_for

REDIS_DOWN = redis.exceptions.ConnectionError(
    "Error 111 connecting to 127.0.0.1:6390. Connection refused."
)


def _request(user, sync: mirror.Sync) -> mirror.RetryRequest:
    request, _ = retry.request_retry(sync=sync, user=user, key=uuid.uuid4())
    return request


def _accepted_posts(request: mirror.RetryRequest) -> int:
    """Initiate-sync POSTs with this request's key that the sandbox accepted (2xx)."""
    return sb.RequestLog.objects.filter(
        method="POST", idempotency_key=str(request.key), status__lt=300
    ).count()


def _upstream_retry_syncs() -> set[uuid.UUID]:
    return set(sb.Sync.objects.filter(kind="retry").values_list("sync_id", flat=True))


def _attempt_that_fails(request: mirror.RetryRequest) -> float:
    """Run the task once, expecting it to ask for another try; returns the countdown."""
    with (
        mock.patch.object(run_retry_task, "retry", side_effect=Retry()) as again,
        pytest.raises(Retry),
    ):
        run_retry_task(request.pk)
    return again.call_args.kwargs["countdown"]


@pytest.fixture
def keys_ignored(sandbox_config):
    """An upstream that does not honour Idempotency-Key: every POST starts a sync."""
    sandbox_config.idempotency_keys = False
    sandbox_config.save()
    return sandbox_config


@pytest.fixture
def short_lease(settings):
    settings.RETRY_CLAIM_LEASE_SECONDS = 5
    return timedelta(seconds=5)


# --- leases ---


def test_a_request_whose_worker_died_is_sent_again_once_its_lease_has_passed(
    runner, failed_sync, short_lease
):
    request = _request(runner, failed_sync)
    assert retry.claim(request.pk) is not None  # a worker took it, then died
    with mock.patch.object(run_retry_task, "delay") as send:
        follow_retries_task()
    send.assert_not_called()  # its lease still runs

    with time_machine.travel(timezone.now() + short_lease + timedelta(seconds=1), tick=True):
        with mock.patch.object(run_retry_task, "delay") as send:
            follow_retries_task()
        send.assert_called_once_with(request.pk)
        assert run_retry_task(request.pk) == "submitted"
    request.refresh_from_db()
    assert request.attempts == 2
    assert _accepted_posts(request) == 1


def test_a_redelivery_inside_the_lease_looks_again_when_the_lease_ends(
    runner, failed_sync, short_lease
):
    request = _request(runner, failed_sync)
    retry.claim(request.pk)
    with mock.patch.object(run_retry_task, "apply_async") as later:
        assert run_retry_task(request.pk) == "not claimed"
    assert later.call_args.args == ((request.pk,),)
    assert 4 < later.call_args.kwargs["countdown"] <= 6
    assert _accepted_posts(request) == 0


def test_a_queued_request_whose_retry_was_lost_is_sent_again(runner, failed_sync, short_lease):
    request = _request(runner, failed_sync)
    with mock.patch.object(Limiter, "wait_for_budget", side_effect=REDIS_DOWN):
        countdown = _attempt_that_fails(request)
    request.refresh_from_db()
    assert request.state == "queued"
    # The task that was to try again is lost with its worker: once it is
    # overdue (its countdown, then a lease), the follow-up sends it again.
    due = timedelta(seconds=countdown) + short_lease
    with mock.patch.object(run_retry_task, "delay") as send:
        follow_retries_task()
    send.assert_not_called()
    with (
        time_machine.travel(timezone.now() + due + timedelta(seconds=1), tick=True),
        mock.patch.object(run_retry_task, "delay") as send,
    ):
        follow_retries_task()
    send.assert_called_once_with(request.pk)


# --- recovery without a second push ---


def test_a_post_whose_answer_was_lost_is_linked_not_sent_again(
    runner, failed_sync, keys_ignored, settings
):
    # The upstream starts the sync, then answers after the client gave up.
    keys_ignored.initiate_delay_ms = 1500
    keys_ignored.save()
    settings.CODAT_READ_TIMEOUT = 0.5
    before = _upstream_retry_syncs()
    request = _request(runner, failed_sync)

    _attempt_that_fails(request)
    request.refresh_from_db()
    assert request.state == "queued" and "Timed out" in request.reason
    assert request.posted_at is not None
    started = _upstream_retry_syncs() - before
    assert len(started) == 1  # the client did not send the POST again by itself

    keys_ignored.initiate_delay_ms = 0
    keys_ignored.save()
    assert run_retry_task(request.pk) == "submitted"
    request.refresh_from_db()
    assert {request.new_sync_id} == started
    assert _upstream_retry_syncs() - before == started
    wait_for(lambda: _accepted_posts(request) == 1, 10, "the held-back answer to be logged")
    posts = sb.RequestLog.objects.filter(method="POST", idempotency_key=str(request.key))
    assert posts.count() == 1
    assert mirror.Sync.objects.get(sync_id=request.new_sync_id).retry_of == failed_sync


def test_a_post_that_never_reached_the_upstream_is_sent_again_with_the_same_key(
    runner, failed_sync, keys_ignored
):
    before = _upstream_retry_syncs()
    request = _request(runner, failed_sync)
    refused = UpstreamError("Connection failed: [Errno 111] Connection refused", retryable=True)
    with mock.patch.object(Upstream, "initiate_sync", side_effect=refused):
        _attempt_that_fails(request)
    assert run_retry_task(request.pk) == "submitted"
    request.refresh_from_db()
    assert _upstream_retry_syncs() - before == {request.new_sync_id}
    assert _accepted_posts(request) == 1


def test_the_lookup_takes_only_a_sync_begun_since_the_post_with_the_requests_items(
    runner, lead, failed_sync, upstream
):
    request = _request(runner, failed_sync)
    company = sb.Company.objects.get(company_id=failed_sync.company.company_id)
    source = sb.Sync.objects.get(sync_id=failed_sync.sync_id)
    retry.claim(request.pk)
    posted = timezone.now()
    mirror.RetryRequest.objects.filter(pk=request.pk).update(posted_at=posted)
    request.refresh_from_db()

    # Begun long before the POST, with the items: an earlier push, not ours.
    earlier = services.initiate_sync(company=company, source_syncs=[source])
    sb.Sync.objects.filter(pk=earlier.pk).update(started_at=posted - timedelta(hours=1))
    # Begun since, without the items: the customer's new expenses.
    services.create_expense_sync(company=company, transaction_ids=[uuid.uuid4()])
    assert retry.started_sync(upstream, request) is None

    # Begun since, with the items, but another request's sync.
    other = services.initiate_sync(company=company, source_syncs=[source])
    mirror.RetryRequest.objects.create(
        key=uuid.uuid4(), user=lead, sync=failed_sync, company=failed_sync.company,
        state="completed", new_sync_id=other.sync_id,
    )  # fmt: skip
    assert retry.started_sync(upstream, request) is None

    ours = services.initiate_sync(company=company, source_syncs=[source])
    assert retry.started_sync(upstream, request) == str(ours.sync_id)


# --- errors that are not the upstream's ---


def test_infrastructure_errors_are_retried_with_backoff_then_end_failed_with_the_reason(
    client, runner, failed_sync
):
    request = _request(runner, failed_sync)
    countdowns = []
    with mock.patch.object(Limiter, "wait_for_budget", side_effect=REDIS_DOWN):
        for attempt in range(1, retry.MAX_ATTEMPTS):
            countdowns.append(_attempt_that_fails(request))
            request.refresh_from_db()
            assert request.state == "queued" and request.attempts == attempt
            assert request.reason.startswith("Waiting to try again until")
            assert "ConnectionError: Error 111" in request.reason
        assert run_retry_task(request.pk) == "failed"
    assert countdowns[0] < countdowns[-1] <= countdown_ceiling()
    request.refresh_from_db()
    assert request.attempts == retry.MAX_ATTEMPTS and request.finished_at is not None
    assert request.reason.startswith(f"Gave up after {retry.MAX_ATTEMPTS} attempts")
    assert _accepted_posts(request) == 0
    client.force_login(runner)
    page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
    assert "Gave up after" in page and "Connection refused" in page
    # The sync is free to be retried again.
    assert _request(runner, failed_sync).pk != request.pk


def test_a_request_goes_through_once_the_infrastructure_is_back(runner, failed_sync):
    request = _request(runner, failed_sync)
    with mock.patch.object(Limiter, "wait_for_budget", side_effect=REDIS_DOWN):
        _attempt_that_fails(request)
    assert run_retry_task(request.pk) == "submitted"
    request.refresh_from_db()
    assert request.reason == "" and request.attempts == 2
    assert _accepted_posts(request) == 1


def test_a_database_error_before_the_claim_is_retried_by_the_task(runner, failed_sync):
    request = _request(runner, failed_sync)
    with mock.patch("dashboard.retry.claim", side_effect=OperationalError("server closed")):
        countdown = _attempt_that_fails(request)
    assert 0 < countdown <= countdown_ceiling()
    request.refresh_from_db()
    assert request.state == "queued" and request.attempts == 0


def test_a_request_whose_workers_keep_dying_ends_failed(runner, failed_sync, short_lease):
    request = _request(runner, failed_sync)
    mirror.RetryRequest.objects.filter(pk=request.pk).update(
        state="running", attempts=retry.MAX_ATTEMPTS, reason="Waiting to try again: …",
        lease_until=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    assert run_retry_task(request.pk) == "failed"
    request.refresh_from_db()
    assert request.reason.startswith(f"Gave up after {retry.MAX_ATTEMPTS} attempts.")
    assert _accepted_posts(request) == 0


# --- countdowns ---


@pytest.fixture
def short_visibility(settings):
    settings.CELERY_VISIBILITY_TIMEOUT = 60
    settings.CELERY_TASK_TIME_LIMIT = 54
    return 60


def test_no_countdown_outlasts_the_brokers_visibility_timeout(
    short_visibility, runner, failed_sync, settings
):
    assert countdown_ceiling() == 6
    # A task's retry after a long Retry-After.
    quota = UpstreamError("Daily request quota exhausted.", retryable=True, retry_after=86_400)
    with (
        mock.patch.object(refresh_company_task, "retry", side_effect=Retry()) as again,
        pytest.raises(Retry),
    ):
        _retry_later(refresh_company_task, quota)
    assert again.call_args.kwargs["countdown"] <= 6
    # A retry request's backoff, late in its attempts.
    assert retry.backoff(retry.MAX_ATTEMPTS, retry_after=86_400) <= 6
    # A redelivery waiting for a long lease.
    settings.RETRY_CLAIM_LEASE_SECONDS = 3600
    request = _request(runner, failed_sync)
    retry.claim(request.pk)
    with mock.patch.object(run_retry_task, "apply_async") as later:
        run_retry_task(request.pk)
    assert later.call_args.kwargs["countdown"] <= 6


def test_a_sandbox_sync_running_longer_than_a_task_may_wait_is_left_to_the_sweep(
    short_visibility, small_estate, sandbox_config
):
    sandbox_config.long_running_rate = 0
    company = sb.Company.objects.filter(failure_mode=0).first()
    for seconds, queued in ((5, True), (30, False)):
        sandbox_config.processing_seconds_min = sandbox_config.processing_seconds_max = seconds
        sandbox_config.save()
        with mock.patch("sandbox.tasks.finalize_sync_task.apply_async") as finalize:
            sync = services.create_expense_sync(company=company, transaction_ids=[uuid.uuid4()])
        assert finalize.called == queued
    services.finalize_due(now=sync.completes_at)
    sync.refresh_from_db()
    assert sync.finalized


# --- cancel ---


def _cancel(client: Client, request: mirror.RetryRequest):
    return client.post(reverse("retry-cancel", args=[request.pk]))


def test_a_lead_cancels_a_request_before_it_is_sent_and_nothing_goes_upstream(
    client, lead, failed_sync
):
    request = _request(lead, failed_sync)
    client.force_login(lead)
    page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
    assert 'data-testid="cancel-retry"' in page

    response = _cancel(client, request)
    assert response.status_code == 302
    assert response["Location"] == reverse("retry-detail", args=[request.pk])
    request.refresh_from_db()
    assert request.state == "cancelled" and request.cancelled_by == lead
    assert request.finished_at is not None and not request.is_active
    page = client.get(response["Location"]).content.decode()
    assert "Retry cancelled" in page and "Cancelled by lead" in page
    assert 'data-testid="cancel-retry"' not in page

    with mock.patch.object(run_retry_task, "apply_async") as later:
        assert run_retry_task(request.pk) == "not claimed"
    later.assert_not_called()
    assert _accepted_posts(request) == 0
    # The sync may be retried again.
    assert _request(lead, failed_sync).pk != request.pk


def test_a_running_request_can_be_cancelled_until_the_worker_marks_its_post(
    lead, failed_sync, upstream
):
    request = _request(lead, failed_sync)
    claimed = retry.claim(request.pk)
    assert retry.cancel(pk=request.pk, user=lead)
    # The worker, between its claim and its POST: the mark fails, nothing is sent.
    assert retry.submit(upstream, claimed) is None
    assert _accepted_posts(request) == 0
    request.refresh_from_db()
    assert request.state == "cancelled" and request.posted_at is None


def _race(*actions: Callable[[], bool]) -> list[bool]:
    """Run the actions at the same moment, each in its own thread and connection."""
    from django.db import connection

    barrier = threading.Barrier(len(actions))
    results: list[bool] = [False] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_workers_post_mark_lets_exactly_one_win(lead):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs on PostgreSQL)")
    sync = make_sync(make_company(), code=5130)
    for _ in range(10):
        request = mirror.RetryRequest.objects.create(
            key=uuid.uuid4(), user=lead, sync=sync, company=sync.company, state="running",
            attempts=1, lease_until=timezone.now() + timedelta(minutes=5),
        )  # fmt: skip
        posted, cancelled = _race(
            partial(retry._mark_posting, request), partial(retry.cancel, pk=request.pk, user=lead)
        )
        assert posted != cancelled
        request.refresh_from_db()
        if cancelled:
            assert request.state == "cancelled" and request.posted_at is None
        else:
            assert request.state == "running" and request.posted_at is not None
        mirror.RetryRequest.objects.filter(pk=request.pk).update(state="failed")


def test_cancel_is_refused_once_the_post_may_have_been_sent(client, lead, failed_sync):
    request = _request(lead, failed_sync)
    claimed = retry.claim(request.pk)
    assert retry._mark_posting(claimed)  # the POST is about to go out
    assert not retry.cancel(pk=request.pk, user=lead)
    client.force_login(lead)
    page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
    assert 'data-testid="cancel-retry"' not in page

    response = _cancel(client, request)
    assert response.status_code == 409
    assert "Too late to cancel" in response.content.decode()
    request.refresh_from_db()
    assert request.state == "running"


def test_a_settled_request_cannot_be_cancelled(client, lead, failed_sync):
    request = _request(lead, failed_sync)
    run_retry_task(request.pk)
    client.force_login(lead)
    response = _cancel(client, request)
    assert response.status_code == 409
    request.refresh_from_db()
    assert request.state == "submitted" and request.cancelled_by is None


def test_only_a_lead_may_cancel(client, runner, viewer, failed_sync):
    request = _request(runner, failed_sync)
    for user in (runner, viewer):
        client.force_login(user)
        page = client.get(reverse("retry-detail", args=[request.pk])).content.decode()
        assert 'data-testid="cancel-retry"' not in page
        assert _cancel(client, request).status_code == 403
    client.logout()
    response = _cancel(client, request)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    request.refresh_from_db()
    assert request.state == "queued"


def test_cancel_takes_only_a_post_with_a_csrf_token(client, lead, failed_sync):
    request = _request(lead, failed_sync)
    client.force_login(lead)
    assert client.get(reverse("retry-cancel", args=[request.pk])).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(lead)
    assert _cancel(strict, request).status_code == 403
    assert _cancel(client, mirror.RetryRequest(pk=request.pk + 1000)).status_code == 404
    request.refresh_from_db()
    assert request.state == "queued"


def test_the_migrations_let_the_lead_group_cancel(db):
    """0017 gives the lead group, and only it, the cancel permission.

    Its function runs here on a database where the groups have no permissions
    (a test before this one may have flushed what the migrations made).
    """
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    from dashboard.roles import GROUPS

    migration = importlib.import_module("dashboard.migrations.0017_retry_recovery")
    Group.objects.filter(name="Support lead").delete()
    runner, _ = Group.objects.get_or_create(name="Support runner")
    runner.permissions.clear()

    state = MigrationLoader(connection).project_state(("dashboard", "0017_retry_recovery"))
    migration.grant_and_lease(state.apps, None)

    lead = Group.objects.get(name="Support lead")
    assert list(lead.permissions.values_list("codename", flat=True)) == ["cancel_retry"]
    assert not runner.permissions.filter(codename="cancel_retry").exists()
    # The groups as `ensure_groups` restores them agree.
    assert "cancel_retry" in GROUPS["Support lead"]
    assert "cancel_retry" not in GROUPS["Support runner"]
