"""Retries that survive real failures, with real Celery workers.

A worker's child process is killed while the upstream holds back its answer
to a POST it has already accepted, on Redis and on the default file broker:
the request ends linked to the one sync that POST started, with no second
POST, although the sandbox ignores Idempotency-Key. Redis goes away during a
retry: the retry waits, then completes once Redis is back.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dashboard import models as mirror
from dashboard import retry
from dashboard.tasks import follow_retries_task
from sandbox import models as sb
from sandbox import services
from tests.support.services import require
from tests.support.tcp_proxy import TcpProxy
from tests.workers import (
    REDIS_URL,
    pool_children,
    redis_available,
    start_worker,
    stop,
    tasks_sent_to,
    wait_for,
)

pytestmark = pytest.mark.system

# Short, so a killed attempt is taken up again within seconds.
LEASE_SECONDS = "5"


def _retry_syncs(company_id: uuid.UUID) -> set[uuid.UUID]:
    """The company's syncs the upstream started for re-pushes."""
    return set(
        sb.Sync.objects.filter(company__company_id=company_id, kind="retry").values_list(
            "sync_id", flat=True
        )
    )


def _posts(request: mirror.RetryRequest) -> list[int]:
    """The status of each initiate-sync POST the sandbox received with the request's key."""
    return list(
        sb.RequestLog.objects.filter(method="POST", idempotency_key=str(request.key))
        .order_by("pk")
        .values_list("status", flat=True)
    )


def _reload(request: mirror.RetryRequest) -> mirror.RetryRequest:
    request.refresh_from_db()
    return request


def _worker(tmp_path: Path, broker: str, sandbox_url: str, api_key: str, **env: str):
    return start_worker(
        "celery", sandbox_url, api_key, tmp_path / "worker.log", broker=broker,
        pool="prefork", RETRY_CLAIM_LEASE_SECONDS=LEASE_SECONDS,
        SYNCHEALTH_VAR_DIR=str(tmp_path / "var"), CACHE_KEY_PREFIX=f"stuck-{uuid.uuid4().hex[:8]}",
        **env,
    )  # fmt: skip


@pytest.mark.parametrize("broker", ["redis", "filesystem"])
def test_a_child_killed_during_the_post_leaves_the_request_linked_to_one_upstream_sync(
    broker, runner, failed_sync, sandbox_config, sandbox_url, api_key, tmp_path
):
    if broker == "redis":
        require(redis_available(), "Redis at " + REDIS_URL)
    url = REDIS_URL if broker == "redis" else "filesystem://"
    # The upstream starts the sync at once and answers three seconds later;
    # it ignores Idempotency-Key, so a second POST would start a second sync.
    sandbox_config.idempotency_keys = False
    sandbox_config.initiate_delay_ms = 3000
    sandbox_config.save()
    company_id = failed_sync.company.company_id
    before = _retry_syncs(company_id)

    with tasks_sent_to(url, var_dir=tmp_path / "var"):
        worker = _worker(tmp_path, url, sandbox_url, api_key)
        try:
            request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
            wait_for(lambda: _retry_syncs(company_id) != before, 60, "the POST to be accepted")
            [child] = pool_children(worker)
            os.kill(child, signal.SIGKILL)  # while the answer is held back
            wait_for(lambda: _reload(request).new_sync_id is not None, 45, "the sync to be linked")
        finally:
            stop(worker)

    assert request.state in {"submitted", "completed"}
    assert _retry_syncs(company_id) - before == {request.new_sync_id}
    assert request.attempts >= 2 and request.posted_at is not None
    # The killed POST's answer is logged once the sandbox has sent it.
    wait_for(lambda: bool(_posts(request)), 10, "the held-back answer to be logged")
    assert _posts(request) == [202]
    new_sync = mirror.Sync.objects.get(sync_id=request.new_sync_id)
    assert new_sync.retry_of == failed_sync
    assert "WorkerLostError" in (tmp_path / "worker.log").read_text()


def test_redis_unreachable_during_a_retry_is_waited_out_and_the_retry_completes(
    runner, failed_sync, sandbox_config, sandbox_url, api_key, tmp_path
):
    require(redis_available(), "Redis at " + REDIS_URL)
    sandbox_config.long_running_rate = 0
    sandbox_config.save()
    # The worker's rate limiter reaches Redis through a proxy this test stops;
    # its broker connection does not go through it.
    redis_url = urlsplit(REDIS_URL)
    proxy = TcpProxy((redis_url.hostname or "127.0.0.1", redis_url.port or 6379))
    proxy.start()
    limiter_url = f"redis://127.0.0.1:{proxy.port}{redis_url.path}"

    with tasks_sent_to(REDIS_URL):
        worker = _worker(tmp_path, REDIS_URL, sandbox_url, api_key, REDIS_URL=limiter_url)
        try:
            proxy.stop()
            request, _ = retry.request_retry(sync=failed_sync, user=runner, key=uuid.uuid4())
            wait_for(lambda: "ConnectionError" in _reload(request).reason, 60, "Redis to be missed")
            assert request.state in {"queued", "running"}
            assert request.reason.startswith("Waiting to try again until")
            assert _posts(request) == []
            proxy.start()
            wait_for(lambda: _reload(request).new_sync_id is not None, 30, "the POST once back")
            services.finalize_sync(sb.Sync.objects.get(sync_id=request.new_sync_id).pk)
            follow_retries_task.delay()
            wait_for(lambda: _reload(request).state == "completed", 30, "the retry to complete")
        finally:
            stop(worker)
            proxy.stop()

    assert request.attempts >= 2 and request.reason == ""
    assert request.finished_at is not None
    assert _posts(request) == [202]
