"""What the code counts, as Prometheus reads it back from /metrics.

Each test does the real thing (upstream calls against httpx.MockTransport,
signed webhook deliveries, retry requests ending), then parses /metrics with
prometheus_client's parser, in both stores: the database (no Redis) and Redis.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from svix.webhooks import Webhook

from dashboard import metrics, retry, webhooks
from dashboard.bulk_retry.run import skip_unclaimed
from dashboard.models import BulkRetry, RetryRequest, WebhookEvent
from dashboard.ratelimit import BudgetWaitTooLong, Limits, LocalLimiter, get_limiter
from dashboard.upstream import Upstream, UpstreamError
from dashboard.vocabulary import BulkState, ItemStatus, RetryState
from tests.support.clock import FakeClock
from tests.support.factories import make_company, make_sync
from tests.support.metrics import scrape
from tests.support.upstream import mock_client
from tests.support.users import make_user

REQUESTS = "synchealth_upstream_requests_total"
ERRORS = "synchealth_upstream_errors_total"
WAITS = "synchealth_upstream_wait_seconds_total"
COMPANY = str(uuid.UUID(int=7))


def _client(handler, **kwargs) -> Upstream:
    return mock_client(handler, max_wait=30, **kwargs)


def _sync_record(sync_id: str, code: int = 2000) -> dict:
    return {
        "companyId": COMPANY,
        "syncId": sync_id,
        "syncStatusCode": code,
        "syncStatus": "Success",
        "syncUtc": "2026-11-20T10:00:00Z",
        "dataPushed": True,
    }


# --- the upstream client ---


def test_every_attempt_is_counted_by_operation_and_status_and_failures_by_kind(db, store):
    answers = {
        "/list/status": [
            httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"}),
            httpx.Response(200, json=[]),
        ],
        "/config": [httpx.Response(503, json={"error": "down"})] * 3,
        "/status": [httpx.ReadTimeout("no answer")] * 3,
        f"/companies/{COMPANY}": [httpx.Response(401, json={"error": "who are you"})],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        for ending, queue in answers.items():
            if request.url.path.endswith(ending):
                answer = queue.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise AssertionError(f"unexpected {request.url}")

    client = _client(handler, max_attempts=3)
    assert client.list_syncs(COMPANY) == []
    for call in (
        lambda: client.get_config(COMPANY),
        lambda: client.get_sync(COMPANY, str(uuid.UUID(int=8))),
        lambda: client.get_company(COMPANY),
    ):
        with pytest.raises(UpstreamError):
            call()

    seen = scrape()
    assert seen.series(REQUESTS) == {
        frozenset({("operation", "list_syncs"), ("status", "429")}): 1,
        frozenset({("operation", "list_syncs"), ("status", "200")}): 1,
        frozenset({("operation", "get_config"), ("status", "503")}): 3,
        frozenset({("operation", "get_sync"), ("status", "timeout")}): 3,
        frozenset({("operation", "get_company"), ("status", "401")}): 1,
    }
    assert seen.series(ERRORS) == {
        frozenset({("operation", "get_config"), ("kind", "server_error")}): 1,
        frozenset({("operation", "get_sync"), ("kind", "timeout")}): 1,
        frozenset({("operation", "get_company"), ("kind", "client_error")}): 1,
    }
    # Five waits between attempts (one after the 429, two each for the others).
    assert seen.value(WAITS, reason="backoff") > 0
    assert seen.value(WAITS, reason="budget") == 0


def test_a_rate_limit_longer_than_a_task_may_wait_is_counted_as_rate_limited(db, store):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": "later"})

    with pytest.raises(UpstreamError):
        _client(handler).list_syncs(COMPANY)
    seen = scrape()
    assert seen.value(REQUESTS, operation="list_syncs", status="429") == 1
    assert seen.value(ERRORS, operation="list_syncs", kind="rate_limited") == 1


def test_waits_for_the_budget_and_for_a_company_are_counted_in_seconds(db, store):
    clock = FakeClock()
    limiter = LocalLimiter(
        Limits(per_window=2, window=60, per_company=1, lease=600, max_wait=120),
        clock=clock,
        sleep=clock.sleep,
    )
    for _ in range(3):
        limiter.wait_for_budget()  # the third waits for the window to move on
    budget_wait = sum(clock.slept)
    assert 59 <= budget_wait <= 61
    # The company's one slot is taken: the second waits up to max_wait, then gives up.
    taken, second = limiter.company_slot("acme"), limiter.company_slot("acme")
    with taken, pytest.raises(BudgetWaitTooLong), second:
        pass
    seen = scrape()
    assert seen.value(WAITS, reason="budget") == pytest.approx(budget_wait)
    assert seen.value(WAITS, reason="company") == pytest.approx(sum(clock.slept) - budget_wait)


def test_the_budget_is_shown_as_it_stands(db, store, settings):
    settings.CODAT_RATE_LIMIT_PER_MINUTE = 50
    get_limiter.cache_clear()
    limiter = get_limiter()
    for _ in range(3):
        limiter.wait_for_budget()
    limiter.note_quota(480, 1000, time.time() + 3600)
    with limiter.company_slot("acme"), limiter.company_slot("acme"), limiter.company_slot("b"):
        # This process counted something, so its next write carries its budget
        # too (without Redis, only the process that holds a budget can see it).
        metrics.UPSTREAM_REQUESTS.inc(operation="list_syncs", status="200")
        seen = scrape()
    assert seen.value("synchealth_upstream_budget_used") == 3
    assert seen.value("synchealth_upstream_budget_remaining") == 47
    assert seen.value("synchealth_upstream_in_flight_max") == 2
    assert seen.value("synchealth_upstream_quota_remaining") == 480
    assert seen.value("synchealth_upstream_quota_limit") == 1000


def test_without_redis_a_budget_reading_older_than_the_window_no_longer_counts(db, settings):
    settings.REDIS_URL = ""
    get_limiter.cache_clear()
    limiter = get_limiter()
    limiter.wait_for_budget()
    metrics.UPSTREAM_REQUESTS.inc(operation="list_syncs", status="200")
    assert scrape().value("synchealth_upstream_budget_used") == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        seen = scrape()
    assert seen.value("synchealth_upstream_budget_used") == 0
    assert seen.value("synchealth_upstream_budget_remaining") == (
        django_settings.CODAT_RATE_LIMIT_PER_MINUTE
    )


# --- webhooks ---


def _signed(body: str, secret: str, *, at=None, msg_id=None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or timezone.now()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def _event(event_type: str = "expenses.sync.successful") -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "eventType": event_type,
            "generatedDate": "2026-11-20T10:00:00Z",
            "payload": {"syncId": str(uuid.uuid4()), "referenceCompany": {"id": COMPANY}},
        }
    )


def test_webhook_deliveries_are_counted_by_outcome_and_reason_and_timed(db, store, settings):
    secret = settings.CODAT_WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    client = Client()

    def post(body: str, headers: dict[str, str]) -> int:
        return client.post(
            "/webhooks/codat", data=body, content_type="application/json", headers=headers
        ).status_code

    accepted = _event()
    headers = _signed(accepted, secret)
    assert post(accepted, headers) == 200
    assert post(accepted, headers) == 200  # delivered again
    ignored = _event("some.other.event")
    assert post(ignored, _signed(ignored, secret)) == 200
    assert post(accepted, {}) == 400
    stale = _signed(accepted, secret, at=timezone.now() - timedelta(minutes=10))
    assert post(accepted, stale) == 400
    assert post(accepted, _signed(accepted, "whsec_" + "A" * 32)) == 400
    settings.CODAT_WEBHOOK_SECRET = ""
    assert post(accepted, headers) == 503

    seen = scrape()
    delivered = "synchealth_webhook_deliveries_total"
    assert seen.series(delivered) == {
        frozenset({("outcome", "accepted"), ("reason", "")}): 1,
        frozenset({("outcome", "duplicate"), ("reason", "")}): 1,
        frozenset({("outcome", "ignored"), ("reason", "")}): 1,
        frozenset({("outcome", "rejected"), ("reason", "unsigned")}): 1,
        frozenset({("outcome", "rejected"), ("reason", "stale_timestamp")}): 1,
        frozenset({("outcome", "rejected"), ("reason", "bad_signature")}): 1,
        frozenset({("outcome", "rejected"), ("reason", "not_configured")}): 1,
    }
    timed = "synchealth_webhook_response_seconds"
    assert seen.types[timed] == "histogram"
    assert seen.value(f"{timed}_count", outcome="rejected") == 4
    assert seen.value(f"{timed}_count", outcome="accepted") == 1
    assert seen.value(f"{timed}_bucket", outcome="accepted", le="+Inf") == 1
    assert 0 < seen.value(f"{timed}_sum", outcome="accepted") < 10


def test_the_time_from_a_delivery_to_its_refresh_is_measured(db, store):
    company = make_company(company_id=uuid.UUID(COMPANY))
    sync_id = str(uuid.uuid4())

    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json=_sync_record(sync_id))
        return httpx.Response(200, json={"results": [], "_links": {}})

    event = WebhookEvent.objects.create(
        delivery_id="msg_1",
        event_type="expenses.sync.successful",
        body="{}",
        company_id=company.company_id,
        sync_id=sync_id,
        received_at=timezone.now() - timedelta(seconds=45),
    )
    assert webhooks.process_event(_client(upstream), event)

    seen = scrape()
    delay = "synchealth_webhook_processing_delay_seconds"
    assert seen.value(f"{delay}_count") == 1
    assert seen.value(f"{delay}_bucket", le="30.0") == 0
    assert seen.value(f"{delay}_bucket", le="60.0") == 1
    assert 45 <= seen.value(f"{delay}_sum") < 60


# --- retries ---


def _request(sync, user, **fields) -> RetryRequest:
    return RetryRequest.objects.create(
        key=uuid.uuid4(), user=user, sync=sync, company=sync.company, **fields
    )


def test_each_retry_request_that_ends_is_counted_once_by_its_outcome(db, store):
    lead = make_user("lead", "Support lead")
    company = make_company()
    failed = [(ItemStatus.PUSH_ERROR, "Rejected"), (ItemStatus.PUSH_ERROR, "Rejected")]

    # Cancelled before it was sent (the second cancel is too late and counts nothing).
    queued = _request(make_sync(company, code=5130, items=failed), lead)
    assert retry.cancel(pk=queued.pk, user=lead) and not retry.cancel(pk=queued.pk, user=lead)

    # Refused to someone without the role.
    retry.record_denied(sync=queued.sync, user=lead, reason="No role")

    # Refused by the upstream: the request ends failed.
    original = make_sync(company, code=5130, items=failed)
    refused = _request(
        original, lead, failed_items=[str(i.transaction_id) for i in original.items.all()]
    )

    def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "Sync cannot be retried"})

    assert retry.execute(_client(upstream), refused.pk).state == RetryState.FAILED

    # Completed: its new sync pushed one item again and failed the other.
    tids = [i.transaction_id for i in original.items.order_by("pk")]
    new_sync = make_sync(
        company,
        code=5130,
        items=[(ItemStatus.COMPLETED, ""), (ItemStatus.PUSH_ERROR, "Rejected again")],
        transaction_ids=tids,
    )
    submitted = _request(
        make_sync(company, code=5130, items=failed),
        lead,
        state=RetryState.SUBMITTED,
        new_sync_id=new_sync.sync_id,
        failed_items=[str(t) for t in tids] + [str(uuid.uuid4())],
    )
    assert retry.settle(submitted).state == RetryState.COMPLETED
    retry.settle(submitted)  # a second settlement (webhook and poll) counts nothing

    # Skipped: a bulk retry cancelled before its request was sent.
    bulk = BulkRetry.objects.create(
        key=uuid.uuid4(), user=lead, scope="range=all", state=BulkState.CANCELLED
    )
    _request(make_sync(company, code=5130, items=failed), lead, bulk=bulk)
    assert skip_unclaimed(bulk.pk) == 1

    seen = scrape()
    outcomes = "synchealth_retry_requests_total"
    for outcome in ("cancelled", "denied", "failed", "completed", "skipped"):
        assert seen.value(outcomes, outcome=outcome) == 1, outcome
    items = "synchealth_retry_items_total"
    assert seen.value(items, outcome="completed") == 1
    assert seen.value(items, outcome="failed_again") == 1
    assert seen.value(items, outcome="not_repushed") == 1
