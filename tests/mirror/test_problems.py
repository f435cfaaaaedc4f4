"""Problems kept by ingest: every outstanding failure in exactly one, counts that add up,
and the same problems whether ingest built them or the backfill did."""

from __future__ import annotations

from collections import Counter

import pytest

from dashboard import ingest
from dashboard import models as mirror
from dashboard.problems import backfill
from dashboard.vocabulary import Category

pytestmark = pytest.mark.django_db(transaction=True)


def _groups() -> dict[tuple, tuple]:
    """Each problem by its cause: (items, syncs, companies, trend, platforms, state)."""
    return {
        (p.status_code, p.data_type, p.cause): (
            p.items_outstanding,
            p.syncs_outstanding,
            p.companies_outstanding,
            p.trend,
            p.platforms,
            p.state,
        )
        for p in mirror.Problem.objects.exclude(state="merged")
        if p.items_outstanding or p.syncs_outstanding
    }


def assert_consistent() -> None:
    """A problem's counts are the sum of its companies' shares, and each share is what
    the company's outstanding rows say."""
    shares = Counter()
    for row in mirror.ProblemCompany.objects.all():
        shares[(row.problem_id, "items")] += row.items
        shares[(row.problem_id, "syncs")] += row.syncs
        shares[(row.problem_id, "companies")] += 1
        assert row.items + row.syncs > 0
    for p in mirror.Problem.objects.all():
        assert p.items_outstanding == shares[(p.pk, "items")], p
        assert p.syncs_outstanding == shares[(p.pk, "syncs")], p
        assert p.companies_outstanding == shares[(p.pk, "companies")], p
    # Every outstanding transaction has a problem, and counts in its company's share.
    states = mirror.TransactionState.objects.filter(outstanding=True)
    assert not states.filter(problem=None).exists()
    by_share = Counter(states.values_list("company_id", "problem_id"))
    for row in mirror.ProblemCompany.objects.all():
        assert by_share[(row.company_id, row.problem_id)] == row.items


def test_ingest_puts_every_outstanding_failure_in_one_problem(mirrored):
    assert mirror.Problem.objects.exists()
    assert_consistent()
    open_items = mirror.TransactionState.objects.filter(outstanding=True).count()
    assert sum(mirror.Problem.objects.values_list("items_outstanding", flat=True)) == open_items
    # Failed syncs without items in a failing streak count as the problem's syncs.
    for company in mirror.Company.objects.filter(failing_streak__gt=0):
        itemless = mirror.Sync.objects.filter(
            company=company,
            sync_utc__gte=company.failing_since,
            category=Category.FAILED,
            items_total=0,
        )
        assert not itemless.filter(problem=None).exists()
    # The cause comes first: no problem's cause carries Codat's wrapper.
    for problem in mirror.Problem.objects.all():
        assert "Correlation ID" not in problem.cause
        assert "downstream service" not in problem.cause


def test_the_backfill_builds_what_ingest_built(mirrored):
    built_by_ingest = _groups()
    assert built_by_ingest
    # As an estate mirrored before problems existed: nothing grouped, old fingerprints.
    mirror.TransactionState.objects.update(problem=None)
    mirror.Sync.objects.update(problem=None, error_fingerprint="old")
    mirror.PushItem.objects.exclude(fingerprint="").update(fingerprint="old")
    mirror.ProblemCompany.objects.all().delete()
    mirror.ProblemActivity.objects.all().delete()
    mirror.ProblemAlias.objects.all().delete()
    mirror.Problem.objects.all().delete()
    built = backfill.build()
    assert built.companies == mirror.Company.objects.count()
    assert built.items_fingerprinted > 0
    assert _groups() == built_by_ingest
    assert_consistent()
    # Again: nothing changes.
    again = backfill.build()
    assert again.items_fingerprinted == again.syncs_fingerprinted == 0
    assert _groups() == built_by_ingest


def test_refreshing_again_changes_no_problem(mirrored, in_process_upstream):
    before = _groups()
    activity = mirror.ProblemActivity.objects.count()
    for company in mirror.Company.objects.all():
        ingest.refresh_company(in_process_upstream, company, force=True)
    assert _groups() == before
    assert mirror.ProblemActivity.objects.count() == activity
    assert_consistent()
