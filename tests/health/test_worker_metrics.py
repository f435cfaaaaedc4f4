"""A count made in a real Celery worker's child process is on the web's /metrics.

The worker (prefork, as in production) refreshes one company from the live
sandbox; the test process, standing in for the web server, has counted
nothing itself, and finds the worker's requests and budget on /metrics: in
the database with the file broker (`make run`), and in Redis with Redis.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from dashboard.metrics import recorder
from dashboard.tasks import refresh_company_task
from sandbox import models as sb
from tests.support.metrics import scrape
from tests.support.services import require
from tests.workers import REDIS_URL, redis_available, start_worker, stop, tasks_sent_to, wait_for

pytestmark = pytest.mark.system

REQUESTS = "synchealth_upstream_requests_total"


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_a_counter_a_real_worker_increments_is_scraped_from_the_web(
    broker, settings, small_estate, sandbox_url, api_key, tmp_path
):
    if broker == "redis":
        require(redis_available(), "Redis at " + REDIS_URL)
    url = REDIS_URL if broker == "redis" else "filesystem://"
    prefix = f"worker-metrics-{uuid.uuid4().hex[:8]}"
    # This process reads the store the worker writes to: the same Redis keys, or the database.
    settings.REDIS_URL = REDIS_URL if broker == "redis" else ""
    settings.CACHE_KEY_PREFIX = prefix
    settings.CODAT_RATE_LIMIT_PREFIX = f"{prefix}:rl"
    company_id = str(sb.Company.objects.order_by("pk").values_list("company_id", flat=True)[0])

    def listed() -> float:
        return scrape().value(REQUESTS, operation="list_syncs", status="200") or 0

    assert listed() == 0
    try:
        with tasks_sent_to(url, var_dir=tmp_path / "var"):
            worker = start_worker(
                "celery", sandbox_url, api_key, tmp_path / "worker.log", broker=url,
                pool="prefork", SYNCHEALTH_VAR_DIR=str(tmp_path / "var"),
                REDIS_URL=settings.REDIS_URL, CACHE_KEY_PREFIX=prefix,
                CODAT_RATE_LIMIT_PREFIX=f"{prefix}:rl",
            )  # fmt: skip
            try:
                refresh_company_task.delay(company_id)
                wait_for(lambda: listed() > 0, 60, "the worker's requests on /metrics")
            finally:
                stop(worker)

        seen = scrape()
        assert recorder.pending() == {}  # nothing was counted in this process
        assert seen.value(REQUESTS, operation="list_syncs", status="200") == 1
        assert seen.value(REQUESTS, operation="get_company", status="200") == 1
        assert seen.value("synchealth_upstream_budget_used") >= 2
        assert seen.value("synchealth_metrics_source_up", source="store") == 1
        assert "refresh_company" in (tmp_path / "worker.log").read_text()
    finally:
        if broker == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(f"{prefix}:*"))
            if keys:
                client.delete(*keys)
