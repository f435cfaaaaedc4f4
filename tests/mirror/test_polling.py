"""Adaptive polling: tiers, the share of the budget, backing off as the quota falls,
every company at least daily, and the schedule admins change."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from importlib import import_module
from unittest import mock

import httpx
import pytest
import time_machine
from django.apps import apps as django_apps
from django.core.handlers.wsgi import WSGIHandler
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from dashboard import ingest, polling
from dashboard.models import Company, PollingSchedule, WebhookGap
from dashboard.ratelimit import Limits, LocalLimiter, get_limiter
from dashboard.tasks import poll_company_task, poll_task
from dashboard.upstream import Upstream
from dashboard.vocabulary import PollTier
from sandbox import models as sb
from tests.support.clock import FakeClock
from tests.support.factories import make_company, make_sync
from tests.support.health import poll, sync_record
from tests.support.upstream import mock_client


@pytest.fixture(autouse=True)
def _fresh_schedule():
    polling.forget_schedule()
    yield
    polling.forget_schedule()


def limiter_of(per_window: int, *, window: float = 60, max_wait: float = 0.0) -> LocalLimiter:
    clock = FakeClock()
    limits = Limits(
        per_window=per_window, window=window, per_company=10, lease=60, max_wait=max_wait
    )
    return LocalLimiter(limits, clock=clock, sleep=clock.sleep)


def with_tier(company: Company) -> PollTier:
    company.refresh_from_db()
    return polling.retier(company)


# --- tiers ---


def test_each_company_gets_the_tier_its_activity_asks_for(db, settings):
    settings.CODAT_WEBHOOK_SECRET = "whsec_test"
    now = timezone.now()
    running = make_company()
    make_sync(running, code=1000, ago=timedelta(minutes=3))
    failing = make_company()
    make_sync(failing, code=5000, ago=timedelta(hours=2))
    recent = make_company()
    make_sync(recent, code=2000, ago=timedelta(hours=2))
    idle = make_company()
    make_sync(idle, code=2000, ago=timedelta(days=3))
    dormant = make_company()
    make_sync(dormant, code=2000, ago=timedelta(days=30))
    never = make_company()
    missing = make_company()
    old = make_sync(missing, code=2000, ago=timedelta(days=3))
    WebhookGap.objects.create(
        sync_id=old.sync_id,
        company=missing,
        ended_at=now - timedelta(hours=1),
        found_at=now - timedelta(minutes=30),
        due_at=now - timedelta(minutes=25),
        missed_at=now - timedelta(minutes=25),
    )
    for company in (running, failing, recent, idle, dormant, missing):
        ingest.update_streak(company)

    tiers = {
        "running": with_tier(running),
        "failing": with_tier(failing),
        "recent": with_tier(recent),
        "idle": with_tier(idle),
        "dormant": with_tier(dormant),
        "never": with_tier(never),
        "missing": with_tier(missing),
    }

    assert tiers == {
        "running": PollTier.RUNNING,
        "failing": PollTier.FAILING,
        "recent": PollTier.RECENT,
        "idle": PollTier.IDLE,
        "dormant": PollTier.DORMANT,
        "never": PollTier.DORMANT,
        "missing": PollTier.MISSING_WEBHOOKS,
    }
    plan = PollingSchedule.load()
    for company in (running, idle, dormant):
        company.refresh_from_db()
        due_in = company.poll_due - now
        interval = plan.interval(company.poll_tier)
        assert interval - timedelta(seconds=5) <= due_in <= interval + timedelta(seconds=5)


def test_missing_webhooks_count_only_while_the_receiver_is_configured(db, settings):
    settings.CODAT_WEBHOOK_SECRET = ""
    company = make_company()
    old = make_sync(company, ago=timedelta(days=3))
    now = timezone.now()
    WebhookGap.objects.create(
        sync_id=old.sync_id, company=company, ended_at=now, found_at=now, due_at=now
    )
    ingest.update_streak(company)
    assert with_tier(company) == PollTier.IDLE


def test_a_refresh_and_a_webhook_work_the_tier_out_again(db):
    company = make_company()
    started = timezone.now() - timedelta(minutes=2)
    sync_id = uuid.uuid4()

    poll(company, [sync_record(company, started=started, code=1000, sync_id=sync_id)])
    company.refresh_from_db()
    assert company.poll_tier == PollTier.RUNNING
    assert company.poll_due <= timezone.now() + timedelta(minutes=2)

    # The webhook's refresh of the one sync finds it finished: recent, not running.
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(f"/{sync_id}/status"):
            return httpx.Response(200, json=sync_record(company, started=started, sync_id=sync_id))
        return httpx.Response(200, json={"results": [], "_links": {}})

    with mock_client(answer) as client:
        ingest.refresh_sync(client, str(company.company_id), str(sync_id))
    company.refresh_from_db()
    assert company.poll_tier == PollTier.RECENT
    assert company.poll_due > timezone.now() + timedelta(minutes=9)


# --- the tick and the share ---


def overdue(n: int, *, tier: str = PollTier.DORMANT) -> None:
    long_ago = timezone.now() - timedelta(days=2)
    Company.objects.bulk_create(
        [
            Company(company_id=uuid.uuid4(), name=f"Overdue {i}", poll_tier=tier, poll_due=long_ago)
            for i in range(n)
        ]
    )


def test_a_tick_claims_no_more_than_the_share_however_many_are_overdue(
    db, django_assert_max_num_queries
):
    overdue(2000)
    plan = PollingSchedule.load()
    plan.share, plan.companies_listed_at = 0.5, timezone.now()
    plan.save()
    limiter = limiter_of(100)
    now = timezone.now()

    with django_assert_max_num_queries(10):  # however many companies: one read of the due
        first = polling.tick(now=now, limiter=limiter)
    again = polling.tick(now=now, limiter=limiter)
    half_later = polling.tick(now=now + timedelta(seconds=30), limiter=limiter)

    assert first.allowance == 50
    assert len(first.companies) == 50
    assert again.companies == []  # the window's credit is spent
    assert len(half_later.companies) == 25  # credit comes back pro rata
    claimed = {*first.companies, *half_later.companies}
    assert len(claimed) == 75
    # The most overdue first; the claimed are due again a tier's interval on.
    assert not Company.objects.filter(company_id__in=claimed, poll_due__lte=now).exists()


def test_frequent_ticks_add_up_to_the_share_and_no_more(db):
    overdue(500)
    plan = PollingSchedule.load()
    plan.share, plan.companies_listed_at, plan.ticked_at = 0.5, timezone.now(), timezone.now()
    plan.save()
    limiter = limiter_of(60)
    start = timezone.now()
    claimed = 0
    for second in range(1, 121):  # a tick a second for two windows
        claimed += len(
            polling.tick(now=start + timedelta(seconds=second), limiter=limiter).companies
        )
    assert 58 <= claimed <= 60  # 30 a minute


def test_no_company_is_claimed_while_polling_has_used_its_window(db):
    overdue(10)
    limiter = limiter_of(10)
    for _ in range(5):
        limiter.wait_for_budget(lane=polling.Lane(polling.LANE, 5))
    assert polling.tick(limiter=limiter).companies == []


def test_the_lane_refuses_polling_past_its_share_but_not_others(db):
    limiter = limiter_of(10)
    lane = polling.Lane(polling.LANE, 5)
    for _ in range(5):
        limiter.wait_for_budget(lane=lane)
    with pytest.raises(polling_budget_busy()):
        limiter.wait_for_budget(0, lane=lane)
    for _ in range(5):  # the rest of the window: webhooks, retries, people
        limiter.wait_for_budget(0)
    with pytest.raises(polling_budget_busy()):
        limiter.wait_for_budget(0)
    assert limiter.lane_used(polling.LANE) == 5


def polling_budget_busy() -> type[Exception]:
    from dashboard.ratelimit import BudgetWaitTooLong

    return BudgetWaitTooLong


@pytest.mark.system
def test_polls_take_no_more_than_their_share_of_the_sandboxs_budget(
    mirrored, settings, celery_eager
):
    """Against the sandbox: every company overdue, a budget of 8 a minute, half of it
    polling's. The polls make 4 requests and no more, the rest wait their turn."""
    settings.CODAT_RATE_LIMIT_PER_MINUTE = 8
    settings.CODAT_MAX_WAIT_SECONDS = 0.2
    get_limiter.cache_clear()
    plan = PollingSchedule.load()
    plan.share, plan.companies_listed_at = 0.5, timezone.now()
    plan.save()
    Company.objects.update(poll_due=timezone.now() - timedelta(hours=1))
    sb.RequestLog.objects.all().delete()

    queued = poll_task()
    for company_id in Company.objects.values_list("company_id", flat=True)[:3]:
        poll_company_task(str(company_id))  # past the share: held back, not sent

    assert queued == 4
    assert sb.RequestLog.objects.count() == 4  # one each: nothing changed
    assert get_limiter().lane_used(polling.LANE) == 4
    assert poll_task() == 0  # the window's share is spent


# --- backing off as X-Rate-Limit-Remaining falls ---


@pytest.fixture
def quota_reader(sandbox_enabled, api_key, small_estate, settings):
    """Reads the company list from the sandbox through the dashboard's shared budget,
    which notes the quota headers of each answer."""
    settings.CODAT_RATE_LIMIT_PER_MINUTE = 900
    # The process's own budget: the test travels in time, and Redis keeps the quota
    # until the reset the headers name, on its own clock.
    settings.REDIS_URL = ""
    get_limiter.cache_clear()

    def read() -> int:
        client = Upstream(
            base_url="http://testserver/sandbox",
            api_key=api_key,
            limiter=get_limiter(),
            transport=httpx.WSGITransport(app=WSGIHandler()),
        )
        with client:
            next(iter(client.list_companies()))
        return polling.allowance(PollingSchedule.load(), get_limiter())

    return read


def test_polling_backs_off_as_the_sandbox_reports_less_remaining(quota_reader, sandbox_config):
    sandbox_config.rate_limit_per_day = 1_000_000
    allowances = []
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        for elsewhere in (0, 700_000, 850_000, 920_000):
            sandbox_config.quota_used_elsewhere = elsewhere
            sandbox_config.save()
            allowances.append(quota_reader())
        overdue(50)
        stopped = polling.tick()
    # Half the budget while the quota is plenty; half of what the quota left sustains
    # until midnight as it falls; nothing in its last tenth.
    assert allowances == [450, 138, 34, 0]
    assert stopped.companies == []
    # A new day, a new quota: polling takes its share again.
    sandbox_config.quota_used_elsewhere = 0
    sandbox_config.save()
    with time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False):
        assert quota_reader() == 450


def test_the_sandbox_reports_the_quota_another_client_used(api, small_estate, sandbox_config):
    sandbox_config.rate_limit_per_day = 10_000
    sandbox_config.quota_used_elsewhere = 9_000
    sandbox_config.save()
    answer = api.get("/companies")
    assert int(answer.headers["X-Rate-Limit-Remaining"]) == 999
    sandbox_config.quota_used_elsewhere = 10_000
    sandbox_config.save()
    assert api.get("/companies").status_code == 429


# --- every company within a day ---


def test_every_company_is_polled_within_a_day(db):
    """A simulated day and more: 20 running, 30 recent, 100 idle and 150 dormant companies,
    a budget that can carry them; no company waits more than a day between polls."""
    start = timezone.now()
    for tier, n in (
        (PollTier.RUNNING, 20),
        (PollTier.RECENT, 30),
        (PollTier.IDLE, 100),
        (PollTier.DORMANT, 150),
    ):
        Company.objects.bulk_create(
            [
                Company(
                    company_id=uuid.uuid4(),
                    name=f"{tier} {i}",
                    poll_tier=tier,
                    # spread over the first interval, as after a while of running
                    poll_due=start + PollingSchedule().interval(tier) * (i / n),
                )
                for i in range(n)
            ]
        )
    plan = PollingSchedule.load()
    plan.companies_listed_at = start + timedelta(days=2)
    plan.save()
    limiter = limiter_of(200, window=600)  # 100 polls in 10 minutes
    polled: dict[str, list[datetime]] = defaultdict(list)
    now = start
    while now <= start + timedelta(hours=26):
        for company_id in polling.tick(now=now, limiter=limiter).companies:
            polled[company_id].append(now)
        now += timedelta(minutes=10)

    assert len(polled) == 300
    longest = max(
        max(b - a for a, b in zip([start, *times], [*times, now], strict=True))
        for times in polled.values()
    )
    assert longest <= timedelta(days=1, minutes=10)
    running = Company.objects.filter(poll_tier=PollTier.RUNNING).values_list(
        "company_id", flat=True
    )
    assert all(len(polled[str(c)]) >= 26 * 6 - 2 for c in running)


# --- admins ---


def test_an_admins_change_takes_effect_at_the_next_tick(admin_client, db):
    overdue(100)
    idle = Company.objects.create(
        company_id=uuid.uuid4(),
        name="Idle",
        poll_tier=PollTier.IDLE,
        poll_due=timezone.now() + timedelta(minutes=50),
    )
    plan = PollingSchedule.load()
    form = {
        field: getattr(plan, field)
        for field in (
            "share",
            *(f"{tier}_minutes" for tier in PollTier.values),
            "recent_hours",
            "idle_days",
            "company_list_minutes",
        )
    }
    form.update(share="0.2", idle_minutes="15")
    change = reverse("admin:dashboard_pollingschedule_change", args=[plan.pk])

    page = admin_client.get(change)
    saved = admin_client.post(change, form)

    assert page.status_code == 200
    assert "May take" in page.content.decode()
    assert saved.status_code == 302
    idle.refresh_from_db()
    assert idle.poll_due <= timezone.now() + timedelta(minutes=15)  # brought forward
    tick = polling.tick(limiter=limiter_of(100))
    assert tick.allowance == 20
    assert len(tick.companies) == 19  # and one request to read the company list


def test_admins_see_each_companys_tier_and_next_poll(admin_client, db):
    make_company(name="Acme", poll_tier=PollTier.FAILING)
    page = admin_client.get(reverse("admin:dashboard_company_changelist") + "?poll_tier=failing")
    assert page.status_code == 200
    assert "Failing recently" in page.content.decode()


def test_an_out_of_range_share_is_refused(admin_client, db):
    plan = PollingSchedule.load()
    change = reverse("admin:dashboard_pollingschedule_change", args=[plan.pk])
    refused = admin_client.post(change, {"share": "1.5", "dormant_minutes": "2000"})
    assert refused.status_code == 200
    plan.refresh_from_db()
    assert plan.share == 0.5


# --- beat ---


def test_beat_polls_by_priority_instead_of_reconciling_everyone(db):
    # What the migrations leave (made again here: a test that flushed the database
    # before this one, in the same process, took their rows away).
    if not PeriodicTask.objects.filter(task="dashboard.poll").exists():
        import_module("dashboard.migrations.0002_refresh_schedule").create(django_apps, None)
        import_module("dashboard.migrations.0038_poll_schedule").to_poller(django_apps, None)
    poller = PeriodicTask.objects.get(task="dashboard.poll")
    assert poller.enabled
    assert poller.interval.every == 30 and poller.interval.period == "seconds"
    assert not PeriodicTask.objects.filter(task="dashboard.reconcile", enabled=True).exists()


def test_a_poll_task_asks_again_later_when_the_upstream_asks_us_to_wait(db, settings):
    company = make_company()
    company.poll_due = timezone.now()
    company.save()
    from dashboard.upstream import UpstreamError

    busy = UpstreamError("Request budget is busy.", retryable=True, retry_after=120)
    with mock.patch.object(ingest, "refresh_company", side_effect=busy):
        outcome = poll_company_task(str(company.company_id))
    assert "error" in outcome
    company.refresh_from_db()
    assert company.poll_due >= timezone.now() + timedelta(seconds=110)


@pytest.mark.parametrize("retryable", [True, False])
def test_a_new_company_whose_poll_fails_is_not_asked_again_every_minute(db, retryable):
    from dashboard.upstream import UpstreamError

    company = make_company()
    assert company.poll_tier == PollTier.NEW
    failure = UpstreamError("Upstream error 503", retryable=retryable, status=503)
    with mock.patch.object(ingest, "refresh_company", side_effect=failure):
        poll_company_task(str(company.company_id))
    company.refresh_from_db()
    if retryable:  # as often as a recently active company
        assert company.poll_tier == PollTier.NEW
        assert company.poll_due >= timezone.now() + timedelta(minutes=9)
    else:  # no syncs mirrored: dormant, daily
        assert company.poll_tier == PollTier.DORMANT
        assert company.poll_due >= timezone.now() + timedelta(hours=23)


def test_a_busier_tier_never_puts_a_poll_off(db):
    company = make_company(poll_tier=PollTier.IDLE, poll_due=timezone.now() + timedelta(minutes=1))
    make_sync(company, ago=timedelta(minutes=30))
    ingest.update_streak(company)
    assert with_tier(company) == PollTier.RECENT
    company.refresh_from_db()
    assert company.poll_due <= timezone.now() + timedelta(minutes=1)


def test_companies_a_full_reconciliation_queued_are_not_polled_again_at_once(db):
    """`make run` reconciles at start as beat first ticks: each company is refreshed once."""
    now = timezone.now()
    queued = [make_company() for _ in range(3)]
    later = make_company()
    Company.objects.filter(pk__in=[c.pk for c in queued]).update(poll_due=now)
    Company.objects.filter(pk=later.pk).update(poll_due=now + timedelta(days=1))
    plan = PollingSchedule.load()
    plan.companies_listed_at = now
    plan.save()

    moved = polling.refreshed_by_reconciliation([*(c.pk for c in queued), later.pk], now=now)
    tick = polling.tick(now=now + timedelta(seconds=30), limiter=limiter_of(100))

    assert moved == 4
    assert tick.companies == []
    for company in queued:
        company.refresh_from_db()
        assert company.poll_due == now + plan.interval(PollTier(company.poll_tier))
    later.refresh_from_db()
    assert later.poll_due == now + timedelta(days=1)  # a later poll stays where it was
