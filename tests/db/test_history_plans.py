"""The history's previous page reads its index from the cursor, not from the far end.

A previous page reads the ordering backwards, before the cursor's row. The
cursor's condition is an OR (a later time, or the same time and a later ID),
from which PostgreSQL takes no bound for the index scan: without the range
that repeats it, a previous page near the newest syncs scanned the index
from the oldest (2.6 s at a million syncs). Read from PostgreSQL's plans
over 30,000 analysed syncs; skipped on SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard import selectors
from dashboard.filters import Range, SyncFilter
from dashboard.models import Company, Sync
from dashboard.vocabulary import Category
from tests.support.services import only_on_postgresql

pytestmark = [
    pytest.mark.django_db,
    only_on_postgresql("reads PostgreSQL's query plans"),
]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SYNCS = 30_000


@pytest.fixture
def syncs() -> list[Sync]:
    companies = Company.objects.bulk_create(
        Company(company_id=uuid.uuid4(), name=f"Company {n}") for n in range(100)
    )
    made = Sync.objects.bulk_create(
        Sync(
            sync_id=uuid.uuid4(),
            company=companies[n % 100],
            status_code=2000,
            category=Category.SUCCESS,
            sync_utc=T0 + timedelta(minutes=n),
        )
        for n in range(SYNCS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dashboard_sync")
    return made


@pytest.mark.parametrize("descending", [True, False], ids=["newest-first", "oldest-first"])
def test_a_previous_page_near_either_end_starts_its_scan_at_the_cursor(syncs, descending):
    span = Range(None, T0 + timedelta(days=365), "all")
    # The third page from the start of the ordering: its previous page lies near that end.
    row = syncs[-101] if descending else syncs[100]
    filters = SyncFilter(span=span, descending=descending, before=(row.sync_utc, row.pk))
    with CaptureQueriesContext(connection) as captured:
        page = selectors.history_page(filters, position=101)
    assert len(page.rows) == selectors.PAGE_SIZE
    reads = [q["sql"] for q in captured if "ORDER BY" in q["sql"] and "dashboard_sync" in q["sql"]]
    assert reads
    for sql in reads:
        with connection.cursor() as cursor:
            # At this size the planner may OR two bitmap scans; at a million syncs it
            # reads the index in order, which is what this holds to its bound.
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(line for (line,) in cursor.fetchall())
        assert "Seq Scan on dashboard_sync" not in plan, plan
        # The scan of the syncs is bounded at the cursor's time (what it then sorts,
        # if anything, is the page's few rows).
        bounds = [line for line in plan.splitlines() if "Index Cond" in line]
        cursor_time = f"{row.sync_utc:%Y-%m-%d %H:%M:%S}"
        assert any("sync_utc" in line and cursor_time in line for line in bounds), plan
