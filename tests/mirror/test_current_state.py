"""The current state ingest keeps: the same rows whatever order pushes arrive in.

A transaction's state is its latest push by the pushing sync's syncUtc, then
its sync ID, never by when the mirror received it; a webhook for a retry may
arrive before the poll that brings the original. Each order, and running
everything twice, must leave the same rows, and the same as the backfill.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from dashboard import ingest
from dashboard import models as mirror
from dashboard.ingest import state
from dashboard.vocabulary import Category

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)


def _sync(company, code: int, minutes: int, sync_id: uuid.UUID | None = None, **fields):
    return mirror.Sync.objects.create(
        company=company,
        sync_id=sync_id or uuid.uuid4(),
        status_code=code,
        sync_utc=T0 + timedelta(minutes=minutes),
        category=Category.FAILED if code >= 4000 else Category.SUCCESS,
        chain_category=None if fields.get("retry_of") else Category.FAILED,
        **fields,
    )


def _push(sync, statuses: dict[uuid.UUID, str]) -> None:
    sync = mirror.Sync.objects.get(pk=sync.pk)
    records = [{"transactionId": str(t), "status": s} for t, s in statuses.items()]
    ingest.write_items_many([(sync, records)])


def _snapshot(company) -> dict:
    return {
        "states": sorted(
            (str(s.transaction_id), s.last_sync_id, s.status, s.outstanding)
            for s in mirror.TransactionState.objects.filter(company=company)
        ),
        "syncs": sorted(
            (s.pk, s.items_outstanding, s.resolved_by_id, s.chain_category)
            for s in mirror.Sync.objects.filter(company=company)
        ),
        "company": mirror.Company.objects.filter(pk=company.pk)
        .values_list("items_outstanding", "syncs_outstanding")
        .get(),
    }


@pytest.fixture
def chain(db):
    """An original with four failed items; two retries; the last completes all but one."""
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    original = _sync(company, 5130, 0)
    first = _sync(company, 5130, 30, retry_of=original)
    second = _sync(company, 5130, 60, retry_of=original)
    pushes = [
        (original, {a: "PushError", b: "PushError", c: "PushError", d: "PushError"}),
        (first, {a: "Completed", b: "PushError", c: "PushError", d: "PushError"}),
        (second, {b: "Completed", c: "Completed", d: "PushError"}),
    ]
    return company, original, first, second, pushes, (a, b, c, d)


def test_the_state_is_the_latest_push_by_sync_time(chain):
    company, original, first, second, pushes, (a, b, _c, d) = chain
    for sync, statuses in pushes:
        _push(sync, statuses)
    states = {s.transaction_id: s for s in mirror.TransactionState.objects.all()}
    assert (states[a].last_sync_id, states[a].outstanding) == (first.pk, False)
    assert (states[b].last_sync_id, states[b].outstanding) == (second.pk, False)
    assert (states[d].last_sync_id, states[d].outstanding) == (second.pk, True)
    counts = dict(mirror.Sync.objects.values_list("pk", "items_outstanding"))
    assert counts == {original.pk: 1, first.pk: 1, second.pk: 1}
    company.refresh_from_db()
    # One transaction outstanding; one original (the retries are part of its chain).
    assert (company.items_outstanding, company.syncs_outstanding) == (1, 1)


def test_every_arrival_order_and_a_replay_leave_the_same_rows(chain):
    company, _original, _first, _second, pushes, _ids = chain
    results = []
    for order in itertools.permutations(pushes):
        mirror.PushItem.objects.all().delete()
        mirror.TransactionState.objects.all().delete()
        for sync, statuses in [*order, *order]:
            _push(sync, statuses)
        results.append(_snapshot(company))
    assert all(result == results[0] for result in results)


def test_the_backfill_builds_what_ingest_keeps(chain):
    company, _original, _first, _second, pushes, _ids = chain
    for sync, statuses in pushes:
        _push(sync, statuses)
    kept = _snapshot(company)
    mirror.TransactionState.objects.all().delete()
    mirror.Sync.objects.update(items_outstanding=0, resolved_at=None, resolved_by=None)
    mirror.Company.objects.update(items_outstanding=0, syncs_outstanding=0)
    call_command("build_current_state")
    assert _snapshot(company) == kept
    company.refresh_from_db()
    assert company.state_built_at is not None
    # Resumable: a second run finds nothing left to build.
    assert state.companies_to_build() == []


def test_a_sync_ids_tie_breaks_the_same_start(db):
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    tid = uuid.uuid4()
    low = _sync(company, 5130, 0, sync_id=uuid.UUID(int=1))
    high = _sync(company, 2000, 0, sync_id=uuid.UUID(int=2))
    for sync, status in ((high, "Completed"), (low, "PushError")):
        _push(sync, {tid: status})
    row = mirror.TransactionState.objects.get(transaction_id=tid)
    assert (row.last_sync_id, row.outstanding) == (high.pk, False)
    low.refresh_from_db()
    assert (low.items_outstanding, low.resolved_by_id) == (0, high.pk)


def test_pending_items_are_outstanding_only_once_their_sync_has_ended(db):
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    sync = _sync(company, 1010, 0)
    tids = {uuid.uuid4(): "Pending" for _ in range(3)}
    _push(sync, tids)
    sync.refresh_from_db()
    assert sync.items_outstanding == 0 and not mirror.TransactionState.objects.exists()
    mirror.Sync.objects.filter(pk=sync.pk).update(status_code=5000)
    _push(sync, tids)
    sync.refresh_from_db()
    assert sync.items_outstanding == 3


def test_admins_read_the_current_state_and_cannot_change_it(admin_client, chain):
    _company, _original, _first, _second, pushes, _ids = chain
    for sync, statuses in pushes:
        _push(sync, statuses)
    page = admin_client.get(reverse("admin:dashboard_transactionstate_changelist"))
    assert page.status_code == 200 and "4 transaction states" in page.content.decode()
    assert admin_client.get(reverse("admin:dashboard_transactionstate_add")).status_code == 403
    syncs = admin_client.get(reverse("admin:dashboard_sync_changelist")).content.decode()
    assert "Items outstanding" in syncs


def test_an_item_is_outstanding_only_until_a_later_push_completes_it(db):
    """Item by item: a completed item never becomes outstanding, a resolved sync stays so."""
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    x = uuid.uuid4()
    earlier = _sync(company, 2000, 0)  # completed X
    failed = _sync(company, 5130, 30)  # X failed
    retry = _sync(company, 2000, 60, retry_of=failed)  # completed X: resolves `failed`
    later = _sync(company, 5130, 90)  # X failed again, in a new sync
    for sync, status in ((earlier, "Completed"), (failed, "PushError"), (retry, "Completed")):
        _push(sync, {x: status})
    _push(later, {x: "PushError"})
    rows = {s.pk: s for s in mirror.Sync.objects.all()}
    assert rows[earlier.pk].items_outstanding == 0 and rows[earlier.pk].resolved_at is None
    assert rows[failed.pk].items_outstanding == 0
    assert rows[failed.pk].resolved_by_id == retry.pk  # not undone by the later failure
    assert rows[failed.pk].chain_category == Category.SUCCESS
    assert rows[later.pk].items_outstanding == 1
    assert mirror.TransactionState.objects.get(transaction_id=x).outstanding


@pytest.mark.parametrize("order", ["retry first", "later sync first"])
def test_the_resolver_is_the_first_push_that_completed_it_in_any_arrival_order(db, order):
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    x, y = uuid.uuid4(), uuid.uuid4()
    failed = _sync(company, 5130, 0)
    retry = _sync(company, 2000, 30, retry_of=failed)
    later = _sync(company, 2000, 300)
    _push(failed, {x: "PushError", y: "PushError"})
    pushes = [(retry, {x: "Completed", y: "Completed"}), (later, {x: "Completed"})]
    for sync, statuses in pushes if order == "retry first" else pushes[::-1]:
        _push(sync, statuses)
    failed.refresh_from_db()
    assert (failed.resolved_by_id, failed.resolved_at) == (retry.pk, retry.sync_utc)


def test_a_sync_that_loses_an_item_is_recounted(db):
    company = mirror.Company.objects.create(company_id=uuid.uuid4(), name="Acme")
    x, y = uuid.uuid4(), uuid.uuid4()
    sync = _sync(company, 5130, 0)
    _push(sync, {x: "PushError", y: "PushError"})
    _push(sync, {y: "PushError"})
    sync.refresh_from_db()
    assert sync.items_outstanding == 1
    assert not mirror.TransactionState.objects.filter(transaction_id=x).exists()
