"""Faults the sandbox injects on request: latency, 5xx, 429 storms, bad bodies."""

import json
import time

import pytest

from sandbox.models import SandboxSettings


def _configure(**fields):
    config = SandboxSettings.load()
    for name, value in fields.items():
        setattr(config, name, value)
    config.save()


def test_added_latency_delays_every_answer(api, small_estate):
    _configure(latency_ms=300)
    started = time.monotonic()
    assert api.get("/companies").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_error_rate_answers_5xx_that_can_be_retried(api, small_estate):
    _configure(error_rate=1.0)
    response = api.get("/companies")
    assert response.status_code in (500, 502, 503)
    assert response.json()["canBeRetried"] == "Yes"


def test_a_429_storm_answers_429_with_retry_after(api, small_estate):
    _configure(rate_limit_storm_rate=1.0)
    response = api.get("/companies")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_truncated_bodies_are_not_valid_json(api, small_estate):
    _configure(truncated_body_rate=1.0)
    response = api.get("/companies")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_slow_bodies_arrive_whole_but_late(api, small_estate):
    _configure(slow_body_ms=100)
    started = time.monotonic()
    response = api.get("/companies", params={"pageSize": 6})
    elapsed = time.monotonic() - started
    chunks = (len(response.content) - 1) // 4096
    assert response.json()["totalResults"] == 6
    assert chunks >= 1 and elapsed >= chunks * 0.1


def test_faults_off_means_clean_answers(api, small_estate):
    _configure()
    assert api.get("/companies").status_code == 200
