"""The dashboard's hourly rollup: marked by triggers, rebuilt by the task, always exact."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from dashboard import rollup
from dashboard.db import rollup as db_rollup
from dashboard.models import RollupDirty, Sync, SyncRollup
from dashboard.tasks import refresh_rollup_task
from synchealth.settings import CELERY_BEAT_SCHEDULE
from tests.support.factories import make_company, make_sync

pytestmark = pytest.mark.django_db

CODES = [2000, 2000, 2000, 2040, 5130, 4000, 1000]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def dirty_hours() -> set[datetime]:
    return set(RollupDirty.objects.values_list("hour", flat=True))


def brute_force(start, end, unit, zone) -> dict[tuple, tuple[int, int, int]]:
    """What `rollup.counts` must say, computed row by row in Python."""
    result: dict[tuple, list[int]] = {}
    for sync in Sync.objects.all():
        if (start is not None and sync.sync_utc < start) or sync.sync_utc >= end:
            continue
        local = sync.sync_utc.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        if unit == "day":
            local = local.replace(hour=0)
        key = (local, sync.status_code, sync.category)
        totals = result.setdefault(key, [0, 0, 0])
        totals[0] += 1
        totals[1] += sync.items_completed
        totals[2] += sync.items_failed
    return {key: tuple(value) for key, value in result.items()}


def as_map(rows) -> dict[tuple, tuple[int, int, int]]:
    result: dict[tuple, list[int]] = {}
    for row in rows:
        key = (row["bucket"], row["status_code"], row["category"])
        totals = result.setdefault(key, [0, 0, 0])
        totals[0] += row["syncs"]
        totals[1] += row["items_completed"] or 0
        totals[2] += row["items_failed"] or 0
    return {key: tuple(value) for key, value in result.items()}


def scatter(n: int = 60, seed: int = 3) -> list[Sync]:
    rng = random.Random(seed)
    companies = [make_company() for _ in range(3)]
    return [
        make_sync(
            rng.choice(companies),
            code=rng.choice(CODES),
            ago=timedelta(minutes=rng.uniform(1, 60 * 24 * 5)),
            items_completed=rng.randint(0, 9),
            items_failed=rng.randint(0, 3),
        )
        for _ in range(n)
    ]


def assert_exact() -> None:
    now = timezone.now()
    ranges = [
        (now - timedelta(days=2, minutes=17), now),
        (now - timedelta(hours=5, minutes=3), now - timedelta(hours=1, minutes=41)),
        (now - timedelta(minutes=40), now - timedelta(minutes=5)),
        (None, now),
    ]
    for zone_name in ("UTC", "America/New_York", "Asia/Tokyo"):
        zone = zoneinfo.ZoneInfo(zone_name)
        for start, end in ranges:
            for unit in ("hour", "day"):
                got = as_map(rollup.counts(start, end, unit, zone))
                assert got == brute_force(start, end, unit, zone), (zone_name, start, unit)
    assert_count_exact(ranges)


def assert_count_exact(ranges) -> None:
    """`rollup.count` equals a count of the syncs, for every filter it takes."""
    for start, end in ranges:
        syncs = Sync.objects.filter(sync_utc__lt=end)
        if start is not None:
            syncs = syncs.filter(sync_utc__gte=start)
        for codes, category in (((), None), ((5130, 2040), None), ((), 2), ((2000,), 1)):
            expected = syncs.filter(status_code__in=codes) if codes else syncs
            if category is not None:
                expected = expected.filter(category=category)
            got = rollup.count(start, end, codes=codes, category=category)
            assert got == expected.count(), (start, end, codes, category)


def test_every_write_marks_the_hours_it_changes():
    company = make_company()
    sync = make_sync(company, ago=timedelta(hours=3))
    assert hour_of(sync.sync_utc) in dirty_hours()
    rollup.refresh()
    assert dirty_hours() == set()
    assert SyncRollup.objects.get(hour=hour_of(sync.sync_utc)).syncs == 1

    # A column the dashboard does not add up changes nothing.
    Sync.objects.filter(pk=sync.pk).update(last_refreshed=timezone.now())
    assert dirty_hours() == set()

    # Moving a sync marks the hour it left and the hour it joined.
    moved = sync.sync_utc - timedelta(hours=30)
    Sync.objects.filter(pk=sync.pk).update(sync_utc=moved, status_code=5130, category=2)
    assert dirty_hours() == {hour_of(sync.sync_utc), hour_of(moved)}
    assert rollup.refresh() == 2
    assert not SyncRollup.objects.filter(hour=hour_of(sync.sync_utc)).exists()
    assert SyncRollup.objects.get(hour=hour_of(moved)).status_code == 5130

    Sync.objects.filter(pk=sync.pk).delete()
    assert dirty_hours() == {hour_of(moved)}
    rollup.refresh()
    assert SyncRollup.objects.count() == 0


def test_bulk_writes_mark_their_hours_too():
    company = make_company()
    now = timezone.now()
    rows = [
        Sync(
            sync_id=f"00000000-0000-4000-8000-{n:012d}",
            company=company,
            status_code=2000,
            category=1,
            sync_utc=now - timedelta(hours=n),
        )
        for n in range(1, 6)
    ]
    Sync.objects.bulk_create(rows)
    assert dirty_hours() == {hour_of(row.sync_utc) for row in rows}
    rollup.refresh()
    Sync.objects.bulk_update(
        [Sync(pk=row.pk, items_failed=2, category=2) for row in Sync.objects.all()[:2]],
        ["items_failed", "category"],
    )
    assert len(dirty_hours()) == 2


def test_counts_are_exact_before_during_and_after_a_rebuild():
    syncs = scatter()
    assert_exact()  # every hour marked: all read from the syncs
    rollup.refresh()
    assert RollupDirty.objects.count() == 0
    assert_exact()  # all from the rollup, partial hours at the ends from the syncs
    for sync in syncs[:10]:
        Sync.objects.filter(pk=sync.pk).update(status_code=5120, category=2, items_failed=7)
    make_sync(make_company(), code=4000, ago=timedelta(minutes=90))
    assert RollupDirty.objects.exists()
    assert_exact()  # a mix: the changed hours from the syncs, the rest from the rollup


def test_counts_stay_exact_with_more_marked_spans_than_union_branches():
    company = make_company()
    now = timezone.now()
    # Every other hour marked: more separate spans than the union has branches.
    for n in range(db_rollup.MAX_BRANCHES + 6):
        make_sync(company, code=CODES[n % len(CODES)], ago=timedelta(hours=2 * n + 1, minutes=7))
    rollup.refresh()
    for sync in Sync.objects.all():
        Sync.objects.filter(pk=sync.pk).update(items_failed=5, category=2, status_code=5130)
    assert len(rollup.spans(dirty_hours())) > db_rollup.MAX_BRANCHES
    start = now - timedelta(days=3, minutes=11)
    assert_count_exact([(start, now), (None, now), (now - timedelta(minutes=20), now)])
    for unit in ("hour", "day", None):
        got = rollup.counts(start, now, unit)
        if unit is None:
            assert sum(row["syncs"] for row in got) == Sync.objects.count()
            assert sum(row["items_failed"] for row in got) == 5 * Sync.objects.count()
        else:
            assert as_map(got) == brute_force(start, now, unit, UTC)


def test_a_change_made_while_the_rollup_is_rebuilt_keeps_its_mark(monkeypatch):
    company = make_company()
    first = make_sync(company, ago=timedelta(hours=6))
    late: list[Sync] = []
    real_live = rollup.live

    def live_then_write(*args, **kwargs):
        rows = real_live(*args, **kwargs)
        if not late:  # another worker writes after the rebuild read the syncs
            late.append(make_sync(company, ago=timedelta(hours=9)))
        return rows

    monkeypatch.setattr(rollup, "live", live_then_write)
    rollup.refresh()
    assert hour_of(late[0].sync_utc) in dirty_hours()
    assert hour_of(first.sync_utc) not in dirty_hours()
    monkeypatch.setattr(rollup, "live", real_live)
    assert_exact()
    rollup.refresh()
    assert dirty_hours() == set()
    assert_exact()


def test_the_task_rebuilds_and_beat_runs_it_every_minute():
    scatter(n=12)
    hours = len(dirty_hours())
    assert refresh_rollup_task.apply().get() == hours
    assert refresh_rollup_task.apply().get() == 0
    assert CELERY_BEAT_SCHEDULE["dashboard-rollup"] == {
        "task": "dashboard.refresh_rollup",
        "schedule": 60.0,
    }


def test_the_triggers_exist_after_every_migration():
    # A later migration that rebuilds the sync table on SQLite would drop them.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'dashboard_sync'::regclass "
                "AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'dashboard_sync'"
            )
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "dashboard_sync_rollup_insert",
        "dashboard_sync_rollup_update",
        "dashboard_sync_rollup_delete",
    }


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_dashboard_totals_match_the_history_in_any_zone(viewer, viewer_client, zone):
    from dashboard.models import UserPreference

    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone=zone)
    scatter(n=40, seed=11)
    rollup.refresh()
    make_sync(make_company(), code=5130, ago=timedelta(minutes=20), items_failed=2)
    body = viewer_client.get(reverse("summary") + "?range=7d").content.decode()
    total = Sync.objects.filter(sync_utc__gte=timezone.now() - timedelta(days=7)).count()
    assert f'<span class="n">{total}</span> syncs' in body
    failed = Sync.objects.filter(
        sync_utc__gte=timezone.now() - timedelta(days=7), category=2
    ).count()
    assert f'<span class="n">{failed}</span> failed' in body


def test_admins_can_read_the_rollup_but_not_change_it(admin_client):
    scatter(n=5)
    for name in ("syncrollup", "rollupdirty"):
        page = admin_client.get(reverse(f"admin:dashboard_{name}_changelist"))
        assert page.status_code == 200
        assert admin_client.get(reverse(f"admin:dashboard_{name}_add")).status_code == 403
    rollup.refresh()
    row = SyncRollup.objects.first()
    delete = reverse("admin:dashboard_syncrollup_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert SyncRollup.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    "query, selects",
    [
        ("", {}),
        ("range=24h", {"hours": 24}),
        ("code=5130&code=2040", {"status_code__in": [5130, 2040]}),
        ("category=failed&range=all", {"category": 2, "hours": None}),
        ("code=2000&category=success&range=30d", {"status_code": 2000, "category": 1}),
    ],
)
def test_the_history_counts_exactly_from_the_rollup(viewer_client, query, selects):
    import re

    scatter(n=50, seed=5)
    rollup.refresh()
    Sync.objects.filter(pk__in=Sync.objects.order_by("pk").values("pk")[:5]).update(
        status_code=5130, category=2
    )
    make_sync(make_company(), code=2040, ago=timedelta(minutes=3))
    selects = dict(selects)
    hours = selects.pop("hours", 24 * 7)
    expected = Sync.objects.filter(**selects)
    if hours is not None:
        expected = expected.filter(sync_utc__gte=timezone.now() - timedelta(hours=hours))
    body = viewer_client.get(reverse("sync-history") + "?" + query).content.decode()
    shown = re.search(r'data-testid="result-count">([^<]*)<', body).group(1)
    assert shown.split()[0] == str(expected.count())


def test_a_mark_made_while_the_dashboard_reads_does_not_drop_its_hour(monkeypatch):
    syncs = scatter(n=30, seed=9)
    rollup.refresh()
    now = timezone.now()
    start = now - timedelta(days=3)
    # Another hour is marked already, so the read has marked hours to leave out.
    make_sync(make_company(), ago=timedelta(hours=1, minutes=30))
    before = as_map(rollup.counts(start, now, "day"))
    assert before == brute_force(start, now, "day", UTC)
    real_spans = rollup.spans
    wrote: list[Sync] = []

    def spans_then_write(hours):
        result = real_spans(hours)
        if not wrote:  # a worker commits a change after the marks were read
            target = next(s for s in syncs if s.sync_utc > start + timedelta(hours=2))
            wrote.append(make_sync(make_company(), ago=now - target.sync_utc))
        return result

    monkeypatch.setattr(rollup, "spans", spans_then_write)
    during = as_map(rollup.counts(start, now, "day"))
    monkeypatch.setattr(rollup, "spans", real_spans)
    assert wrote
    assert during == before  # the read saw the state before the write, whole
    assert as_map(rollup.counts(start, now, "day")) == brute_force(start, now, "day", UTC)
