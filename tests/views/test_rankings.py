"""The dashboard's rankings: counted by the task for each preset range, live for the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard import rankings
from dashboard.filters import PRESETS
from dashboard.models import Company, RankingSnapshot
from dashboard.tasks import refresh_rankings_task
from synchealth.settings import CELERY_BEAT_SCHEDULE
from tests.support.factories import make_company, make_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def failures():
    """Company A fails 3 times this week, B twice this week and 4 times a month ago."""
    a, b = make_company(name="Alpha Ltd"), make_company(name="Beta Ltd")
    for n in range(3):
        make_sync(a, code=5130, ago=timedelta(hours=n + 2), error_message=f"Tax rate {n} missing")
    for n in range(2):
        make_sync(b, code=4000, ago=timedelta(days=1, hours=n), error_message="Config bad")
    for n in range(4):
        make_sync(b, code=4000, ago=timedelta(days=20, hours=n), error_message="Config bad")
    make_sync(a, code=2000, ago=timedelta(hours=1))
    return a, b


def _names_and_counts(ranked: rankings.Rankings) -> list[tuple[int, int]]:
    return [(row["company"]["pk"], row["failed"]) for row in ranked.failing_companies]


def test_the_task_counts_every_preset_as_a_live_count_would(failures):
    a, b = failures
    now = timezone.now()
    assert refresh_rankings_task.apply().get() == len(PRESETS)
    assert set(RankingSnapshot.objects.values_list("range_key", flat=True)) == set(PRESETS)
    for key, (_label, span) in PRESETS.items():
        start = now - span if span else None
        live = rankings.count(rankings.between(start, now))
        kept = rankings.snapshot(key)
        assert kept is not None and kept.from_snapshot
        assert _names_and_counts(kept) == _names_and_counts(live)
        assert [r["last"] for r in kept.failing_companies] == [
            r["last"] for r in live.failing_companies
        ]
        assert kept.errors == live.errors
        assert kept.long_running_count == live.long_running_count
        assert [(r["name"], r["failing_streak"]) for r in kept.streaks] == [
            (r["name"], r["failing_streak"]) for r in live.streaks
        ]
    week = rankings.snapshot("7d")
    assert _names_and_counts(week) == [(a.pk, 3), (b.pk, 2)]
    assert [(e["count"], e["companies"]) for e in week.errors] == [(3, 1), (2, 1)]
    assert _names_and_counts(rankings.snapshot("30d")) == [(b.pk, 6), (a.pk, 3)]


def test_beat_recounts_them_every_minute():
    entry = CELERY_BEAT_SCHEDULE["dashboard-rankings"]
    assert entry == {"task": "dashboard.refresh_rankings", "schedule": 60.0}


def test_the_dashboard_shows_the_snapshot_of_a_preset_with_its_time(viewer_client, failures):
    a, _b = failures
    rankings.refresh()
    # Make the snapshot say something no live count would, to see which is shown.
    snapshot = RankingSnapshot.objects.get(range_key="7d")
    snapshot.failing_companies = [{**snapshot.failing_companies[0], "failed": 999}]
    snapshot.save()
    body = viewer_client.get(reverse("summary")).content.decode()
    assert '>999<span class="visually-hidden"> failed syncs of' in body
    assert 'data-testid="ranked-at"' in body
    assert f"Counted at {timezone.localtime(snapshot.computed_at):%Y-%m-%d %H:%M:%S}" in body
    # The links still open the history of the same filter.
    assert f"?&amp;state=failing&amp;company={a.company_id}" in body


def test_an_error_group_is_counted_by_its_cause_with_an_example(failures):
    rankings.refresh()
    tax = next(e for e in rankings.snapshot("7d").errors if e["count"] == 3)
    assert tax["message"] == "Tax rate {number} missing"
    assert tax["example"] in {f"Tax rate {n} missing" for n in range(3)}


@pytest.mark.parametrize(
    "query",
    ["range=custom&start={week_ago}&end={today}", "platform=Xero", "range=7d&code=5130"],
)
def test_custom_ranges_and_other_filters_are_counted_live(viewer_client, failures, query):
    rankings.refresh()
    RankingSnapshot.objects.update(failing_companies=[], errors=[])
    today = timezone.localdate()
    url = reverse("summary") + "?" + query.format(week_ago=today - timedelta(days=7), today=today)
    body = viewer_client.get(url).content.decode()
    assert 'data-testid="ranked-at"' not in body
    assert "Alpha Ltd" in body


def test_a_stale_snapshot_is_ignored_and_the_page_counts_live(viewer_client, failures):
    rankings.refresh()
    RankingSnapshot.objects.update(
        failing_companies=[],
        errors=[],
        computed_at=timezone.now() - rankings.MAX_AGE - timedelta(seconds=1),
    )
    assert rankings.snapshot("7d") is None
    body = viewer_client.get(reverse("summary")).content.decode()
    assert 'data-testid="ranked-at"' not in body
    assert "Alpha Ltd" in body


def test_without_a_snapshot_the_dashboard_counts_live(viewer_client, failures):
    assert not RankingSnapshot.objects.exists()
    body = viewer_client.get(reverse("summary") + "?range=30d").content.decode()
    assert "Alpha Ltd" in body and "Beta Ltd" in body
    assert 'data-testid="ranked-at"' not in body


def test_the_snapshot_carries_what_the_page_shows_of_each_company(viewer_client, failures):
    a, _b = failures
    rankings.refresh()
    row = rankings.snapshot("7d").failing_companies[0]
    assert row["company"] == {
        "pk": a.pk, "company_id": str(a.company_id), "name": "Alpha Ltd", "platform_name": "Xero",
    }  # fmt: skip
    # The page shows the company as counted, without looking it up again.
    Company.objects.filter(pk=a.pk).update(name="Renamed since")
    body = viewer_client.get(reverse("summary")).content.decode()
    assert f'href="/companies/{a.company_id}/">Alpha Ltd</a>' in body


def test_a_live_count_names_the_companies_it_ranks(failures):
    failed = rankings.between(None, timezone.now())
    ranked = rankings.count(failed).failing_companies
    assert [(row["company"]["name"], row["failed"]) for row in ranked] == [
        ("Beta Ltd", 6),
        ("Alpha Ltd", 3),
    ]


def test_admins_can_read_the_snapshots_but_not_change_them(admin_client, failures):
    rankings.refresh()
    changelist = reverse("admin:dashboard_rankingsnapshot_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(reverse("admin:dashboard_rankingsnapshot_add")).status_code == 403
    row = RankingSnapshot.objects.first()
    delete = reverse("admin:dashboard_rankingsnapshot_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_streaks_and_long_running_syncs_come_with_the_count(viewer_client, failures):
    from django.utils import timezone as tz

    a, b = failures
    a.failing_streak, a.failing_since = 3, tz.now() - timedelta(hours=4)
    a.save()
    long = [make_sync(b, code=1010, ago=timedelta(minutes=30 + n)) for n in range(12)]
    live = rankings.count(rankings.between(None, tz.now()))
    assert [(r["name"], r["failing_streak"]) for r in live.streaks] == [("Alpha Ltd", 3)]
    assert live.long_running_count == 12
    assert [r["sync_id"] for r in live.long_running] == [s.sync_id for s in reversed(long)][:10]
    rankings.refresh()
    body = viewer_client.get(reverse("summary")).content.decode()
    assert "12 running over ten minutes" in body
    assert f'href="/syncs/{long[-1].sync_id}/"' in body  # the oldest first
    assert "3 in a row" in body and "Longest failing streaks (now)" not in body
    # Without a fresh count, the page reads them live and says "now".
    RankingSnapshot.objects.all().delete()
    body = viewer_client.get(reverse("summary")).content.decode()
    assert "12 running over ten minutes" in body and "Longest failing streaks (now)" in body


def test_a_count_from_a_clock_slightly_ahead_is_still_shown(viewer_client, failures):
    rankings.refresh(now=timezone.now() + timedelta(seconds=20))
    body = viewer_client.get(reverse("summary")).content.decode()
    assert 'data-testid="ranked-at"' in body


def test_past_ten_thousand_long_running_syncs_the_page_says_more_than(viewer_client, failures):
    rankings.refresh()
    RankingSnapshot.objects.update(long_running_count=rankings.COUNT_CAP + 1)
    body = viewer_client.get(reverse("summary")).content.decode()
    assert "More than 10,000 running over ten minutes" in body


@pytest.mark.django_db(transaction=True)
def test_a_refresh_started_while_another_runs_does_nothing(failures):
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's (CI runs on PostgreSQL)")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [rankings.LOCK_KEY])
            assert rankings.refresh() == 0
            assert not RankingSnapshot.objects.exists()
            cursor.execute("COMMIT")
        assert rankings.refresh() == len(PRESETS)
    finally:
        other.close()
