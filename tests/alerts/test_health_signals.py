"""The mirror's own health signals: the last successful refresh and the upstream's
trouble, recorded where things happen, in one row, written only on a change."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import httpx
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard import health_signals
from dashboard.models import SystemHealth
from dashboard.upstream import UpstreamError
from dashboard.vocabulary import UpstreamTrouble
from tests.support.factories import make_company
from tests.support.health import poll
from tests.support.upstream import mock_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("announced")]

T0 = "2026-11-24 10:00:00Z"


def client_answering(*statuses: int):
    """A client whose upstream answers each request with the next status (then the last)."""
    answers = list(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(status, json={"results": []} if status == 200 else {"error": "x"})

    return mock_client(answer, max_attempts=1)


def call(client) -> None:
    with contextlib.suppress(UpstreamError):
        client.request("GET", "/companies")


def test_nothing_is_known_before_anything_is_recorded():
    assert health_signals.system_health() is None
    assert health_signals.last_refresh_success() is None
    assert health_signals.upstream_trouble() is None


def test_a_failed_call_records_since_when_the_upstream_is_unreachable(announced):
    with time_machine.travel(T0, tick=False), client_answering(503) as client:
        call(client)
        assert health_signals.upstream_trouble() == (timezone.now(), UpstreamTrouble.UNREACHABLE)
    assert announced == ["upstream"]


def test_a_timeout_is_unreachable_and_a_429_is_rate_limiting(announced):
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with mock_client(timeout, max_attempts=1) as client:
        call(client)
    assert health_signals.upstream_trouble()[1] == UpstreamTrouble.UNREACHABLE
    health_signals.forget()
    with client_answering(429) as client:
        call(client)
    assert health_signals.upstream_trouble()[1] == UpstreamTrouble.RATE_LIMITED


def test_trouble_keeps_its_start_when_its_kind_changes_and_ends_at_the_next_answer(announced):
    with time_machine.travel(T0, tick=False) as clock:
        started = timezone.now()
        with client_answering(503) as client:
            call(client)
        clock.shift(timedelta(minutes=3))
        with client_answering(429) as client:
            call(client)
        assert health_signals.upstream_trouble() == (started, UpstreamTrouble.RATE_LIMITED)
        with client_answering(404) as client:  # an answer, if not a happy one
            call(client)
    assert health_signals.upstream_trouble() is None
    assert announced == ["upstream", "upstream", "upstream"]


def test_a_process_writes_only_when_its_view_changes(announced):
    with time_machine.travel(T0, tick=False) as clock, client_answering(200) as client:
        call(client)
        with CaptureQueriesContext(connection) as queries:
            for _ in range(50):
                call(client)
        assert len(queries) == 0
        # Once a minute it re-asserts its view: one conditional update (and a read
        # of the row, as nothing changed).
        clock.shift(timedelta(seconds=61))
        with CaptureQueriesContext(connection) as queries:
            call(client)
        assert len(queries) <= 2
    assert announced == []  # it was never in trouble


def test_another_process_clearing_the_trouble_is_not_undone(announced):
    with client_answering(503) as client:
        call(client)
    # Another process got an answer meanwhile and cleared it.
    SystemHealth.objects.update(upstream_trouble_since=None, upstream_trouble_kind="")
    with client_answering(503) as client:
        call(client)  # within the minute: this process's view has not changed
    assert health_signals.upstream_trouble() is None


def test_our_own_budget_holding_requests_back_says_nothing_of_the_upstream(announced):
    with client_answering(503) as client:
        call(client)
    trouble = health_signals.upstream_trouble()
    health_signals.forget()
    health_signals.upstream_answered()
    assert health_signals.upstream_trouble() is None
    health_signals.forget()
    error = UpstreamError("Request budget is busy.", retryable=True, retry_after=5)
    from dashboard.upstream import _note_trouble, failure_kind

    _note_trouble(failure_kind(error))
    assert health_signals.upstream_trouble() is None and trouble is not None


def test_a_successful_refresh_is_recorded_to_the_minute(announced):
    company = make_company()
    with time_machine.travel(T0, tick=False) as clock:
        poll(company, [])
        first = timezone.now()
        assert health_signals.last_refresh_success() == first
        clock.shift(timedelta(seconds=30))
        poll(company, [])
        assert health_signals.last_refresh_success() == first
        clock.shift(timedelta(seconds=31))
        poll(company, [])
        assert health_signals.last_refresh_success() == timezone.now()
    assert announced.count("refresh") == 2


def test_a_failed_refresh_is_not_a_success(announced):
    company = make_company()
    with pytest.raises(UpstreamError), client_answering(500) as client:
        from dashboard import ingest

        ingest.refresh_company(client, company)
    assert health_signals.last_refresh_success() is None
    assert health_signals.upstream_trouble() is not None
