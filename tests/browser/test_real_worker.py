"""End to end with a real Celery worker on Redis: click Retry in Chromium, watch it finish.

The worker runs everything that happens after the click: the retry task's
POST to the sandbox, the sandbox finishing the new sync, its signed webhook to
the receiver, and the refresh that settles the request. The page follows it
by htmx polling until each original item shows its outcome.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from dashboard import models as mirror
from sandbox import models as sb
from sandbox.webhooks import new_secret
from tests.support.browser import login, screenshot
from tests.support.services import require
from tests.workers import E2E_REDIS_URL, redis_available, start_worker, stop, tasks_sent_to

pytestmark = [pytest.mark.browser, pytest.mark.system]


def test_a_retry_clicked_in_the_browser_completes_through_a_real_worker(
    page: Page, runner, failed_sync, sandbox_url, api_key, live_server, settings, sandbox_config,
    tmp_path,
):  # fmt: skip
    require(redis_available(), "Redis")
    secret = new_secret()
    settings.CODAT_WEBHOOK_SECRET = secret
    sb.WebhookConsumer.objects.create(url=f"{live_server.url}/webhooks/codat", secret=secret)
    sandbox_config.processing_seconds_min = 1
    sandbox_config.processing_seconds_max = 2
    sandbox_config.long_running_rate = 0
    sandbox_config.save()
    log = tmp_path / "worker.log"
    with tasks_sent_to(E2E_REDIS_URL):
        worker = start_worker(
            "celery", sandbox_url, api_key, log, broker=E2E_REDIS_URL,
            CODAT_WEBHOOK_SECRET=secret, CACHE_KEY_PREFIX=f"e2e-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        try:
            login(page, runner.username)
            page.goto(f"/syncs/{failed_sync.sync_id}/")
            page.get_by_test_id("retry-button").click()
            count = int(page.get_by_test_id("retry-count").inner_text())
            page.get_by_test_id("confirm-retry").click()
            expect(page.get_by_test_id("retry-state")).to_have_text("Completed", timeout=60_000)
            expect(page.get_by_test_id("item-outcome")).to_have_count(count)
            screenshot(page, "retry-completed")
        finally:
            stop(worker)
    request = mirror.RetryRequest.objects.get()
    assert request.state == "completed"
    assert request.pushed == request.item_count == count
    assert request.completed + request.failed_again == request.item_count
    # The webhook reached the receiver and was processed by the worker.
    event = mirror.WebhookEvent.objects.get(sync_id=request.new_sync_id)
    assert event.processed_at is not None
    new_sync = mirror.Sync.objects.get(sync_id=request.new_sync_id)
    assert new_sync.retry_of == failed_sync and new_sync.is_terminal
    assert sb.Sync.objects.filter(kind="retry").count() == 1
    assert "run_retry" in log.read_text()
