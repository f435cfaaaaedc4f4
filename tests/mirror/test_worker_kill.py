"""A real Celery worker on Redis, killed with SIGKILL mid-refresh, loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from dashboard import models as mirror
from dashboard.tasks import refresh_company_task
from sandbox import models as sb
from synchealth.celery import app
from tests.support.mirror import assert_mirror_exact
from tests.support.services import require
from tests.workers import REDIS_URL, redis_available, start_worker, wait_for

pytestmark = pytest.mark.system


def test_a_killed_worker_loses_nothing_and_the_redelivered_task_converges(
    sandbox_url, api_key, small_estate, sandbox_config, tmp_path
):
    require(redis_available(), "Redis at " + REDIS_URL)
    # Slow answers, so the refresh is surely in flight when the worker dies.
    sandbox_config.latency_ms = 150
    sandbox_config.save()
    queue = f"test-kill-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    companies = list(sb.Company.objects.order_by("pk").values_list("company_id", flat=True))

    with app.connection_for_write(REDIS_URL) as conn:
        for company_id in companies:
            refresh_company_task.apply_async(args=(str(company_id),), queue=queue, connection=conn)

    first = start_worker(queue, sandbox_url, api_key, log)
    try:
        # Kill it once it has written part of the mirror, mid-refresh.
        wait_for(lambda: mirror.PushItem.objects.exists(), 60, "the first items")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    partial = mirror.PushItem.objects.count()
    assert 0 < partial < sb.Item.objects.count()

    second = start_worker(queue, sandbox_url, api_key, log)
    try:
        # The unacknowledged task comes back after the visibility timeout.
        wait_for(
            lambda: (
                mirror.PushItem.objects.count() == sb.Item.objects.count()
                and mirror.Sync.objects.count() == sb.Sync.objects.count()
            ),
            120,
            "the mirror to converge",
        )
        # A duplicate delivery may still be writing: wait until every company's
        # task has succeeded once (SIGTERM below also lets a running task finish).
        wait_for(
            lambda: log.read_text().count("] succeeded in") >= len(companies),
            30,
            "every company's task to succeed",
        )
    finally:
        second.terminate()
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
    assert_mirror_exact()
    assert mirror.Company.objects.count() == len(companies)
    # Every company's task ran to the end once; the killed one was received twice.
    text = log.read_text()
    succeeded = text.count("] succeeded in")
    assert succeeded >= len(companies)
    assert text.count("] received") > succeeded
