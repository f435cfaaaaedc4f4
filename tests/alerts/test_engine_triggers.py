"""Ingest's announcements: one evaluation per burst, never a change left unevaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction

from alerts import tasks, triggers
from alerts.conditions import PROBLEMS, STREAK, SYNCS

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock_driven_cache(settings):
    """The debounce's keys expire on the test's clock: a cache in this process
    (Redis, as CI runs, keeps its own time and its keys between tests)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "alerts-debounce-tests",
        }
    }
    cache.clear()  # keys another test set at another moment of the clock


@pytest.fixture
def scheduled(monkeypatch) -> list[tuple[list[str], float]]:
    """(events, countdown) of each evaluation scheduled."""
    calls: list[tuple[list[str], float]] = []

    def apply_async(*, kwargs, countdown):
        calls.append((kwargs["events"], countdown))

    monkeypatch.setattr(tasks.evaluate_task, "apply_async", apply_async)
    return calls


def test_changes_in_one_transaction_make_one_evaluation_after_commit(
    scheduled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        triggers.changed(STREAK)
        triggers.changed(SYNCS)
        triggers.changed(STREAK, PROBLEMS)
        assert scheduled == []
    assert len(callbacks) == 1
    assert scheduled == [(["problems", "streak", "syncs"], triggers.DEBOUNCE)]


def test_a_burst_makes_one_evaluation_and_a_change_after_it_started_makes_another(
    scheduled, django_capture_on_commit_callbacks
):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                triggers.changed(STREAK)
        assert scheduled == [(["streak"], triggers.DEBOUNCE)]
        with django_capture_on_commit_callbacks(execute=True):
            triggers.changed(STREAK, SYNCS)
        assert scheduled[1:] == [(["syncs"], triggers.DEBOUNCE)]
        # The first evaluation starts once its countdown ends: by then a change
        # no longer counts on it, and schedules the next.
        clock.shift(timedelta(seconds=triggers.DEBOUNCE))
        with django_capture_on_commit_callbacks(execute=True):
            triggers.changed(STREAK)
        assert scheduled[2:] == [(["streak"], triggers.DEBOUNCE)]


def test_a_rolled_back_change_schedules_nothing_and_the_next_one_still_does(
    scheduled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                triggers.changed(STREAK)
                raise RuntimeError("ingest failed")
        except RuntimeError:
            pass
        triggers.changed(PROBLEMS)
    assert scheduled == [(["problems"], triggers.DEBOUNCE)]


def test_a_broker_that_refuses_the_task_lets_the_next_change_try_again(
    monkeypatch, django_capture_on_commit_callbacks, caplog
):
    attempts = []

    def refuse(*, kwargs, countdown):
        attempts.append(kwargs["events"])
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.evaluate_task, "apply_async", refuse)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            triggers.changed(STREAK)
    assert attempts == [["streak"], ["streak"]]


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown alert events"):
        triggers.changed("weather")


def test_the_task_evaluates_what_the_events_move_and_beat_evaluates_everything(monkeypatch):
    asked = []
    monkeypatch.setattr(tasks.engine, "evaluate", lambda *, events: asked.append(events) or [])
    tasks.evaluate_task(events=["streak"])
    tasks.evaluate_task()
    assert asked == [frozenset({"streak"}), None]
