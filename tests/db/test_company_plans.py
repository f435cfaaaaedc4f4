"""Each sort of the companies index reads its own index in order and stops at a page: no
sort of the whole table, first page or deep, either direction, empties included.

Read from PostgreSQL's plans over 10,000 analysed companies; skipped on SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from dashboard.companies import SORTS
from dashboard.companies.listing import PAGE_SIZE, CompanyFilter, _segments, matching
from dashboard.models import Company
from tests.support.services import only_on_postgresql

pytestmark = [
    pytest.mark.django_db,
    only_on_postgresql("reads PostgreSQL's query plans"),
]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
COMPANIES = 10_000


@pytest.fixture
def estate() -> list[Company]:
    made = Company.objects.bulk_create(
        Company(
            company_id=uuid.uuid4(),
            name=f"Company {n:05d}",
            platform_name=("Xero", "Sage", "QuickBooks Online", "")[n % 4],
            connection_status=("Linked", "Deauthorized")[n % 7 == 0],
            items_outstanding=n % 13,
            failing_streak=n % 5 if n % 3 == 0 else 0,
            last_sync_at=None if n % 10 == 0 else T0 - timedelta(minutes=n),
            last_success_at=None if n % 4 == 0 else T0 - timedelta(hours=n % 500),
            problems_open=n % 3,
        )
        for n in range(COMPANIES)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dashboard_company")
    return made


@pytest.mark.parametrize("key", list(SORTS))
@pytest.mark.parametrize("ascending", [True, False], ids=["up", "down"])
def test_each_sort_reads_its_index_a_page_at_a_time(estate, key, ascending):
    sort = SORTS[key]
    # Deep in the list: the row halfway along the sort's order.
    ordered = sorted(
        (c for c in estate if getattr(c, sort.column) is not None),
        key=lambda c: (getattr(c, sort.column), c.pk),
    )
    middle = ordered[len(ordered) // 2]
    cursors = [None, (getattr(middle, sort.column), middle.pk)]
    if sort.nullable:
        empty = next(c for c in estate if getattr(c, sort.column) is None)
        cursors.append((None, empty.pk))
    rows = matching(CompanyFilter())
    for cursor in cursors:
        for segment in _segments(rows, sort, ascending, cursor):
            plan = segment[: PAGE_SIZE + 1].explain()
            assert "Sort" not in plan and "Seq Scan" not in plan, plan
            # The companies without a sync yet, by ID: the planner may read them from
            # the sort's index or, when they are many, from the primary key's.
            if "IS NULL" not in plan:
                assert f"company_by_{key}" in plan, plan
