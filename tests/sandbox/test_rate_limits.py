"""Codat-style quota headers on every answer, and 429 with Retry-After past a budget."""

import time_machine
from django.core.cache import cache

from sandbox.models import SandboxSettings


def test_every_answer_carries_the_quota_headers(api, small_estate):
    cache.clear()
    first = api.get("/companies")
    second = api.get("/companies/does-not-exist")
    for response in (first, second):
        assert response.headers["X-Rate-Limit-Limit"].isdigit()
        assert response.headers["X-Rate-Limit-Remaining"].isdigit()
        assert response.headers["X-Rate-Limit-Reset"].endswith("Z")
    assert (
        int(second.headers["X-Rate-Limit-Remaining"])
        == int(first.headers["X-Rate-Limit-Remaining"]) - 1
    )


def test_it_answers_429_with_retry_after_past_the_minute_budget(api, small_estate):
    cache.clear()
    config = SandboxSettings.load()
    config.rate_limit_per_minute = 3
    config.save()
    with time_machine.travel("2026-11-24 10:00:10Z", tick=False):
        statuses = [api.get("/companies").status_code for _ in range(5)]
        limited = api.get("/companies")
    assert statuses == [200, 200, 200, 429, 429]
    assert limited.status_code == 429
    assert limited.json()["canBeRetried"] == "Yes"
    assert int(limited.headers["Retry-After"]) == 50  # seconds left in that minute
    # A new minute has a new budget.
    with time_machine.travel("2026-11-24 10:01:01Z", tick=False):
        assert api.get("/companies").status_code == 200


def test_it_answers_429_until_midnight_past_the_daily_quota(api, small_estate):
    cache.clear()
    config = SandboxSettings.load()
    config.rate_limit_per_day = 2
    config.save()
    with time_machine.travel("2026-11-24 23:59:00Z", tick=False):
        assert api.get("/companies").status_code == 200
        ok = api.get("/companies")
        assert ok.headers["X-Rate-Limit-Remaining"] == "0"
        limited = api.get("/companies")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert limited.headers["X-Rate-Limit-Reset"] == "2026-11-25T00:00:00Z"
