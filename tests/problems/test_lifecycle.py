"""A problem's life: resolved by a retry that works, regressed when its cause comes back,
quiet while ignored, awake again after a snooze, merged without losing the target's
triage, and reopened.

The first test drives the real path: ingest from the sandbox, the problem's
retry confirmed on its pages, the worker's tasks in eager mode, and the
refresh that reads the new syncs. The others build the mirror directly
(`tests.support.factories`), which keeps the current state and the problems
as ingest does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from dashboard import ingest
from dashboard.models import (
    BulkRetry,
    Company,
    Problem,
    ProblemActivity,
    ProblemCompany,
    RetryRequest,
    Sync,
    TransactionState,
)
from dashboard.problems import lifecycle, retries, selectors
from dashboard.tasks import follow_retries_task, problems_upkeep_task
from dashboard.vocabulary import ProblemEvent, ProblemState
from tests.support.bulk import review_post
from tests.support.factories import make_company
from tests.support.problems import (
    CLOSED,
    TAX,
    assert_open_problems_counted,
    failed_sync,
    open_problem_preview,
    opened,
    problem_of,
    retry_of,
    tids,
)
from tests.support.scenario import failed_company, finished_sync


def _events(problem: Problem) -> list[str]:
    return list(
        ProblemActivity.objects.filter(problem=problem)
        .order_by("at", "pk")
        .values_list("event", flat=True)
    )


def _counts(problem: Problem) -> tuple[int, int, int]:
    problem.refresh_from_db()
    return (problem.items_outstanding, problem.syncs_outstanding, problem.companies_outstanding)


def assert_counts_are_the_current_state() -> None:
    """Each problem's counts are what its outstanding rows say, company by company."""
    rows = Counter(
        TransactionState.objects.filter(outstanding=True).values_list("problem_id", "company_id")
    )
    for problem in Problem.objects.all():
        mine = {company: n for (p, company), n in rows.items() if p == problem.pk}
        assert problem.items_outstanding == sum(mine.values()), problem
        assert problem.companies_outstanding == len(mine), problem
        shares = dict(
            ProblemCompany.objects.filter(problem=problem).values_list("company_id", "items")
        )
        assert shares == mine, problem


@pytest.mark.system  # the sandbox over HTTP and the worker's tasks: a few seconds
def test_a_problem_resolves_after_a_retry_that_works_and_regresses_when_its_cause_recurs(
    client, lead, aimed, in_process_upstream, sandbox_config, celery_eager
):
    sandbox_config.retry_success_rate = 1.0  # every re-pushed item completes
    sandbox_config.long_running_rate = 0
    sandbox_config.save()
    upstream = [failed_company(6, name="Harbour Coffee Ltd"), failed_company(3, name="Northwind")]
    companies = []
    for upstream_company in upstream:
        company = ingest.ensure_company(in_process_upstream, str(upstream_company.company_id))
        ingest.refresh_company(in_process_upstream, company)
        companies.append(company)
    problem = TransactionState.objects.filter(outstanding=True).first().problem
    assert _counts(problem) == (9, 2, 2)
    assert problem.state == ProblemState.OPEN

    client.force_login(lead)
    bulk = opened(open_problem_preview(client, problem))
    # Confirmed: the fan-out, each request's POST and the sandbox's new syncs run at once.
    assert review_post(client, bulk, confirm=True).status_code == 302
    requests = RetryRequest.objects.filter(bulk=bulk)
    assert sorted(requests.values_list("state", flat=True)) == ["submitted", "submitted"]
    follow_retries_task()  # reads the new syncs, as their webhooks would make it
    assert sorted(requests.values_list("state", flat=True)) == ["completed", "completed"]

    assert _counts(problem) == (0, 0, 0)
    assert problem.state == ProblemState.RESOLVED and problem.resolved_at is not None
    assert _events(problem) == ["created", "retry", "resolved"]
    resolved = ProblemActivity.objects.get(problem=problem, event=ProblemEvent.RESOLVED)
    assert resolved.user is None  # the mirror did it
    assert resolved.detail == {"items": 0, "syncs": 0, "companies": 0}
    assert retries.summary(problem)["last"].sentence == "9 complete, 0 failed again"
    report = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-problem-state">Resolved<' in report
    assert_counts_are_the_current_state()

    # The same cause again, days later: the problem comes back.
    finished_sync(upstream[0], started=timezone.now(), code=5130, items=2)
    ingest.refresh_company(in_process_upstream, companies[0])
    assert _counts(problem) == (2, 1, 1)
    assert problem.state == ProblemState.REGRESSED and problem.regressed_at is not None
    assert _events(problem)[-1] == ProblemEvent.REGRESSED
    assert Problem.objects.count() == 1
    assert_counts_are_the_current_state()


def _open_problem(cause: str = CLOSED, *, items: int = 2):
    company = make_company()
    original = failed_sync(company, *[cause] * items, ago=5)
    return company, original, problem_of(company, tids(original)[0])


def test_an_ignored_problem_stays_ignored_while_its_counts_move(db, runner):
    company, original, problem = _open_problem()
    lifecycle.ignore(problem.pk, runner, "Known upstream incident.")
    later = failed_sync(company, CLOSED, CLOSED, ago=1)
    assert _counts(problem) == (4, 2, 1)
    assert problem.state == ProblemState.IGNORED
    # Everything pushed since: still ignored, nothing recorded as resolved.
    for sync in (original, later):
        retry_of(sync, dict.fromkeys(tids(sync)), ago=0.5)
    assert _counts(problem) == (0, 0, 0)
    assert problem.state == ProblemState.IGNORED and problem.resolved_at is None
    assert _events(problem) == ["created", "ignored"]
    # Reopened with nothing outstanding: the mirror says resolved.
    lifecycle.reopen(problem.pk, runner)
    problem.refresh_from_db()
    assert problem.state == ProblemState.RESOLVED
    assert _events(problem)[-1] == ProblemEvent.REOPENED


def test_a_snooze_ends_at_its_date_through_the_beat_task(db, runner):
    assert settings.CELERY_BEAT_SCHEDULE["dashboard-problems"]["task"] == (
        problems_upkeep_task.name
    )
    company, _, problem = _open_problem()
    lifecycle.snooze(problem.pk, runner, until=timezone.now() + timedelta(hours=1))
    failed_sync(company, CLOSED, ago=0.5)  # counts move while it sleeps
    assert problem_upkeep_now() == {"woken": 0, "companies_moved": 0}
    problem.refresh_from_db()
    assert problem.state == ProblemState.SNOOZED and problem.items_outstanding == 3
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        assert problem_upkeep_now() == {"woken": 1, "companies_moved": 0}
        assert problem_upkeep_now() == {"woken": 0, "companies_moved": 0}
    assert_open_problems_counted()
    problem.refresh_from_db()
    assert problem.state == ProblemState.OPEN
    assert problem.snoozed_until is None and problem.state_before_snooze == ""
    woke = ProblemActivity.objects.filter(problem=problem).latest("at", "pk")
    assert woke.event == ProblemEvent.WOKE and woke.user is None


def problem_upkeep_now() -> dict[str, int]:
    """The beat task, as beat runs it: what it woke and moved (the counts it repaired
    are `test_the_beat_repairs_an_open_problem_count_left_behind`'s)."""
    done = problems_upkeep_task.apply().get()
    done.pop("open_counts_repaired")
    return done


def test_a_snooze_ends_when_enough_more_items_fail(db, runner):
    company, _, problem = _open_problem()
    lifecycle.snooze(problem.pk, runner, more_failures=3)
    problem.refresh_from_db()
    assert problem.snooze_until_failures == 2 + 3
    failed_sync(company, CLOSED, CLOSED, ago=1)
    problem.refresh_from_db()
    assert problem.state == ProblemState.SNOOZED  # 4 of 5
    failed_sync(make_company(), CLOSED, ago=0.5)
    problem.refresh_from_db()
    assert problem.state == ProblemState.OPEN and problem.snooze_until_failures is None
    assert _events(problem)[-2:] == ["snoozed", "woke"]


def test_a_snoozed_problem_that_resolved_and_came_back_wakes_regressed(db, runner):
    company, original, problem = _open_problem()
    lifecycle.snooze(problem.pk, runner, until=timezone.now() + timedelta(days=1))
    retry_of(original, dict.fromkeys(tids(original)), ago=4)
    problem.refresh_from_db()
    assert problem.state == ProblemState.SNOOZED
    assert problem.state_before_snooze == ProblemState.RESOLVED
    failed_sync(company, CLOSED, ago=1)
    lifecycle.reopen(problem.pk, runner)
    problem.refresh_from_db()
    assert problem.state == ProblemState.REGRESSED
    assert _events(problem) == ["created", "snoozed", "reopened"]


def test_merging_keeps_the_targets_triage_and_moves_the_counts_exactly(db, runner, lead):
    shared, only_source = make_company(name="Both"), make_company(name="Source only")
    failed_sync(shared, CLOSED, CLOSED, TAX, ago=6)
    failed_sync(only_source, TAX, TAX, ago=5)
    target = Problem.objects.get(cause__icontains="period")
    source = Problem.objects.get(cause__icontains="tax")
    lifecycle.assign(target.pk, lead, lead)
    lifecycle.note(target.pk, lead, "Customers must reopen the period.")
    lifecycle.edit_playbook(target.pk, lead, "1. Reopen the period.", "Dear customer, …")
    lifecycle.assign(source.pk, runner, runner)
    lifecycle.note(source.pk, runner, "Check the tax rates.")
    lifecycle.edit_playbook(source.pk, lead, "1. Fix the tax rate.", "")
    before = {p.pk: _counts(p) for p in (target, source)}
    assert before == {target.pk: (2, 1, 1), source.pk: (3, 2, 2)}

    merged = lifecycle.merge(source.pk, target.pk, lead)
    assert merged.pk == target.pk
    assert (merged.assignee, merged.playbook) == (lead, "1. Reopen the period.")
    assert merged.customer_message == "Dear customer, …"
    notes = ProblemActivity.objects.filter(event=ProblemEvent.NOTE)
    assert list(notes.filter(problem=target).values_list("text", flat=True)) == [
        "Customers must reopen the period."
    ]
    assert notes.filter(problem=source).count() == 1  # stays with the source
    # Items 2 + 3; syncs: the shared sync once (it held both), the other once; companies: 2.
    assert _counts(target) == (5, 2, 2)
    assert _counts(source) == (0, 0, 0)
    source.refresh_from_db()
    assert source.state == ProblemState.MERGED and source.merged_into == target
    assert not ProblemCompany.objects.filter(problem=source).exists()
    assert_counts_are_the_current_state()
    # The company with both is one company with one open problem now.
    assert_open_problems_counted()
    # The source's cause, failing again, lands in the target.
    failed_sync(make_company(), TAX, ago=1)
    assert _counts(target) == (6, 3, 3)
    assert_counts_are_the_current_state()


def test_a_merge_gives_the_target_the_sources_playbook_only_when_it_has_none(db, lead):
    company = make_company()
    failed_sync(company, CLOSED, TAX, ago=2)
    target = Problem.objects.get(cause__icontains="period")
    source = Problem.objects.get(cause__icontains="tax")
    lifecycle.edit_playbook(source.pk, lead, "1. Fix the tax rate.", "Dear customer")
    lifecycle.merge(source.pk, target.pk, lead)
    target.refresh_from_db()
    assert (target.playbook, target.customer_message) == ("1. Fix the tax rate.", "Dear customer")
    assert target.assignee is None


def test_reopen_ends_an_ignore_or_a_snooze_and_says_who(db, runner):
    _, _, problem = _open_problem()
    lifecycle.ignore(problem.pk, runner)
    lifecycle.reopen(problem.pk, runner)
    problem.refresh_from_db()
    assert problem.state == ProblemState.OPEN
    lifecycle.snooze(problem.pk, runner, more_failures=10)
    lifecycle.reopen(problem.pk, runner)
    problem.refresh_from_db()
    assert problem.state == ProblemState.OPEN and problem.snooze_until_failures is None
    reopened = ProblemActivity.objects.filter(problem=problem, event=ProblemEvent.REOPENED)
    assert [(a.username, a.text) for a in reopened] == [("runner", "Open"), ("runner", "Open")]
    # Reopening an open problem changes nothing and records nothing.
    lifecycle.reopen(problem.pk, runner)
    assert reopened.count() == 2


def test_a_merged_problem_refuses_triage_and_retry(db, client, lead):
    company = make_company()
    failed_sync(company, CLOSED, TAX, ago=2)
    target = Problem.objects.get(cause__icontains="period")
    source = Problem.objects.get(cause__icontains="tax")
    lifecycle.merge(source.pk, target.pk, lead)
    with pytest.raises(ValidationError, match="merged into another"):
        lifecycle.ignore(source.pk, lead)
    client.force_login(lead)
    refused = open_problem_preview(client, source)
    assert refused.status_code == 409
    assert not BulkRetry.objects.filter(problem=source).exists()


def _open_problems(*companies) -> list[int]:
    return [Company.objects.get(pk=c.pk).problems_open for c in companies]


def test_a_companys_open_problems_follow_its_shares_and_the_problems_states(
    db, runner, django_capture_on_commit_callbacks
):
    first, _, closed = _open_problem()
    failed_sync(first, TAX, ago=4)
    second = make_company()
    failed_sync(second, CLOSED, ago=3)
    assert _open_problems(first, second) == [2, 1]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.ignore(closed.pk, runner)
    assert _open_problems(first, second) == [1, 0]
    assert selectors.headline(selectors.ProblemFilter()).companies == 1
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.reopen(closed.pk, runner)
    assert _open_problems(first, second) == [2, 1]
    assert selectors.headline(selectors.ProblemFilter()).companies == 2
    # Snoozed until one more failure: quiet, then open again for both companies
    # when a third company's failure wakes it.
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.snooze(closed.pk, runner, more_failures=1)
    assert _open_problems(first, second) == [1, 0]
    third = make_company()
    with django_capture_on_commit_callbacks(execute=True):
        failed_sync(third, CLOSED, ago=1)
    assert _open_problems(first, second, third) == [2, 1, 1]
    # Resolved at the second company by a retry that works.
    second_sync = Sync.objects.filter(company=second).get()
    retry_of(second_sync, dict.fromkeys(tids(second_sync)), ago=0.5)
    assert _open_problems(first, second, third) == [2, 0, 1]
    assert_open_problems_counted()


def test_the_headline_counts_each_affected_company_once_on_every_selection(db):
    xero, qbo = make_company(platform_name="Xero"), make_company(platform_name="QuickBooks Online")
    for company in (xero, qbo):
        failed_sync(company, CLOSED, TAX, ago=2)
    failed_sync(make_company(platform_name="Xero"), TAX, ago=1)
    default = selectors.ProblemFilter()
    assert selectors.headline(default).companies == 3
    assert selectors.headline(replace(default, platform="Xero")).companies == 2
    assert selectors.headline(replace(default, changed=True)).companies == 3
    # Other selections count from the shares, the same way.
    tax = problem_of(xero, tids(Sync.objects.filter(company=xero).get())[1])
    assert selectors.headline(replace(default, code=tax.status_code)).companies == 3
    assert selectors.headline(replace(default, state=selectors.ANY_STATE)).companies == 3


def test_the_beat_repairs_an_open_problem_count_left_behind(db, runner):
    company, _, problem = _open_problem()
    # As if a worker stopped between ignoring the problem and counting again.
    lifecycle.ignore(problem.pk, runner)
    assert _open_problems(company) == [1]
    assert problems_upkeep_task.apply().get()["open_counts_repaired"] == 1
    assert _open_problems(company) == [0]
    Company.objects.filter(pk=company.pk).update(problems_open=5)
    assert problems_upkeep_task.apply().get()["open_counts_repaired"] == 1
    assert problems_upkeep_task.apply().get()["open_counts_repaired"] == 0
    assert_open_problems_counted()
