"""Fixtures for the health and metrics tests: counting from nothing, in either store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dashboard import health
from dashboard.metrics import recorder
from tests.support.metrics import TOKEN
from tests.support.services import require
from tests.workers import REDIS_URL, redis_available


@pytest.fixture(autouse=True)
def _counting_from_nothing(settings) -> Iterator[None]:
    """Nothing this process counted before the test is written during it; the token is set."""
    recorder.discard()
    settings.METRICS_TOKEN = TOKEN
    # /readyz asks no upstream unless a test says so (and then one it names).
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 0
    yield
    recorder.discard()
    health._migrated = False


@pytest.fixture(params=["database", "redis"])
def store(request, settings) -> Iterator[str]:
    """The shared store of a deployment without Redis (the database), then of one with Redis.

    Redis keys carry a prefix of the test's own, and are deleted after it.
    """
    if request.param == "database":
        settings.REDIS_URL = ""
        yield "database"
        return
    require(redis_available(), "Redis at " + REDIS_URL)
    import redis

    prefix = f"test-metrics-{uuid.uuid4().hex[:8]}"
    settings.REDIS_URL = REDIS_URL
    settings.CACHE_KEY_PREFIX = prefix
    settings.CODAT_RATE_LIMIT_PREFIX = f"{prefix}:rl"
    yield "redis"
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
