"""Retention of the history: old chains go in batches; what is still needed stays, exactly."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard import retention, rollup, selectors
from dashboard.filters import Range, SyncFilter
from dashboard.ingest import state, update_streak
from dashboard.models import (
    BulkMember,
    BulkRetry,
    Company,
    PushItem,
    RetryRequest,
    Sync,
    SyncRollup,
    TransactionState,
)
from dashboard.retention import history
from tests.support.factories import make_company, make_sync
from tests.support.retention import DAYS, DONE, current_state, days, history_estate
from tests.support.users import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(db):
    return history_estate(make_user("lead-for-history"))


def cut_off():
    return timezone.now() - days(DAYS)


def prune(**limits) -> Counter:
    total: Counter = Counter()
    for batch in history.batches(cut_off(), **limits):
        total.update(batch)
    return total


def test_old_chains_go_and_every_old_sync_still_needed_stays(estate):
    counts = prune()
    left = set(Sync.objects.values_list("pk", flat=True))
    assert {name for name, sync in estate.goes.items() if sync.pk in left} == set()
    assert {name for name, sync in estate.stays.items() if sync.pk not in left} == set()
    assert counts["syncs"] == len(estate.goes)
    assert not PushItem.objects.filter(sync_id__in=[s.pk for s in estate.goes.values()]).exists()
    # Each old sync that stays is counted with why.
    assert counts[history.OUTSTANDING] == 2  # "outstanding", "half resolved"
    assert counts[history.NEWER] == 2  # an original and its recent retry
    assert counts[history.RETRY_REQUEST] == 2
    assert counts[history.BULK_RETRY] == 1
    assert counts[history.NEEDED] == 1
    assert counts[history.LAST_SUCCESS] == 1
    assert counts[history.STREAK] == 1


def test_a_finished_old_request_goes_with_its_chain_and_its_emptied_bulk_retry(estate):
    old = RetryRequest.objects.get(sync=estate.goes["resolved"])
    bulk = old.bulk
    counts = prune()
    assert not RetryRequest.objects.filter(pk=old.pk).exists()
    assert not BulkRetry.objects.filter(pk=bulk.pk).exists()
    assert (counts["retry requests"], counts["bulk retry members"], counts["bulk retries"]) == (
        1,
        1,
        1,
    )
    # The recent bulk retry and both requests that name kept syncs stay.
    assert BulkMember.objects.filter(sync=estate.stays["in a recent bulk"]).exists()
    assert RetryRequest.objects.count() == 2


def test_outstanding_items_and_their_state_stay(estate):
    outstanding = set(
        TransactionState.objects.filter(outstanding=True).values_list("transaction_id", flat=True)
    )
    prune()
    assert outstanding and outstanding == set(
        TransactionState.objects.filter(outstanding=True).values_list("transaction_id", flat=True)
    )
    for name in ("outstanding", "half resolved"):
        assert PushItem.objects.filter(sync=estate.stays[name]).count() == 2


def test_the_current_state_of_what_stays_does_not_change(estate):
    before = current_state()
    prune()
    after = current_state()
    left = set(Sync.objects.values_list("pk", flat=True))
    assert after["syncs"] == [row for row in before["syncs"] if row[0] in left]
    assert after["companies"] == before["companies"]
    # A state row goes only with the sync that pushed its latest push; none was outstanding.
    gone = [row for row in before["states"] if row not in after["states"]]
    assert all(row[2] not in left and not row[4] for row in gone)
    assert set(after["states"]) <= set(before["states"])


def test_the_current_state_is_what_a_rebuild_from_the_history_left_makes(estate):
    prune()
    kept = current_state()
    for company in Company.objects.all():
        state.build_company(company.pk)
        update_streak(company)
    assert current_state() == kept
    # From nothing, too: every outstanding transaction, every count.
    TransactionState.objects.all().delete()
    Sync.objects.update(items_outstanding=0, resolved_at=None, resolved_by=None)
    for company in Company.objects.all():
        state.build_company(company.pk)
    rebuilt = current_state()
    assert [r for r in rebuilt["states"] if r[4]] == [r for r in kept["states"] if r[4]]
    assert rebuilt["syncs"] == kept["syncs"]
    assert rebuilt["companies"] == kept["companies"]


def test_batches_hold_at_most_the_syncs_and_items_asked():
    company = make_company()
    old = [make_sync(company, ago=days(500 - n), items=[DONE] * 3) for n in range(10)]
    make_sync(company, ago=days(1), items=[DONE])  # the last success stays
    sizes = []
    cursor = None
    while True:
        batch = history.prune_batch(cut_off(), cursor, max_syncs=4, max_items=1000)
        if batch.cursor is None:
            break
        sizes.append(batch.counts["syncs"])
        cursor = batch.cursor
    assert sizes == [4, 4, 2]
    # Items bound it too: two syncs of three items fit in seven.
    more = [make_sync(company, ago=days(500 - n), items=[DONE] * 3) for n in range(3)]
    batch = history.prune_batch(cut_off(), max_syncs=500, max_items=7)
    assert (batch.counts["syncs"], batch.counts["push items"]) == (2, 6)
    assert set(Sync.objects.values_list("pk", flat=True)).isdisjoint(
        s.pk for s in [*old, *more[:2]]
    )


def test_each_batch_deletes_its_items_in_one_statement_naming_only_its_syncs():
    company = make_company()
    for n in range(6):
        make_sync(company, ago=days(500 - n), items=[DONE] * 2)
    make_sync(company, ago=days(1), items=[DONE])
    with CaptureQueriesContext(connection) as queries:
        for _ in history.batches(cut_off(), max_syncs=2, max_items=100):
            pass
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "dashboard_pushitem"')]
    assert len(deletes) == 3
    named = [re.search(r"IN \(([^)]*)\)", sql).group(1).split(",") for sql in deletes]
    assert [len(pks) for pks in named] == [2, 2, 2]


def test_a_large_chain_goes_alone_in_its_batch():
    company = make_company()
    big = make_sync(company, ago=days(500), items=[DONE] * 12)
    small = make_sync(company, ago=days(499), items=[DONE])
    make_sync(company, ago=days(1), items=[DONE])
    batch = history.prune_batch(cut_off(), max_syncs=500, max_items=5)
    assert batch.counts["syncs"] == 1
    assert not Sync.objects.filter(pk=big.pk).exists()
    assert Sync.objects.filter(pk=small.pk).exists()


def test_a_dry_run_counts_what_a_run_removes_and_removes_nothing(estate):
    syncs, items = Sync.objects.count(), PushItem.objects.count()
    would: Counter = Counter()
    for batch in history.batches(cut_off(), dry_run=True, max_syncs=3):
        would.update(batch)
    assert (Sync.objects.count(), PushItem.objects.count()) == (syncs, items)
    did = prune(max_syncs=3)
    for kind in ("syncs", "push items", "retry requests"):
        assert would[kind] == did[kind], kind
    assert {k: n for k, n in would.items() if k.startswith("kept")} == {
        k: n for k, n in did.items() if k.startswith("kept")
    }


def dashboard(start, end) -> selectors.Summary:
    return selectors.summary(SyncFilter(span=Range(start, end, "custom"), preset="custom"))


def test_the_dashboard_counts_the_kept_range_as_before(estate):
    now = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    kept_range = (now - days(120), now + timedelta(hours=1))
    rollup.refresh()
    before = dashboard(*kept_range)
    all_time_before = rollup.count(None, now + timedelta(hours=1))
    prune()
    rollup.refresh()
    assert dashboard(*kept_range) == before
    assert before.total > 0
    # All time counts only what stays: the rollup follows the syncs.
    assert rollup.count(None, now + timedelta(hours=1)) == Sync.objects.count()
    assert Sync.objects.count() < all_time_before
    rows = SyncRollup.objects.filter(hour__lt=now - days(DAYS))
    assert (
        sum(rows.values_list("syncs", flat=True))
        == Sync.objects.filter(sync_utc__lt=now - days(DAYS)).count()
    )


def test_the_policy_runs_each_step_and_keeps_history_for_ever_at_zero(estate, settings):
    settings.RETENTION_HISTORY_DAYS = 0
    outcomes = {o.step: o for o in retention.run()}
    assert outcomes["history"].before is None
    assert Sync.objects.filter(pk=estate.goes["plain"].pk).exists()
    settings.RETENTION_HISTORY_DAYS = DAYS
    outcomes = {o.step: o for o in retention.run()}
    assert outcomes["history"].finished
    assert outcomes["history"].counts["syncs"] == len(estate.goes)
    assert not Sync.objects.filter(pk=estate.goes["plain"].pk).exists()


def test_a_run_stops_between_batches_when_its_time_is_spent(estate, settings):
    settings.RETENTION_BATCH_SYNCS = 1
    ticks = iter(range(100))
    outcomes = {o.step: o for o in retention.run(max_seconds=3.5, clock=lambda: next(ticks))}
    history_outcome = outcomes["history"]
    assert not history_outcome.finished
    assert 0 < history_outcome.counts["syncs"] < len(estate.goes)
    # The next run carries on.
    assert {o.step: o for o in retention.run()}["history"].finished
    assert not Sync.objects.filter(pk__in=[s.pk for s in estate.goes.values()]).exists()


def test_a_recent_retry_request_on_an_old_resolved_sync_keeps_its_chain(estate):
    named = estate.stays["named lately"]
    prune()
    assert Sync.objects.filter(pk=named.pk).exists()
    assert PushItem.objects.filter(sync=named).count() == 1


def test_an_old_request_that_stays_keeps_the_sync_it_started_in_another_chain(db):
    from tests.support.retention import FAILED, request

    user = make_user("someone")
    company = make_company()
    outstanding = make_sync(company, code=5130, ago=days(500), items=[FAILED])
    # A retry that was never linked to its original: a chain of its own.
    started = make_sync(company, ago=days(499), items=[DONE])
    request(user, outstanding, ago=days(499), state="completed", new_sync_id=started.sync_id)
    make_sync(company, ago=days(1), items=[DONE])
    counts = prune()
    assert Sync.objects.filter(pk=started.pk).exists()
    assert counts[history.RETRY_REQUEST] == 1


def test_a_sync_named_in_the_post_of_a_request_that_stays_stays(db):
    from tests.support.retention import FAILED, request

    user = make_user("someone")
    company = make_company()
    outstanding = make_sync(company, code=5130, ago=days(500), items=[FAILED])
    # Where another of its transactions last failed: a chain of its own, resolved since.
    tip = make_sync(company, code=5130, ago=days(499), items=[FAILED])
    failed = PushItem.objects.filter(sync=tip).values_list("transaction_id", flat=True)
    make_sync(company, ago=days(498), items=[DONE], transaction_ids=list(failed))
    request(user, outstanding, ago=days(497), state="completed", sync_ids=[str(tip.sync_id)])
    make_sync(company, ago=days(1), items=[DONE])
    prune(max_syncs=1)  # the request's sync and the one it named in batches of their own
    # The request stays with the outstanding sync it retried, and so does what it named.
    assert Sync.objects.filter(pk=tip.pk).exists()
