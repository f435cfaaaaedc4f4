"""Problems kept by ingest: every outstanding failure in exactly one, counts that add up,
and the same problems whether ingest built them or the backfill did."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection

from dashboard import ingest, retention, selectors
from dashboard import models as mirror
from dashboard.ingest import refresh, state
from dashboard.ingest.companies import upsert_companies
from dashboard.problems import backfill
from dashboard.vocabulary import Category, ItemStatus, ProblemEvent, ProblemState
from tests.support.factories import make_company, make_sync
from tests.support.problems import assert_open_problems_counted
from tests.support.services import only_on_postgresql

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
    # Each company's open problems are its shares in them.
    assert_open_problems_counted()


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


# --- Built from factories: exact counts through resolution, purge, and two writers ---


WRAPPED = (
    "An error occurred in a downstream service. Correlation ID: {}. Message:  "
    "The account period has closed. Date: 2026-0{}-28."
)


def _closed(n: int) -> tuple[int, str]:
    return (ItemStatus.PUSH_ERROR, WRAPPED.format(uuid.uuid4(), n % 9 + 1))


def test_a_company_resolving_its_items_resolves_the_problem_and_a_new_failure_regresses_it():
    company = make_company()
    original = make_sync(company, code=5130, ago=timedelta(days=2), items=[_closed(1), _closed(2)])
    problem = mirror.Problem.objects.get()
    assert (problem.items_outstanding, problem.syncs_outstanding) == (2, 1)
    assert problem.companies_outstanding == 1 and problem.platforms == {"Xero": 1}
    assert sum(problem.trend.values()) == 2
    tids = list(
        mirror.PushItem.objects.filter(sync=original).values_list("transaction_id", flat=True)
    )
    make_sync(
        company,
        ago=timedelta(days=1),
        items=[(ItemStatus.COMPLETED, None)] * 2,
        transaction_ids=tids,
        retry_of=original,
    )
    problem.refresh_from_db()
    assert problem.state == ProblemState.RESOLVED and problem.resolved_at is not None
    assert (problem.items_outstanding, problem.companies_outstanding, problem.trend) == (0, 0, {})
    assert not mirror.ProblemCompany.objects.exists()
    # The same cause again, with other IDs and dates: the same problem, regressed.
    make_sync(make_company(platform_name="FreeAgent"), code=5130, items=[_closed(7)])
    problem.refresh_from_db()
    assert mirror.Problem.objects.count() == 1
    assert problem.state == ProblemState.REGRESSED and problem.regressed_at is not None
    assert problem.platforms == {"FreeAgent": 1}
    events = list(problem.activity.order_by("at", "pk").values_list("event", flat=True))
    assert events == [ProblemEvent.CREATED, ProblemEvent.RESOLVED, ProblemEvent.REGRESSED]
    assert_consistent()


def test_a_failed_sync_without_items_counts_while_its_company_keeps_failing():
    company = make_company()
    message = "The company has been deleted, or its data connection was removed."
    for hours in (3, 2):
        make_sync(company, code=4040, ago=timedelta(hours=hours), error_message=message)
    refresh.update_streak(company)
    problem = mirror.Problem.objects.get()
    assert (problem.status_code, problem.items_outstanding, problem.syncs_outstanding) == (
        4040,
        0,
        2,
    )
    listed = mirror.Sync.objects.filter(selectors.problem_syncs(problem.pk))
    assert listed.count() == 2
    make_sync(company, code=2000, ago=timedelta(hours=1), items=[(ItemStatus.COMPLETED, None)])
    refresh.update_streak(company)
    problem.refresh_from_db()
    assert problem.syncs_outstanding == 0 and problem.state == ProblemState.RESOLVED
    # Still their cause, no longer outstanding: the history's problem filter lists none.
    assert mirror.Sync.objects.filter(problem=problem).count() == 2
    assert not mirror.Sync.objects.filter(selectors.problem_syncs(problem.pk)).exists()
    assert_consistent()


def test_purging_a_company_takes_its_share_out_of_every_problem():
    gone, kept = make_company(), make_company()
    for company in (gone, kept):
        make_sync(company, code=5130, items=[_closed(1), _closed(2), _closed(3)])
    problem = mirror.Problem.objects.get()
    assert (problem.items_outstanding, problem.companies_outstanding) == (6, 2)
    record, _ = retention.request_purge(
        company_id=gone.company_id, requested_by="lead", reason="offboarding"
    )
    retention.purge.purge(record.pk)
    problem.refresh_from_db()
    assert (problem.items_outstanding, problem.syncs_outstanding) == (3, 1)
    assert problem.companies_outstanding == 1 and problem.platforms == {"Xero": 1}
    assert_consistent()


def test_only_an_https_connect_link_is_kept():
    base = {"name": "Dough Ltd", "platform": "Xero"}
    good, bad, none = (uuid.uuid4() for _ in range(3))
    upsert_companies(
        [
            {**base, "id": str(good), "redirect": "https://link.codat.io/company/abc"},
            {**base, "id": str(bad), "redirect": "javascript:alert(1)"},
            {**base, "id": str(none)},
        ]
    )
    links = dict(mirror.Company.objects.values_list("company_id", "redirect_url"))
    assert links == {good: "https://link.codat.io/company/abc", bad: "", none: ""}


@only_on_postgresql("two workers writing at once need PostgreSQL's row locks")
def test_two_workers_meeting_a_new_cause_at_once_make_one_problem_with_exact_counts():
    companies = [make_company() for _ in range(4)]
    syncs = []
    for company in companies:
        syncs.append(
            mirror.Sync.objects.create(
                company=company,
                sync_id=uuid.uuid4(),
                status_code=5130,
                sync_utc=mirror.timezone.now(),
                category=Category.FAILED,
                chain_category=Category.FAILED,
                platform_name="Xero",
            )
        )
    barrier = threading.Barrier(len(syncs))
    errors: list[BaseException] = []

    def write(sync: mirror.Sync) -> None:
        try:
            barrier.wait(timeout=10)
            records = [
                {"transactionId": str(uuid.uuid4()), "status": "PushError", "message": m}
                for m in (_closed(i)[1] for i in range(5))
            ]
            ingest.write_items_many([(sync, records)])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=write, args=(sync,)) for sync in syncs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    problem = mirror.Problem.objects.get()
    assert (problem.items_outstanding, problem.syncs_outstanding) == (20, 4)
    assert problem.companies_outstanding == 4
    assert mirror.ProblemAlias.objects.count() == 1
    assert mirror.ProblemActivity.objects.filter(event=ProblemEvent.CREATED).count() == 1
    assert_consistent()
    state.recount_companies([c.pk for c in companies])
    assert_consistent()


def test_an_item_typed_after_it_was_written_moves_to_its_data_types_problem():
    from dashboard.ingest.push_operations import apply_types

    company = make_company()
    sync = mirror.Sync.objects.create(
        company=company,
        sync_id=uuid.uuid4(),
        status_code=5130,
        sync_utc=mirror.timezone.now(),
        category=Category.FAILED,
        chain_category=Category.FAILED,
    )
    tid = uuid.uuid4()
    message = _closed(1)[1]
    ingest.write_items_many(
        [(sync, [{"transactionId": str(tid), "status": "PushError", "message": message}])]
    )
    untyped = mirror.Problem.objects.get()
    assert untyped.data_type == ""
    apply_types(company, {tid: "directCosts"})
    typed = mirror.TransactionState.objects.get().problem
    assert (typed.data_type, typed.items_outstanding) == ("directCosts", 1)
    untyped.refresh_from_db()
    assert untyped.items_outstanding == 0 and untyped.state == ProblemState.RESOLVED
    assert_consistent()
