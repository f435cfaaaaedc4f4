"""At about 100,000 items, the problems that ingest keeps batch by batch, company by
company, through retries that resolve some failures and fail others again, are
exactly the problems that the backfill builds from the same rows at once."""

from __future__ import annotations

import pytest

from dashboard import ingest
from dashboard import models as mirror
from dashboard.problems import backfill
from sandbox import estate, services
from sandbox import models as sb
from tests.mirror.test_problems import assert_consistent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.system,
    pytest.mark.timeout(900),
]

# 90 companies x 24 syncs x about 46 items a sync: about 100,000 items.
COMPANIES, SYNCS, ITEMS = 90, 24, 46


def _snapshot() -> dict[str, dict]:
    """Every outstanding problem by its cause, each company's share of it, and the
    problem of each outstanding transaction and of each failing streak's itemless sync."""
    cause = {
        p.pk: (p.status_code, p.data_type, p.cause)
        for p in mirror.Problem.objects.exclude(state="merged")
    }
    problems = {
        cause[p.pk]: (
            p.items_outstanding,
            p.syncs_outstanding,
            p.companies_outstanding,
            p.trend,
            p.platforms,
        )
        for p in mirror.Problem.objects.exclude(state="merged")
        if p.items_outstanding or p.syncs_outstanding
    }
    shares = {
        (cause[row.problem_id], row.company_id): (
            row.items,
            row.syncs,
            row.first_seen,
            row.last_seen,
            row.days,
        )
        for row in mirror.ProblemCompany.objects.all()
    }
    transactions = {
        (company, tid): cause[problem]
        for company, tid, problem in mirror.TransactionState.objects.filter(
            outstanding=True
        ).values_list("company_id", "transaction_id", "problem_id")
    }
    streaks = {}
    for company in mirror.Company.objects.filter(failing_streak__gt=0):
        for pk, problem in mirror.Sync.objects.filter(
            company=company, sync_utc__gte=company.failing_since, items_total=0
        ).values_list("pk", "problem_id"):
            streaks[pk] = cause.get(problem)
    # Each company's open problems, as counted by the upkeep (checked against the
    # shares by `assert_open_problems_counted`).
    open_problems = dict(
        mirror.Company.objects.filter(problems_open__gt=0).values_list(
            "company_id", "problems_open"
        )
    )
    return {
        "problems": problems,
        "open_problems": open_problems,
        "shares": shares,
        "transactions": transactions,
        "streaks": streaks,
    }


def _retry_some(upstream) -> int:
    """Retry the latest sync with failed items of every third company upstream, and refresh
    those companies: some items complete, some fail again (with a cause of their own)."""
    retried = 0
    for number, company in enumerate(sb.Company.objects.order_by("pk")):
        if number % 3:
            continue
        failed = (
            sb.Sync.objects.filter(company=company, status_code__in=[5120, 5130])
            .order_by("-started_at")
            .first()
        )
        if failed is None:
            continue
        retry = services.initiate_sync(company=company, source_syncs=[failed])
        services.finalize_sync(retry.pk)
        retried += 1
        mirrored = mirror.Company.objects.get(company_id=company.company_id)
        ingest.refresh_company(upstream, mirrored)
    return retried


def test_ingest_and_the_backfill_build_the_same_problems_at_100000_items(
    aimed, in_process_upstream, sandbox_config
):
    # The pull is thousands of requests in a minute or two: the sandbox's own
    # limit (as Codat's) is not what this test is about.
    sandbox_config.rate_limit_per_minute = 1_000_000
    sandbox_config.rate_limit_per_day = 10_000_000
    sandbox_config.save()
    built = estate.build_estate(
        companies=COMPANIES, syncs_per_company=SYNCS, items_per_sync=ITEMS, days=20, seed=11
    )
    assert 90_000 <= built.items <= 120_000
    for company in ingest.refresh_companies(in_process_upstream):
        ingest.refresh_company(in_process_upstream, company)
    assert mirror.PushItem.objects.count() == built.items
    assert _retry_some(in_process_upstream) >= COMPANIES // 4
    assert_consistent()
    by_ingest = _snapshot()
    # An estate of this size has many causes, some of them resolved by the retries.
    assert len(by_ingest["problems"]) >= 30
    assert len(by_ingest["transactions"]) > 5_000
    assert mirror.Problem.objects.filter(state="resolved").exists()

    # As an estate mirrored before problems existed: nothing grouped, old fingerprints.
    mirror.TransactionState.objects.update(problem=None)
    mirror.Company.objects.update(problems_open=0)
    mirror.Sync.objects.update(problem=None, error_fingerprint="old")
    mirror.PushItem.objects.exclude(fingerprint="").update(fingerprint="old")
    for model in (
        mirror.ProblemCompany,
        mirror.ProblemActivity,
        mirror.ProblemAlias,
        mirror.Problem,
    ):
        model.objects.all().delete()
    rebuilt = backfill.build()
    assert rebuilt.companies == mirror.Company.objects.count()
    assert rebuilt.transactions == len(by_ingest["transactions"])

    by_backfill = _snapshot()
    assert by_backfill["problems"] == by_ingest["problems"]
    assert by_backfill["shares"] == by_ingest["shares"]
    assert by_backfill["transactions"] == by_ingest["transactions"]
    assert by_backfill["streaks"] == by_ingest["streaks"]
    assert by_backfill["open_problems"] == by_ingest["open_problems"]
    assert by_ingest["open_problems"]
    assert_consistent()
