"""Each condition fires when what it watches happens, and recovers when it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import engine
from alerts.models import Mute, Transition
from alerts.vocabulary import Condition, TransitionKind
from dashboard.ingest.refresh import update_streak
from dashboard.models import Company, Problem, Sync
from dashboard.vocabulary import ProblemState
from tests.support.alert_rules import make_rule
from tests.support.factories import make_company, make_failed_sync_without_items, make_sync
from tests.support.problems import CLOSED, TAX, failed_sync, retry_of, tids

pytestmark = pytest.mark.django_db


def moved(rule) -> list[tuple[str, str]]:
    """(kind, label) of what the rule's evaluation now records."""
    engine.evaluate()
    return [(t.kind, t.label) for t in Transition.objects.filter(rule=rule).order_by("pk")]


def fire(label: str) -> tuple[str, str]:
    return (TransitionKind.FIRED, label)


def recover(label: str) -> tuple[str, str]:
    return (TransitionKind.RECOVERED, label)


def succeed(company: Company, hours_ago: float = 0.5) -> None:
    make_sync(company, code=2000, ago=timedelta(hours=hours_ago))
    update_streak(Company.objects.get(pk=company.pk))


def test_a_company_cut_off_from_its_platform_alerts_until_it_syncs_again():
    rule = make_rule(Condition.COMPANY_DISCONNECTED)
    cut_off = make_company(name="Cut off", platform_name="Sage")
    broken = make_company(name="Misconfigured")
    make_failed_sync_without_items(cut_off, "Company has been deauthorized.", code=4220)
    make_failed_sync_without_items(broken, "Bank account is missing.", code=4000)
    assert moved(rule) == [fire("Cut off")]
    alert = Transition.objects.get()
    assert alert.summary.startswith("Cut off is cut off from Sage: Company de-authorized (4220) at")
    assert alert.detail["status_code"] == 4220
    make_failed_sync_without_items(cut_off, "Server error.", code=5000, ago=timedelta(minutes=30))
    assert moved(rule) == [fire("Cut off")]  # still cut off: no success since
    succeed(cut_off, 0.1)
    assert moved(rule) == [fire("Cut off"), recover("Cut off")]


def test_billing_expiry_and_a_deleted_company_count_as_cut_off():
    rule = make_rule(Condition.COMPANY_DISCONNECTED)
    make_failed_sync_without_items(make_company(name="Unpaid"), "Billing expired.", code=4260)
    make_failed_sync_without_items(make_company(name="Gone"), "Company deleted.", code=4040)
    assert sorted(moved(rule)) == [fire("Gone"), fire("Unpaid")]


def test_a_sync_running_long_alerts_per_company_until_it_finishes():
    rule = make_rule(Condition.LONG_RUNNING, threshold=60)
    slow = make_company(name="Slow")
    stuck = make_sync(slow, code=1010, ago=timedelta(minutes=90))
    make_sync(slow, code=1010, ago=timedelta(minutes=70))
    make_sync(make_company(name="Recent"), code=1010, ago=timedelta(minutes=30))
    make_sync(make_company(name="Queued"), code=1000, ago=timedelta(minutes=90))
    assert moved(rule) == [fire("Slow")]
    alert = Transition.objects.get()
    assert alert.summary.startswith("Slow: 2 syncs have been running for over 60 minutes")
    assert alert.detail["syncs"] == 2 and alert.detail["sync_ids"][0] == str(stuck.sync_id)
    Sync.objects.filter(company=slow).update(status_code=2000)
    assert moved(rule) == [fire("Slow"), recover("Slow")]


def test_a_platform_whose_last_hour_mostly_failed_alerts_and_recovers_when_it_ends():
    rule = make_rule(Condition.PLATFORM_SUCCESS, threshold=80, min_syncs=5)
    xero = [make_company(name=f"Xero {n}") for n in range(3)]
    sage = make_company(name="Sage user", platform_name="Sage")
    for n in range(6):
        make_sync(xero[n % 3], code=5000 if n < 2 else 2000, ago=timedelta(minutes=10 + n))
    for n in range(4):  # too few to judge, however badly they went
        make_sync(sage, code=5000, ago=timedelta(minutes=10 + n))
    make_sync(xero[0], code=1000, ago=timedelta(minutes=5))  # running: not counted
    assert moved(rule) == [fire("Xero")]
    alert = Transition.objects.get()
    assert alert.summary == "Xero: 67% of the last hour's syncs succeeded (4 of 6; below 80%)"
    assert [c["name"] for c in alert.detail["companies"]] == ["Xero 0", "Xero 1"]
    assert alert.path == "/syncs/?range=24h&category=failed&platform=Xero"
    # An hour on, those syncs have left the window.
    engine.evaluate(now=timezone.now() + timedelta(hours=1))
    assert [t.kind for t in Transition.objects.order_by("pk")] == [
        TransitionKind.FIRED,
        TransitionKind.RECOVERED,
    ]


def test_a_new_problem_alerts_and_recovers_when_it_is_resolved():
    failed_sync(make_company(), TAX, ago=30)  # known before the rule: never alerts
    rule = make_rule(Condition.PROBLEM_NEW, made_ago=timedelta(0))
    original = failed_sync(make_company(name="Acme"), CLOSED, ago=0.5)
    problem = Problem.objects.get(cause=CLOSED)
    label = f"Problem #{problem.pk} (5130 directCosts): {CLOSED}"
    assert moved(rule) == [fire(label)]
    alert = Transition.objects.get()
    assert alert.problem_id == problem.pk and alert.path == f"/problems/{problem.pk}/"
    assert alert.detail["companies"][0]["name"] == "Acme"
    assert alert.summary == f"New problem: {label} (1 item in 1 sync outstanding at 1 company)"
    retry_of(original, dict.fromkeys(tids(original)), ago=0.1)
    assert moved(rule) == [fire(label), recover(label)]


def test_a_regressed_problem_alerts_and_recovers_when_it_is_resolved_again():
    company = make_company()
    original = failed_sync(company, CLOSED, ago=5)
    retry_of(original, dict.fromkeys(tids(original)), ago=4)
    rule = make_rule(Condition.PROBLEM_REGRESSED, made_ago=timedelta(hours=1))
    assert moved(rule) == []
    again = failed_sync(company, CLOSED, ago=0.5)
    problem = Problem.objects.get()
    assert problem.state == ProblemState.REGRESSED
    label = f"Problem #{problem.pk} (5130 directCosts): {CLOSED}"
    assert moved(rule) == [fire(label)]
    retry_of(again, dict.fromkeys(tids(again)), ago=0.1)
    assert moved(rule) == [fire(label), recover(label)]


def test_a_problem_reaching_n_companies_alerts_and_recovers_below_it():
    rule = make_rule(Condition.PROBLEM_COMPANIES, threshold=2)
    first = failed_sync(make_company(), CLOSED, ago=2)
    failed_sync(make_company(), TAX, ago=2)
    assert moved(rule) == []
    failed_sync(make_company(), CLOSED, ago=1)
    problem = Problem.objects.get(cause=CLOSED)
    label = f"Problem #{problem.pk} (5130 directCosts): {CLOSED}"
    assert moved(rule) == [fire(label)]
    retry_of(first, dict.fromkeys(tids(first)), ago=0.5)
    assert moved(rule) == [fire(label), recover(label)]
    recovery = Transition.objects.order_by("pk").last()
    assert recovery.summary == f"Outstanding at fewer than 2 companies now: {label}"


def test_an_ignored_problem_does_not_alert_and_a_problem_mute_holds_its_alert_back():
    rule = make_rule(Condition.PROBLEM_COMPANIES, threshold=1)
    failed_sync(make_company(), CLOSED, ago=1)
    failed_sync(make_company(), TAX, ago=1)
    closed, tax = Problem.objects.get(cause=CLOSED), Problem.objects.get(cause=TAX)
    Problem.objects.filter(pk=tax.pk).update(state=ProblemState.IGNORED)
    Mute.objects.create(problem=closed, rule=rule)
    engine.evaluate()
    (alert,) = Transition.objects.all()
    assert alert.problem_id == closed.pk and alert.muted


def test_problem_rules_cover_their_companies_and_platforms():
    acme = make_company(name="Acme")
    failed_sync(acme, CLOSED, ago=1)
    failed_sync(make_company(platform_name="Sage"), TAX, ago=1)
    by_company = make_rule(Condition.PROBLEM_NEW)
    by_company.companies.set([acme])
    by_platform = make_rule(Condition.PROBLEM_NEW, platforms=["Sage"])
    engine.evaluate()
    assert [t.detail["cause"] for t in by_company.transitions.all()] == [CLOSED]
    assert [t.detail["cause"] for t in by_platform.transitions.all()] == [TAX]
