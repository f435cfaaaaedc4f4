"""The history's causes, its filter by problem and the item search read through indexes.

Read from PostgreSQL's plans (EXPLAIN) of the queries the pages run, over an
analysed mirror; skipped on SQLite (see `test_search_plans`). A mirror of a
few thousand rows is read faster whole than through an index, so the plans
are asked for with sequential scans priced out (`enable_seqscan = off`): a
query that no index serves is still planned as a scan, and fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard import failed_items, selectors
from dashboard.filters import PRESETS, Range, SyncFilter
from dashboard.models import Company, Problem, PushItem, Sync, TransactionState
from dashboard.problems import rows as problem_rows
from dashboard.vocabulary import Category, ItemStatus
from tests.support.services import only_on_postgresql

pytestmark = [
    pytest.mark.django_db,
    only_on_postgresql("reads PostgreSQL's query plans"),
]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SYNCS = 2000


@pytest.fixture
def mirror() -> dict[str, int]:
    """2,000 syncs of 400 companies, two pushes each; the failed half outstanding in a big
    problem, a few in a small one; failed syncs without items in a third; analysed."""
    companies = Company.objects.bulk_create(
        Company(company_id=uuid.uuid4(), name=f"Company {n}") for n in range(400)
    )
    big, small, syncs_only = Problem.objects.bulk_create(
        Problem(status_code=5130, cause=f"Cause {n}") for n in range(3)
    )
    syncs = Sync.objects.bulk_create(
        Sync(
            sync_id=uuid.uuid4(),
            company=companies[n % 400],
            status_code=5130 if n % 2 else 2000,
            category=Category.FAILED if n % 2 else Category.SUCCESS,
            sync_utc=T0 + timedelta(minutes=n),
            items_total=2,
            items_outstanding=2 if n % 2 else 0,
            problem=syncs_only if n % 400 == 7 else None,
        )
        for n in range(SYNCS)
    )
    pushes = PushItem.objects.bulk_create(
        PushItem(
            sync=syncs[n // 2],
            transaction_id=uuid.uuid4(),
            status=ItemStatus.PUSH_ERROR if (n // 2) % 2 else ItemStatus.COMPLETED,
            message=f"The period has closed ({n})" if (n // 2) % 2 else None,
        )
        for n in range(2 * SYNCS)
    )
    TransactionState.objects.bulk_create(
        TransactionState(
            company_id=push.sync.company_id,
            transaction_id=push.transaction_id,
            last_sync=push.sync,
            last_sync_utc=push.sync.sync_utc,
            status=push.status,
            outstanding=push.status == ItemStatus.PUSH_ERROR,
            problem=(small if push.sync.pk % 200 == 1 else big)
            if push.status == ItemStatus.PUSH_ERROR
            else None,
        )
        for push in pushes
    )
    with connection.cursor() as cursor:
        for model in (Company, Problem, Sync, PushItem, TransactionState):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {"big": big.pk, "small": small.pk, "syncs_only": syncs_only.pk}


def _plans(read: Callable[[], object]) -> list[str]:
    """The plan of every query `read` runs."""
    with CaptureQueriesContext(connection) as captured:
        read()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        cursor.execute("RESET enable_seqscan")
    return plans


def _no_seq_scan(plans: list[str]) -> None:
    for plan in plans:
        assert "Seq Scan" not in plan, plan


def test_the_causes_of_a_page_read_the_outstanding_tips_by_index(mirror):
    filters = SyncFilter(span=Range(None, T0 + timedelta(days=30), "all"), state="outstanding")
    rows = selectors.history_page(filters).rows
    assert rows
    plans = _plans(lambda: problem_rows.causes(rows))
    assert len(plans) == 2
    assert "transaction_state_tip" in plans[0], plans[0]
    _no_seq_scan(plans)


@pytest.mark.parametrize("which", ["big", "small", "syncs_only"])
def test_a_problems_syncs_are_read_and_counted_by_index(mirror, which):
    span = Range(None, T0 + timedelta(days=30), PRESETS["all"][0])
    filters = SyncFilter(span=span, preset="all", problem=mirror[which])
    plans = _plans(lambda: selectors.history_page(filters))
    _no_seq_scan(plans)
    counted = [plan for plan in plans if "Unique" in plan and "dashboard_transactionstate" in plan]
    assert counted, plans  # its tips, counted distinct from the items alone
    if which == "small":
        assert "transaction_state_problem" in counted[0], counted[0]
    # A week: the same, in the range.
    week = SyncFilter(
        span=Range(T0, T0 + timedelta(days=7), PRESETS["7d"][0]), problem=mirror[which]
    )
    _no_seq_scan(_plans(lambda: selectors.history_page(week)))


def test_a_sync_pages_item_problems_are_read_by_index(mirror):
    sync = Sync.objects.filter(status_code=5130).order_by("pk")[10]
    items = list(PushItem.objects.filter(sync=sync))
    plans = _plans(lambda: problem_rows.item_problems(sync, items))
    _no_seq_scan(plans)
    assert "transaction_state_tid" in plans[0] or "transaction_state_key" in plans[0], plans[0]


def test_the_item_search_reads_a_bounded_stretch_of_outstanding_items(mirror):
    plans = _plans(lambda: failed_items.by_message("closed (77"))
    _no_seq_scan(plans)
    # The stretch, by time, from a partial index of outstanding items (on a mirror this
    # small the planner may as well read another and sort), and each item's latest push
    # by its key.
    assert "using transaction_state_" in plans[0], plans[0]
    assert "Index Scan using push_item_key" in plans[1], plans[1]
    pushed = PushItem.objects.filter(status=ItemStatus.PUSH_ERROR).first()
    _no_seq_scan(_plans(lambda: failed_items.find(str(pushed.transaction_id))))
    _no_seq_scan(_plans(lambda: failed_items.find(str(pushed.transaction_id)[:8])))
