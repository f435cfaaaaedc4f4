"""An ID search reads each kind of ID through its index, never a whole table.

Read from PostgreSQL's plans (EXPLAIN) over a mirror large enough, and
analysed, for the planner to prefer a scan where no index serves: these
tests run on PostgreSQL (as CI does) and are skipped on SQLite, which
stores UUIDs as text and has no such planner to consult.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import QuerySet

from dashboard import search, selectors
from dashboard.filters import PRESETS, IdRange, Range, SyncFilter, id_range
from dashboard.models import Company, PushItem, Sync, TransactionState
from dashboard.vocabulary import Category, ItemStatus
from tests.support.services import only_on_postgresql

pytestmark = [
    pytest.mark.django_db,
    only_on_postgresql("reads PostgreSQL's query plans"),
]

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def mirror() -> dict[str, uuid.UUID]:
    """2,000 companies, 2,000 syncs, 6,000 pushes, 500 current states; analysed."""
    companies = Company.objects.bulk_create(
        Company(company_id=uuid.uuid4(), name=f"Company {n}") for n in range(2000)
    )
    syncs = Sync.objects.bulk_create(
        Sync(
            sync_id=uuid.uuid4(),
            company=companies[n % 2000],
            status_code=5130,
            category=Category.FAILED,
            sync_utc=T0 + timedelta(minutes=n),
        )
        for n in range(2000)
    )
    transactions = [uuid.uuid4() for _ in range(3000)]
    PushItem.objects.bulk_create(
        PushItem(sync=syncs[n % 2000], transaction_id=transactions[n // 2], status=4)
        for n in range(6000)
    )
    TransactionState.objects.bulk_create(
        TransactionState(
            company_id=syncs[n % 2000].company_id,
            transaction_id=transactions[n // 2],
            last_sync=syncs[n % 2000],
            last_sync_utc=syncs[n % 2000].sync_utc,
            status=ItemStatus.PUSH_ERROR,
            outstanding=True,
        )
        for n in range(0, 1000, 2)
    )
    with connection.cursor() as cursor:
        for model in (Company, Sync, PushItem, TransactionState):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {
        "company": companies[7].company_id,
        "sync": syncs[1234].sync_id,
        "transaction": transactions[1234],
    }


def _unique_index(model: type, column: str) -> str:
    """The name PostgreSQL gave the unique index of a column declared `unique=True`."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    names = [
        name for name, info in constraints.items() if info["unique"] and info["columns"] == [column]
    ]
    assert len(names) == 1, names
    return names[0]


def _plan(queryset: QuerySet) -> str:
    return queryset.explain()


def _ranges(mirror: dict[str, uuid.UUID], kind: str) -> list[IdRange]:
    """The whole ID, its first 8 characters and its first 6, as ranges."""
    text = str(mirror[kind])
    ranges = [id_range(text), id_range(text[:8]), id_range(text[:6])]
    assert all(ranges)
    return [r for r in ranges if r is not None]


@pytest.mark.parametrize("length", [0, 1, 2], ids=["whole", "8", "6"])
def test_company_ids_are_read_through_their_unique_index(mirror, length):
    ids = _ranges(mirror, "company")[length]
    index = _unique_index(Company, "company_id")
    for queryset in (
        search.companies_in(ids).values_list("pk", flat=True)[: search.MATCH_CAP],
        search.companies_in(ids).order_by("company_id")[: search.MATCH_CAP],
    ):
        plan = _plan(queryset)
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("length", [0, 1, 2], ids=["whole", "8", "6"])
def test_sync_ids_are_read_through_their_unique_index(mirror, length):
    ids = _ranges(mirror, "sync")[length]
    index = _unique_index(Sync, "sync_id")
    for queryset in (
        search.syncs_in(ids).values_list("pk", flat=True)[: search.MATCH_CAP],
        search.syncs_in(ids).order_by("sync_id")[: search.MATCH_CAP],
    ):
        plan = _plan(queryset)
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("length", [0, 1, 2], ids=["whole", "8", "6"])
def test_transaction_ids_are_read_through_push_item_transaction(mirror, length):
    ids = _ranges(mirror, "transaction")[length]
    pushes = search.pushes_in(ids)
    for queryset in (
        pushes.order_by("transaction_id").values_list("sync_id", flat=True)[: search.MATCH_CAP],
        pushes.order_by("transaction_id")[: search.MATCH_CAP],
    ):
        plan = _plan(queryset)
        assert "push_item_transaction" in plan, plan
        assert "Seq Scan" not in plan, plan
    states = _plan(search.states_of([mirror["transaction"]]).select_related("last_sync"))
    assert "transaction_state_tid" in states and "Seq Scan" not in states, states
    # The pushes' syncs and companies are read by primary key.
    pks = list(pushes.values_list("sync_id", flat=True))
    syncs = _plan(Sync.objects.select_related("company").filter(pk__in=pks))
    assert "dashboard_sync_pkey" in syncs and "Seq Scan" not in syncs, syncs


@pytest.mark.parametrize("kind", ["company", "sync", "transaction"])
def test_the_history_of_an_id_search_reads_no_whole_table(mirror, kind):
    text = str(mirror[kind])[:8]
    week = Range(T0 + timedelta(days=1), T0 + timedelta(days=8), PRESETS["7d"][0])
    filters = SyncFilter(span=week, q=text)
    rows = selectors.filtered_syncs(filters).order_by("-sync_utc", "-id")
    plan = _plan(rows.values_list(*selectors.HISTORY_ROW_COLUMNS)[:51])
    assert "Seq Scan" not in plan, plan
    outside = selectors._selected(filters).exclude(sync_utc__gte=week.start, sync_utc__lt=week.end)
    plan = _plan(outside.values("pk")[:10_001])
    assert "Seq Scan" not in plan, plan


def test_matching_the_text_of_an_id_would_read_the_whole_table(mirror):
    """What the tests above guard against: a prefix as text (`::text LIKE`) has no index."""
    start = str(mirror["company"])[:8]
    plan = _plan(Company.objects.filter(company_id__startswith=start))
    assert "Seq Scan on dashboard_company" in plan, plan


@pytest.mark.parametrize("kind", ["company", "sync", "transaction"])
def test_a_jump_to_an_id_prefix_reads_no_whole_table(mirror, kind):
    """Every query the header's jump makes for the first 8 digits of an ID, explained."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        found = search.find(str(mirror[kind])[:8].upper())
    assert found.count == 1 and not found.by_name
    assert captured.captured_queries
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, (query["sql"], plan)
