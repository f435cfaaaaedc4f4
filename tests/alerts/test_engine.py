"""The rules' evaluation: one transition when a condition starts, one when it ends,
nothing in between; hold times, mutes, scope; exactly once with two evaluators."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import engine
from alerts.models import AlertState, Mute, Rule, Transition
from alerts.vocabulary import Condition, SubjectState, TransitionKind
from dashboard.ingest.refresh import update_streak
from dashboard.models import Company
from tests.support.alert_rules import capture_enqueued, make_rule
from tests.support.factories import make_company, make_sync
from tests.support.services import only_on_postgresql

pytestmark = pytest.mark.django_db

CONFIGURATION_ERROR = 4000


def fail(company: Company, hours_ago: float) -> None:
    """A failed sync, counted into the company's streak as a refresh does."""
    make_sync(
        company,
        code=CONFIGURATION_ERROR,
        ago=timedelta(hours=hours_ago),
        error_message="Bank account is not configured.",
    )
    update_streak(Company.objects.get(pk=company.pk))


def succeed(company: Company, hours_ago: float) -> None:
    make_sync(company, code=2000, ago=timedelta(hours=hours_ago))
    update_streak(Company.objects.get(pk=company.pk))


def set_streak(company: Company, streak: int) -> None:
    """The condition itself, without the syncs behind it (for the state machine's tests)."""
    Company.objects.filter(pk=company.pk).update(
        failing_streak=streak, failing_since=timezone.now() if streak else None
    )


def kinds(transitions) -> list[str]:
    return [t.kind for t in transitions]


def test_a_streak_reaching_three_alerts_once_stays_quiet_then_recovers_once(
    monkeypatch, django_capture_on_commit_callbacks
):
    enqueued = capture_enqueued(monkeypatch)
    rule = make_rule(Condition.STREAK)
    company = make_company(name="Acme Ltd")
    for hours in (10, 9):
        fail(company, hours)
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.evaluate() == []
    fail(company, 8)
    with django_capture_on_commit_callbacks(execute=True):
        fired = engine.evaluate()
    assert kinds(fired) == [TransitionKind.FIRED]
    assert enqueued == [fired]
    alert = Transition.objects.get()
    assert alert.summary.startswith("Acme Ltd has failed 3 syncs in a row since ")
    assert alert.summary.endswith(" UTC")
    assert alert.company_id == company.pk and alert.path == f"/companies/{company.company_id}/"
    assert alert.detail["companies"] == [
        {"company_id": str(company.company_id), "name": "Acme Ltd", "platform": "Xero"}
    ]
    assert (alert.sequence, alert.muted) == (1, False)

    for hours in (7, 6):
        fail(company, hours)
        with django_capture_on_commit_callbacks(execute=True):
            assert engine.evaluate() == []
    assert AlertState.objects.get().detail["failing_streak"] == 5

    succeed(company, 5)
    with django_capture_on_commit_callbacks(execute=True):
        recovered = engine.evaluate()
    assert kinds(recovered) == [TransitionKind.RECOVERED]
    assert enqueued == [fired, recovered]
    recovery = recovered[0]
    assert recovery.sequence == 2 and recovery.company_id == company.pk
    assert recovery.summary == "Acme Ltd synced successfully: its failing streak is over"
    assert not AlertState.objects.exists()
    rule.refresh_from_db()
    assert rule.last_evaluated_at is not None


def test_ingest_announcing_the_streak_evaluates_and_hands_the_alert_to_delivery(
    monkeypatch, celery_eager, django_capture_on_commit_callbacks
):
    enqueued = capture_enqueued(monkeypatch)
    make_rule(Condition.STREAK)
    company = make_company()
    with django_capture_on_commit_callbacks(execute=True):
        for hours in (3, 2, 1):
            fail(company, hours)
    assert kinds(enqueued.transitions) == [TransitionKind.FIRED]


@only_on_postgresql("two evaluators at once need a database that lets them overlap")
@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_record_one_alert_and_one_recovery(monkeypatch):
    enqueued = capture_enqueued(monkeypatch)
    make_rule(Condition.STREAK)
    company = make_company()
    for hours in (10, 9, 8):
        fail(company, hours)

    def race() -> list[Transition]:
        barrier = threading.Barrier(2)
        results: list[list[Transition]] = []

        def evaluator() -> None:
            barrier.wait()
            try:
                results.append(engine.evaluate())
            finally:
                connection.close()

        threads = [threading.Thread(target=evaluator) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [t for result in results for t in result]

    assert kinds(race()) == [TransitionKind.FIRED]
    fail(company, 7)
    assert race() == []
    succeed(company, 6)
    assert kinds(race()) == [TransitionKind.RECOVERED]
    assert sorted(Transition.objects.values_list("sequence", "kind")) == [
        (1, TransitionKind.FIRED),
        (2, TransitionKind.RECOVERED),
    ]
    assert kinds(enqueued.transitions) == [TransitionKind.FIRED, TransitionKind.RECOVERED]


def test_a_condition_that_flaps_inside_the_hold_time_never_fires():
    make_rule(Condition.STREAK, hold_minutes=5)
    company = make_company()
    start = timezone.now()
    for minute, streak in ((0, 3), (2, 0), (3, 4), (7, 0), (8, 3), (12, 1)):
        set_streak(company, streak)
        assert engine.evaluate(now=start + timedelta(minutes=minute)) == []
    assert not Transition.objects.exists()
    assert not AlertState.objects.exists()


def test_it_fires_once_the_condition_held_for_the_hold_time_and_recovers_after_as_long():
    make_rule(Condition.STREAK, hold_minutes=5)
    company = make_company()
    start = timezone.now()

    def at(minute: float, streak: int) -> list[str]:
        set_streak(company, streak)
        return kinds(engine.evaluate(now=start + timedelta(minutes=minute)))

    assert at(0, 3) == []
    assert AlertState.objects.get().state == SubjectState.PENDING
    assert at(4, 3) == []
    assert at(5, 4) == [TransitionKind.FIRED]
    assert at(6, 0) == []
    assert AlertState.objects.get().state == SubjectState.RECOVERING
    assert at(8, 3) == []  # back before its recovery held: still firing, nothing said
    assert AlertState.objects.get().state == SubjectState.FIRING
    assert at(9, 0) == []
    assert at(13, 0) == []
    assert at(14, 0) == [TransitionKind.RECOVERED]
    assert not AlertState.objects.exists()


def test_a_subject_that_fires_again_carries_on_its_sequence():
    make_rule(Condition.STREAK)
    company = make_company()
    for streak in (3, 0, 3, 0):
        set_streak(company, streak)
        engine.evaluate()
    assert list(Transition.objects.order_by("sequence").values_list("sequence", "kind")) == [
        (1, TransitionKind.FIRED),
        (2, TransitionKind.RECOVERED),
        (3, TransitionKind.FIRED),
        (4, TransitionKind.RECOVERED),
    ]


def test_a_disabled_rule_is_not_evaluated():
    make_rule(Condition.STREAK, enabled=False)
    set_streak(make_company(), 9)
    assert engine.evaluate() == []


def test_events_evaluate_only_the_checks_they_can_move():
    make_rule(Condition.STREAK)
    set_streak(make_company(), 3)
    assert engine.evaluate(events=frozenset({"problems"})) == []
    assert kinds(engine.evaluate(events=frozenset({"streak"}))) == [TransitionKind.FIRED]


def test_a_snoozed_rule_records_its_alerts_muted_until_the_snooze_ends():
    now = timezone.now()
    snoozed = make_rule(Condition.STREAK, snoozed_until=now + timedelta(hours=1))
    woke = make_rule(Condition.STREAK, snoozed_until=now - timedelta(hours=1))
    set_streak(make_company(), 3)
    engine.evaluate(now=now)
    assert snoozed.transitions.get().muted
    assert not woke.transitions.get().muted


def test_mutes_of_the_rule_the_company_or_the_company_for_that_rule_hold_the_alert_back():
    now = timezone.now()
    company = make_company()
    rule = make_rule(Condition.STREAK)
    other = make_rule(Condition.PROBLEM_NEW)
    cases = [
        ({"rule": rule}, True),
        ({"company": company}, True),
        ({"company": company, "rule": rule}, True),
        ({"company": company, "rule": other}, False),
        ({"company": make_company()}, False),
        ({"company": company, "until": now - timedelta(minutes=1)}, False),
        ({"company": company, "until": now + timedelta(minutes=1)}, True),
    ]
    for mute, muted in cases:
        Mute.objects.all().delete()
        Transition.objects.all().delete()
        AlertState.objects.all().delete()
        set_streak(company, 0)
        Mute.objects.create(**mute)
        set_streak(company, 3)
        (fired,) = engine.evaluate()
        assert fired.muted is muted, mute


def test_a_rule_covers_only_its_companies_and_platforms():
    acme = make_company(name="Acme")
    sage = make_company(name="Sage user", platform_name="Sage")
    other = make_company(name="Other")
    for company in (acme, sage, other):
        set_streak(company, 3)
    by_company = make_rule(Condition.STREAK)
    by_company.companies.set([acme, sage])
    by_both = make_rule(Condition.STREAK, platforms=["Sage"])
    by_both.companies.set([acme, sage])
    by_platform = make_rule(Condition.STREAK, platforms=["Sage", "QuickBooks Online"])
    everything = make_rule(Condition.STREAK)
    engine.evaluate()

    def labels(rule) -> set[str]:
        return set(rule.transitions.values_list("label", flat=True))

    assert labels(by_company) == {"Acme", "Sage user"}
    assert labels(by_both) == {"Sage user"}
    assert labels(by_platform) == {"Sage user"}
    assert labels(everything) == {"Acme", "Sage user", "Other"}


def test_a_broken_check_keeps_no_other_rule_quiet(monkeypatch):
    from alerts.conditions.platforms import LongRunning

    def broken(self, rule, now):
        raise RuntimeError("boom")

    monkeypatch.setattr(LongRunning, "findings", broken)
    make_rule(Condition.LONG_RUNNING)
    make_rule(Condition.STREAK)
    set_streak(make_company(), 3)
    assert kinds(engine.evaluate()) == [TransitionKind.FIRED]


def every_rule() -> None:
    for condition in (
        Condition.STREAK,
        Condition.COMPANY_DISCONNECTED,
        Condition.LONG_RUNNING,
        Condition.PLATFORM_SUCCESS,
        Condition.PROBLEM_NEW,
        Condition.PROBLEM_REGRESSED,
        Condition.PROBLEM_COMPANIES,
    ):
        make_rule(condition, min_syncs=1, threshold=1 if condition == "problem_companies" else None)


def estate(companies: int) -> None:
    """Companies that each trip every condition: failing (one cut off), running long."""
    for n in range(companies):
        company = make_company(platform_name=f"Platform {n % 3}")
        for hours in (3, 2):
            make_sync(
                company,
                code=4220 if n == 0 else 5130,
                ago=timedelta(hours=hours),
                error_message=f"Cause {chr(65 + n)}",
                items=[] if n == 0 else [(4, f"Item cause {chr(65 + n)}")],
            )
        make_sync(company, code=1010, ago=timedelta(minutes=90))
        make_sync(company, code=5000, ago=timedelta(minutes=30), error_message="Server error")
        update_streak(Company.objects.get(pk=company.pk))


def evaluation_queries() -> tuple[int, int]:
    """(queries, transitions) of one evaluation of every rule."""
    with CaptureQueriesContext(connection) as queries:
        moved = engine.evaluate()
    return len(queries), len(moved)


def test_evaluating_every_rule_costs_the_same_queries_whatever_the_estate_size():
    every_rule()
    estate(2)
    small, alerts_small = evaluation_queries()
    quiet_small = evaluation_queries()
    estate(12)
    # Every subject new again, as in the first evaluation.
    AlertState.objects.all().delete()
    Transition.objects.all().delete()
    Rule.objects.update(last_evaluated_at=None)
    large, alerts_large = evaluation_queries()
    assert alerts_large > alerts_small >= 7
    assert large == small
    assert evaluation_queries() == quiet_small


def test_a_delivery_that_cannot_be_enqueued_loses_no_transition(
    monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(transitions):
        raise ConnectionError("broker down")

    monkeypatch.setattr("alerts.delivery.enqueue_for", refuse)
    make_rule(Condition.STREAK)
    make_rule(Condition.STREAK)
    set_streak(make_company(), 3)
    with django_capture_on_commit_callbacks(execute=True):
        moved = engine.evaluate()
    assert kinds(moved) == [TransitionKind.FIRED] * 2
    assert Transition.objects.count() == 2
