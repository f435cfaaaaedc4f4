"""Each fast path in dashboard.db agrees with its portable twin, and the twins work alone.

The fast paths are PostgreSQL's: the parity tests run on PostgreSQL (as CI
does) and are skipped on SQLite, where the portable twins are tested alone.
"""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from dashboard import rollup
from dashboard.db import capped, locks
from dashboard.db import items as db_items
from dashboard.db import rollup as db_rollup
from dashboard.fingerprint import fingerprint
from dashboard.models import Company, PushItem, Sync
from dashboard.vocabulary import Category
from tests.support.services import only_on_postgresql

pytestmark = pytest.mark.django_db

postgresql_only = only_on_postgresql("compares PostgreSQL's fast path with its twin")

T0 = datetime(2026, 11, 20, 0, tzinfo=UTC)
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# Messages that a JSON payload or an array literal could get wrong.
AWKWARD = [None, "", 'quote " and \\ backslash', "{a, b} 'q'", "NULL", "tab\tnew\nline", "ünï ✓"]


def make_sync(company: Company, started: datetime, code: int = 2000, **fields: Any) -> Sync:
    fields.setdefault("category", Category.SUCCESS)
    return Sync.objects.create(
        company=company, sync_id=uuid.uuid4(), status_code=code, sync_utc=started, **fields
    )


@pytest.fixture
def company() -> Company:
    return Company.objects.create(company_id=uuid.uuid4(), name="Acme")


@pytest.fixture
def syncs(company: Company) -> list[Sync]:
    return [make_sync(company, T0 + timedelta(hours=n)) for n in range(3)]


def each(twins: list[Callable[..., Any]], *args: Any, read: Callable[[], Any]) -> list[Any]:
    """(result, what `read` sees) after each twin, every one run on the same rows."""
    outcomes = []
    for twin in twins:
        savepoint = transaction.savepoint()
        outcomes.append((twin(*args), read()))
        transaction.savepoint_rollback(savepoint)
    return outcomes


def item_rows(
    syncs: list[Sync], statuses: list[int], data_type: str = ""
) -> list[db_items.ItemRow]:
    return [
        (sync.pk, uuid.uuid4(), "expenses", data_type, status, message, fingerprint(message))
        for sync in syncs
        for status, message in zip(statuses, AWKWARD, strict=False)
    ]


def stored_items() -> set[tuple[Any, ...]]:
    return set(
        PushItem.objects.values_list(
            "sync_id", "transaction_id", "integration_type", "data_type", "status", "message",
            "fingerprint",
        )
    )  # fmt: skip


def rewritten(rows: list[db_items.ItemRow]) -> list[db_items.ItemRow]:
    """The same items with another status, message and data type (which must not be written)."""
    return [
        (s, t, i, "bills", (st + 1) % 6, f"now {m}", fingerprint(f"now {m}"))
        for s, t, i, _, st, m, _ in rows
    ]


# --- items ---


@postgresql_only
def test_item_upserts_agree_on_new_and_existing_items(syncs):
    rows = item_rows(syncs, [0, 1, 2, 3, 4, 5, 3])
    upserts = [db_items.upsert_postgresql, db_items.upsert_portable]

    fast, portable = each(upserts, rows, read=stored_items)
    assert fast == portable
    assert len(fast[1]) == len(rows)

    db_items.upsert_portable(rows[:5])
    fast, portable = each(upserts, rewritten(rows), read=stored_items)
    assert fast == portable


def test_the_portable_upsert_updates_status_and_message_but_keeps_the_data_type(syncs):
    rows = item_rows(syncs[:1], [1, 2], data_type="directCosts")
    db_items.upsert_portable(rows)
    assert stored_items() == set(rows)

    db_items.upsert_portable(rewritten(rows))

    assert stored_items() == {(*row[:3], "directCosts", *row[4:]) for row in rewritten(rows)}


def counters() -> set[tuple[Any, ...]]:
    return set(Sync.objects.values_list("pk", *db_items.COUNTER_FIELDS))


def counted(syncs: list[Sync]) -> list[Sync]:
    for n, sync in enumerate(syncs):
        sync.items_total, sync.items_completed, sync.items_failed = 10 + n, 5, n
        sync.items_pending, sync.category = 5 - n, Category.FAILED if n else Category.SUCCESS
        sync.chain_category = sync.category
        sync.items_outstanding = n
        sync.items_status_code = 2000
    return syncs


@postgresql_only
def test_item_counters_agree(syncs):
    now = T0 + timedelta(days=1)
    twins = [db_items.set_counters_postgresql, db_items.set_counters_portable]

    fast, portable = each(twins, counted(syncs[:2]), now, read=counters)

    assert fast == portable
    assert (syncs[1].pk, 11, 5, 1, 4, Category.FAILED, Category.FAILED, 1, 2000, now) in fast[1]


def test_the_portable_counters_write_every_counter(syncs):
    now = T0 + timedelta(days=1)
    db_items.set_counters_portable(counted(syncs), now)
    assert counters() == {
        (s.pk, 10 + n, 5, n, 5 - n, s.category, s.category, n, 2000, now)
        for n, s in enumerate(syncs)
    }


def typed_items(syncs: list[Sync]) -> tuple[list[int], dict[uuid.UUID, str]]:
    """Items of the first two syncs, one already typed; `types` names three, one elsewhere."""
    rows = item_rows(syncs, [2, 3])
    db_items.upsert_portable(rows)
    PushItem.objects.filter(transaction_id=rows[0][1]).update(data_type="bills")
    types = {rows[0][1]: "transfers", rows[1][1]: "directCosts", rows[2][1]: "directCosts"}
    types[rows[4][1]] = "expenses"  # an item of a sync not asked about
    return [syncs[0].pk, syncs[1].pk], types


def data_types() -> set[tuple[Any, ...]]:
    return set(PushItem.objects.values_list("transaction_id", "data_type"))


@postgresql_only
def test_data_types_agree(syncs):
    sync_ids, types = typed_items(syncs)
    twins = [db_items.set_types_postgresql, db_items.set_types_portable]

    fast, portable = each(twins, sync_ids, types, read=data_types)

    assert fast == portable
    assert fast[0] == 2


def test_the_portable_data_types_fill_only_untyped_items_of_the_syncs(syncs):
    sync_ids, types = typed_items(syncs)
    before = dict(data_types())

    assert db_items.set_types_portable(sync_ids, types) == 2

    after = dict(data_types())
    changed = {tid for tid in after if after[tid] != before[tid]}
    assert changed == set(list(types)[1:3])
    assert all(after[tid] == types[tid] for tid in changed)


# --- the rollup ---


def as_map(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    totals: dict[tuple[Any, ...], tuple[int, int, int]] = {}
    for row in rows:
        key = (row.get("bucket"), row["status_code"], row["category"])
        syncs, completed, failed = totals.get(key, (0, 0, 0))
        totals[key] = (
            syncs + row["syncs"],
            completed + (row["items_completed"] or 0),
            failed + (row["items_failed"] or 0),
        )
    return totals


@pytest.fixture
def rolled(company) -> None:
    """Syncs over two days, rolled up, then a few changed (their hours marked)."""
    for n in range(40):
        code = [2000, 2040, 5130, 4000][n % 4]
        started = T0 + timedelta(hours=n, minutes=7 * n % 60)
        make_sync(company, started, code, category=n % 3, items_completed=n, items_failed=n % 4)
    rollup.refresh()
    Sync.objects.filter(sync_utc__lt=T0 + timedelta(hours=3)).update(items_failed=9)


def plans() -> list[db_rollup.Plan]:
    hour = timedelta(hours=1)
    return [
        db_rollup.Plan((T0, T0 + 30 * hour), [(T0, T0 + 3 * hour)], [(T0, T0 + 3 * hour)]),
        db_rollup.Plan(
            (None, T0 + 24 * hour),
            [(T0 + hour, T0 + 2 * hour)],
            [(T0 + hour, T0 + 2 * hour), (T0 + 24 * hour, T0 + 24 * hour + timedelta(minutes=30))],
        ),
        db_rollup.Plan(None, [], [(T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))]),
        db_rollup.Plan((T0, T0 + 40 * hour), [], []),
        # More live spans than the union has branches.
        db_rollup.Plan(None, [], [(T0 + 2 * n * hour, T0 + (2 * n + 1) * hour) for n in range(20)]),
    ]


@postgresql_only
@pytest.mark.parametrize("unit", ["hour", "day", None])
def test_rollup_counts_agree(rolled, unit):
    for plan in plans():
        for zone in (UTC, NEW_YORK):
            fast = db_rollup.counts_postgresql(plan, unit, zone)
            portable = db_rollup.counts_portable(plan, unit, zone)
            assert as_map(fast) == as_map(portable), (plan, zone)


@pytest.mark.parametrize("unit", ["hour", "day", None])
def test_the_portable_rollup_counts_match_the_syncs(rolled, unit):
    start, end = T0 + timedelta(minutes=20), T0 + timedelta(hours=30, minutes=10)
    got = db_rollup.counts_portable(rollup._plan(start, end), unit, NEW_YORK)
    syncs = Sync.objects.filter(sync_utc__gte=start, sync_utc__lt=end)
    assert as_map(got) == as_map(list(db_rollup.grouped(syncs, unit, NEW_YORK)))


def test_the_rollup_count_adds_up_the_counts(rolled):
    for plan in plans():
        rows = db_rollup.counts(plan, None, UTC)
        assert db_rollup.count(plan) == sum(row["syncs"] for row in rows)
        chosen = [r for r in rows if r["status_code"] in (5130, 4000) and r["category"] == 1]
        failed = sum(row["syncs"] for row in chosen)
        assert db_rollup.count(plan, codes=[5130, 4000], category=1) == failed


# --- locks and capped counts ---


@postgresql_only
def test_both_advisory_locks_take_a_free_lock():
    with transaction.atomic():
        for wait in (True, False):
            assert locks.advisory_lock_postgresql(0x5F11C4EA9, wait=wait)
            assert locks.advisory_lock_portable(0x5F11C4EA9, wait=wait)


@postgresql_only
def test_many_advisory_locks_are_taken_in_one_statement_and_held():
    keys = [0x5F11C4EB0, 0x5F11C4EB1, 0x5F11C4EB2]
    with transaction.atomic():
        locks.advisory_locks_postgresql(keys)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()"
            )
            assert cursor.fetchone()[0] == 3
    assert locks.advisory_locks_portable(keys) is None


def test_the_public_advisory_lock_takes_a_free_lock():
    with transaction.atomic():
        assert locks.advisory_lock(0x5F11C4EA9, wait=False)


def test_the_capped_count_stops_at_the_cap(company, monkeypatch):
    for n in range(4):
        make_sync(company, T0 + timedelta(hours=n))
    monkeypatch.setattr(capped, "COUNT_CAP", 3)
    assert capped.bounded_count(Sync.objects.all()) == (3, True)
    assert capped.bounded_count(Sync.objects.filter(sync_utc__lt=T0 + timedelta(hours=3))) == (
        3,
        False,
    )


@postgresql_only
def test_pushes_agree(syncs):
    from dashboard.db import state as db_state

    rows = item_rows(syncs, [2, 3])
    db_items.upsert_portable(rows)
    company = syncs[0].company_id
    wanted = [row[1] for row in rows[:3]] + [uuid.uuid4()]
    fast = sorted(db_state.pushes_postgresql(company, wanted), key=str)
    portable = sorted(db_state.pushes_portable(company, wanted), key=str)
    assert fast == portable and len(fast) == 3
    assert db_state.pushes_postgresql(company + 999, wanted) == []


def unfinished_pushes() -> tuple[list[tuple[int, int, datetime]], set[tuple[int, int]]]:
    """Two companies pushing the same transactions: (the syncs, the pairs retention must see)."""
    from tests.support.factories import make_company
    from tests.support.factories import make_sync as make_tracked_sync
    from tests.support.retention import DONE, FAILED

    a, b = uuid.uuid4(), uuid.uuid4()
    first, second = make_company(), make_company()
    failed = make_tracked_sync(
        first, code=5130, ago=timedelta(days=9), items=[FAILED, FAILED], transaction_ids=[a, b]
    )
    resolver = make_tracked_sync(first, ago=timedelta(days=8), items=[DONE], transaction_ids=[a])
    later = make_tracked_sync(
        first, ago=timedelta(days=7), items=[DONE, DONE], transaction_ids=[a, b]
    )
    # The same IDs in another company are another company's transactions.
    elsewhere = make_tracked_sync(
        second, code=5130, ago=timedelta(days=10), items=[FAILED], transaction_ids=[a]
    )
    syncs = [(s.pk, s.company_id, s.sync_utc) for s in (failed, resolver, later, elsewhere)]
    return syncs, {(resolver.pk, failed.pk), (later.pk, failed.pk)}


@postgresql_only
def test_earlier_unfinished_pushes_agree():
    from dashboard.db import retention as db_retention

    syncs, expected = unfinished_pushes()
    assert db_retention.earlier_unfinished_postgresql(syncs) == expected
    assert db_retention.earlier_unfinished_portable(syncs) == expected
    assert db_retention.earlier_unfinished_postgresql([]) == set()


def test_the_portable_earlier_unfinished_pushes_pair_each_sync_with_older_failures():
    from dashboard.db import retention as db_retention

    syncs, expected = unfinished_pushes()
    assert db_retention.earlier_unfinished_portable(syncs) == expected
    assert db_retention.earlier_unfinished_portable(syncs[:1]) == set()


# --- problems ---


@postgresql_only
def test_each_problems_top_companies_agree():
    from dashboard.db import problems as db_problems
    from tests.support.problems import problem_estate

    estate = problem_estate()
    every = [p.pk for p in (estate["closed"], estate["tax"], estate["amount"], estate["deauth"])]
    for problems in (every, every[::-1], every[:1], []):
        for limit in (1, 2, 5):
            fast = db_problems.top_companies_postgresql(problems, limit)
            assert fast == db_problems.top_companies_portable(problems, limit)
    ranked = db_problems.top_companies_postgresql(every, 5)
    assert {problem for problem, _ in ranked} == set(every)
