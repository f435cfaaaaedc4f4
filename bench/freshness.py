"""Freshness at 10,000 companies: how long the mirror lags the upstream, in real time.

The whole system as processes on this machine, in a PostgreSQL database of its
own (BENCH_FRESHNESS_URL, default `synchealth_bench_freshness`, made afresh)
and a Redis database of its own (BENCH_FRESHNESS_REDIS, default db 13, emptied):
gunicorn serving the app and the sandbox, two Celery workers and beat (which
runs adaptive polling's tick, `dashboard.poll`, every 30 s, and every other
periodic task as in production).

1. The estate: the sandbox's 10,000 companies (sandbox/estate.py, through
   COPY), a short history each (BENCH_FRESHNESS_SYNCS syncs); the first 1,000
   (the active ones) with their history in the last day, the rest over the
   last 30 days. The history's syncs already due to end are finished then.
2. The mirror preloaded equal to it by a full import through the app's own
   ingest (company list, then every company's refresh), run in this process
   against the sandbox in-process (the sandbox's WSGI app as the client's
   transport, no budget): the rows are exactly those a refresh writes. The
   companies' next polls are then spread over their tiers' intervals, as
   after a while of running.
3. The budget: the sandbox enforces 1,000 requests a minute (its
   `rate_limit_per_minute`) and the app's limiter is configured for the same;
   polling's share is the default (50%). Webhooks go to the app's receiver,
   signed; the sandbox drops 10% of them (`webhook_drop_rate`), never retried.
4. Traffic: BENCH_FRESHNESS_RATE syncs a second (default 2), Poisson, each
   a new expense sync of 1 to 5 transactions made in the sandbox (as a
   client's POST would, but without taking the budget's requests): 90% at one
   of the 1,000 active companies, 10% at any of the 10,000. The sandbox runs
   each for its processing time, finalizes it (its task) and sends its webhook.
5. For BENCH_FRESHNESS_SECONDS (default 600) of steady state, after a
   BENCH_FRESHNESS_WARMUP (default 60 s) of traffic, the bench watches both
   databases every second: the sandbox's finalization time of each
   generated sync (`Sync.finalized_at`, the sandbox's own record), and the
   first second the mirror's row shows its final status. Lag = the second the
   bench saw it in the mirror minus the sandbox's finalization time (so up to
   a second high). Syncs finalized in the steady window are measured; those
   still not shown when it ends are counted, with their age.

Requests are counted by the app's limiter (every upstream request takes a
slot in its Redis window; polling's also in polling's lane): the members of
both sorted sets, read every 10 s, within the steady window. The sandbox's
request log gives the total as the upstream saw it, and its 429s.

    python -m bench freshness
    BENCH_FRESHNESS_SECONDS=120 BENCH_FRESHNESS_WARMUP=30 python -m bench freshness
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import harness

URL = os.environ.get(
    "BENCH_FRESHNESS_URL", "postgres://postgres@127.0.0.1:5432/synchealth_bench_freshness"
)
REDIS = os.environ.get("BENCH_FRESHNESS_REDIS", "redis://127.0.0.1:6379/13")
COMPANIES = int(os.environ.get("BENCH_FRESHNESS_COMPANIES", "10000"))
ACTIVE = int(os.environ.get("BENCH_FRESHNESS_ACTIVE", str(COMPANIES // 10)))
SYNCS_PER_COMPANY = int(os.environ.get("BENCH_FRESHNESS_SYNCS", "2"))
SECONDS = float(os.environ.get("BENCH_FRESHNESS_SECONDS", "600"))
WARMUP = float(os.environ.get("BENCH_FRESHNESS_WARMUP", "60"))
RATE = float(os.environ.get("BENCH_FRESHNESS_RATE", "2"))
ANYWHERE = 0.1  # share of the syncs at any company, not only the active ones
DROP = 0.1
PER_MINUTE = 1000
PORT = int(os.environ.get("BENCH_FRESHNESS_PORT", "8793"))
KEY = "bench-freshness-key"
THREADS = os.environ.get("BENCH_FRESHNESS_THREADS", "6")  # per worker (two workers)
PREFIX = "benchfresh"
SECRET = "whsec_" + "YmVuY2gtZnJlc2huZXNzLXNlY3JldC0wMTIz"  # base64 of 27 bytes


def environment() -> dict[str, str]:
    return harness.environment(
        URL,
        SANDBOX_ENABLED="1",
        SANDBOX_API_KEY=KEY,
        SANDBOX_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
        # Codat's daily quota for 1,000 active companies: 1,000 x (1 + 1,000).
        SANDBOX_RATE_LIMIT_PER_DAY=str(1000 * (1 + 1000)),
        CODAT_BASE_URL=f"http://127.0.0.1:{PORT}/sandbox",
        CODAT_API_KEY=KEY,
        CODAT_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
        CODAT_RATE_LIMIT_PREFIX=f"{PREFIX}:rl",
        CODAT_WEBHOOK_SECRET=SECRET,
        CELERY_BROKER_URL=REDIS,
        REDIS_URL=REDIS,
        CACHE_KEY_PREFIX=PREFIX,
        DATABASE_CONN_MAX_AGE="60",
    )


# --- the estate and the preloaded mirror ---


def build_estate() -> float:
    from sandbox import estate, services

    began = time.monotonic()
    estate.reset()
    # The active companies first (pks 1..ACTIVE): their history within the last day.
    estate.build_estate(
        companies=ACTIVE, syncs_per_company=SYNCS_PER_COMPANY, items_per_sync=2, days=1, seed=7
    )
    estate.build_estate(
        companies=COMPANIES - ACTIVE,
        syncs_per_company=SYNCS_PER_COMPANY,
        items_per_sync=2,
        days=30,
        seed=8,
    )
    # The history's syncs that have "run for hours" are due already: finished now,
    # before the mirror is loaded, not in a burst when the system starts.
    while services.finalize_due(limit=1000):
        pass
    return time.monotonic() - began


def preload_mirror() -> tuple[float, int]:
    """The mirror made equal to the estate, in bulk; (seconds, requests).

    The company list is read through the app's client (the sandbox in-process,
    no budget); the syncs are written in bulk, each row as the ingest's upsert
    makes it from the body the sandbox's API serves for it; each company's last
    syncs and failing streak as a refresh works them out, and its tier by
    polling's own `retier`. The history's items are not copied: the mirror
    records them as read, so a poll finds nothing to fetch, as after a full
    import. (A full import through the app costs about 0.1 s a company here.)
    """
    from collections import defaultdict

    from django.core.wsgi import get_wsgi_application
    from django.db import connection, transaction
    from django.utils import timezone

    from dashboard import ingest, polling
    from dashboard.fingerprint import fingerprint
    from dashboard.ingest.state import chain_category
    from dashboard.ingest.syncs import _sync_values, sync_category
    from dashboard.models import RefreshState
    from dashboard.models import Sync as MirrorSync
    from dashboard.ratelimit import Limits, LocalLimiter
    from dashboard.upstream import Upstream
    from dashboard.vocabulary import Category, code_category
    from sandbox import bodies
    from sandbox.models import Company, Sync

    began = time.monotonic()
    limiter = LocalLimiter(
        Limits(per_window=10**9, window=60, per_company=10, lease=60, max_wait=0)
    )
    transport = httpx.WSGITransport(app=get_wsgi_application())
    with Upstream(
        f"http://127.0.0.1:{PORT}/sandbox", KEY, limiter=limiter, transport=transport
    ) as client:
        companies = ingest.refresh_companies(client)
        requests = client.requests_made
    mirrored = {c.company_id: c for c in companies}
    upstream = {c.pk: c for c in Company.objects.all()}
    now = timezone.now()
    rows: list[MirrorSync] = []
    per_company: dict[int, list[MirrorSync]] = defaultdict(list)
    for sync in Sync.objects.order_by("started_at", "pk"):
        source = upstream[sync.company_id]
        company = mirrored[source.company_id]
        values = _sync_values(bodies.sync_body(sync, source, now))
        row = MirrorSync(company=company, platform_name=company.platform_name, **values)
        row.category = sync_category(values["status_code"], 0)
        row.chain_category = chain_category(row.category, None, False)
        row.error_fingerprint = fingerprint(values["error_message"] or values["exception_message"])
        row.first_seen = row.last_refreshed = now
        if code_category(values["status_code"]) != Category.IN_PROGRESS:
            row.completed_at = sync.completes_at
            row.duration_s = max(0, int((row.completed_at - row.sync_utc).total_seconds()))
        row.items_status_code = values["status_code"]
        row.items_fetched_at = now
        rows.append(row)
        per_company[company.pk].append(row)
    MirrorSync.objects.bulk_create(rows, batch_size=2000)
    for company in companies:
        history = per_company.get(company.pk, [])
        company.last_sync_at = history[-1].sync_utc if history else None
        successes = [r.sync_utc for r in history if r.category == Category.SUCCESS]
        company.last_success_at = successes[-1] if successes else None
        streak, since = 0, None
        for row in reversed(history):
            if row.category == Category.IN_PROGRESS:
                continue
            if row.category != Category.FAILED:
                break
            streak, since = streak + 1, row.sync_utc
        company.failing_streak, company.failing_since = streak, since
    with connection.cursor() as cursor:  # bulk_update's CASE over 10,000 rows is slow
        cursor.executemany(
            "UPDATE dashboard_company SET last_sync_at = %s, last_success_at = %s, "
            "failing_streak = %s, failing_since = %s WHERE id = %s",
            [
                (c.last_sync_at, c.last_success_at, c.failing_streak, c.failing_since, c.pk)
                for c in companies
            ],
        )
    RefreshState.objects.bulk_create(
        [
            RefreshState(company=c, last_success=now, config_fetched_at=now, push_fetched_at=now)
            for c in companies
        ],
        batch_size=2000,
    )
    with transaction.atomic():  # one commit, not one per company
        for company in companies:
            polling.retier(company, now=now)
    return time.monotonic() - began, requests


def spread_polls() -> dict[str, int]:
    """Each company's next poll somewhere within its tier's interval, as after a while."""
    from django.db import connection
    from django.utils import timezone

    from dashboard.models import Company, PollingSchedule

    plan = PollingSchedule.load()
    now = timezone.now()
    plan.companies_listed_at = now
    # As after a while of running: the first tick has a tick's credit, not the whole
    # allowance at once (BENCH_FRESHNESS_COLD=1: as on a first start, every poll at once).
    plan.ticked_at = None if os.environ.get("BENCH_FRESHNESS_COLD") == "1" else now
    plan.save()
    rng = random.Random(3)
    rows = list(Company.objects.only("pk", "poll_tier"))
    for row in rows:
        row.poll_due = now + plan.interval(row.poll_tier) * rng.random()
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE dashboard_company SET poll_due = %s WHERE id = %s",
            [(row.poll_due, row.pk) for row in rows],
        )
        cursor.execute("ANALYZE")
    tiers: dict[str, int] = {}
    for row in rows:
        tiers[row.poll_tier] = tiers.get(row.poll_tier, 0) + 1
    return tiers


def configure_sandbox() -> None:
    from sandbox.models import SandboxSettings, WebhookConsumer

    config = SandboxSettings.load()
    config.rate_limit_per_minute = PER_MINUTE
    config.webhook_drop_rate = DROP
    config.save()
    WebhookConsumer.objects.all().delete()
    WebhookConsumer.objects.create(url=f"http://127.0.0.1:{PORT}/webhooks/codat", secret=SECRET)


# --- the system's processes ---


def start_system(env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    py = sys.executable
    processes = [
        harness.start(
            [
                py,
                "-m",
                "gunicorn",
                "synchealth.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                "2",
                "--threads",
                "8",
            ],
            env,
            logs / "gunicorn.log",
        )
    ]
    for name in ("w1", "w2"):
        processes.append(
            harness.start(
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "synchealth",
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    THREADS,
                    "-n",
                    f"{name}@bench",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "INFO",
                ],
                env,
                logs / f"{name}.log",
            )
        )
    processes.append(
        harness.start(
            [
                py,
                "-m",
                "celery",
                "-A",
                "synchealth",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(logs / "beat-schedule"),
            ],
            env,
            logs / "beat.log",
        )
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{PORT}/sandbox", auth=(KEY, ""), timeout=10)
    harness.wait_for(client, "/companies", attempts=200, pause=0.2, pageSize=1)
    return processes


# --- the traffic ---


class Traffic:
    """New expense syncs in the sandbox at `RATE` a second (Poisson), as a client posts them."""

    def __init__(self, active: list[int], everyone: list[int]) -> None:
        self.rng = random.Random(11)
        self.active = active
        self.everyone = everyone
        self.next_at = time.monotonic()
        self.made: dict[uuid.UUID, bool] = {}  # sync ID: at an active company

    def run_due(self) -> None:
        from sandbox import services
        from sandbox.models import Company

        for _ in range(20):  # a slow database may fall behind; never loop for good
            if self.next_at > time.monotonic():
                break
            anywhere = self.rng.random() < ANYWHERE
            pk = self.rng.choice(self.everyone if anywhere else self.active)
            company = Company.objects.get(pk=pk)
            ids = [uuid.uuid4() for _ in range(self.rng.randint(1, 5))]
            sync = services.create_expense_sync(company=company, transaction_ids=ids)
            self.made[sync.sync_id] = pk in self._active_set
            self.next_at += self.rng.expovariate(RATE)

    @property
    def _active_set(self) -> set[int]:
        if not hasattr(self, "_set"):
            self._set = set(self.active)
        return self._set


# --- watching both sides ---


class Watch:
    """Every generated sync: when the sandbox finalized it, and when the mirror first showed it."""

    def __init__(self) -> None:
        self.finalized: dict[uuid.UUID, tuple[float, int]] = {}  # sandbox: (at, status code)
        self.dropped: set[uuid.UUID] = set()
        self.shown: dict[uuid.UUID, float] = {}  # mirror: first seen with the final status

    def look(self, made: dict[uuid.UUID, bool]) -> None:
        from django.db import connection

        now = time.time()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.sync_id, s.finalized_at, s.status_code, "
                "COALESCE(bool_or(d.dropped), false) "
                "FROM sandbox_sync s LEFT JOIN sandbox_webhookdelivery d ON d.sync_id = s.id "
                "WHERE s.kind = 'expenses' AND s.finalized AND s.finalized_at > %s "
                "GROUP BY s.id",
                [self._since()],
            )
            for sync_id, at, code, dropped in cursor.fetchall():
                if sync_id in made and sync_id not in self.finalized:
                    self.finalized[sync_id] = (at.timestamp(), code)
                if dropped:
                    self.dropped.add(sync_id)
            waiting = [s for s in self.finalized if s not in self.shown]
            if waiting:
                cursor.execute(
                    "SELECT sync_id, status_code FROM dashboard_sync WHERE sync_id = ANY(%s)",
                    [waiting],
                )
                for sync_id, code in cursor.fetchall():
                    if code == self.finalized[sync_id][1]:
                        self.shown[sync_id] = now

    def _since(self):
        from datetime import UTC, datetime

        # The last two minutes of finalizations (a delivery's drop is decided after them).
        return datetime.fromtimestamp(time.time() - 120, tz=UTC)


def limiter_members(client, seen: dict[str, dict[str, float]]) -> None:
    for name, key in (("all", f"{PREFIX}:rl:window"), ("poll", f"{PREFIX}:rl:lane:poll")):
        for member, score in client.zrange(key, 0, -1, withscores=True):
            seen[name][member.decode()] = score / 1000


def main() -> int:
    import redis

    env = environment()
    harness.ensure_database(env, fresh=True)
    store = redis.Redis.from_url(REDIS)
    store.flushdb()
    harness.django_setup(env)
    from django.db import connection
    from django.utils import timezone

    from dashboard.models import Company as MirrorCompany
    from sandbox.models import Company, RequestLog, WebhookDelivery

    # The estate's in-progress syncs finish while the system runs; not measured.
    took = build_estate()
    print(f"estate: {Company.objects.count():,} companies built in {took:.0f}s", flush=True)
    took, requests = preload_mirror()
    print(
        f"mirror preloaded in bulk in {took:.0f}s (the company list in {requests} "
        "request(s), the syncs written as the ingest writes them)",
        flush=True,
    )
    tiers = spread_polls()
    print(f"tiers after the import: {dict(sorted(tiers.items()))}", flush=True)
    configure_sandbox()
    assert MirrorCompany.objects.count() == COMPANIES
    store.flushdb()  # the import's counts of the day's quota, and its cache
    RequestLog.objects.all().delete()

    logs = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    processes = start_system(env, logs)
    print(f"system started (logs in {logs})", flush=True)
    active = list(range(1, ACTIVE + 1))
    traffic = Traffic(active, list(range(1, COMPANIES + 1)))
    watch = Watch()
    members: dict[str, dict[str, float]] = {"all": {}, "poll": {}}
    queued: list[int] = []  # tasks waiting in the broker's queue, every 10 s
    began = time.time()
    steady_from = began + WARMUP
    steady_to = steady_from + SECONDS
    last_members = 0.0
    last_print = began
    try:
        while time.time() < steady_to:
            traffic.run_due()
            watch.look(traffic.made)
            if time.time() - last_members >= 10:
                limiter_members(store, members)
                last_members = time.time()
                if last_members >= steady_from:
                    queued.append(store.llen("celery"))
            if time.time() - last_print >= 60:
                last_print = time.time()
                print(
                    f"  {last_print - began:4.0f}s: {len(traffic.made):,} syncs made, "
                    f"{len(watch.finalized):,} finalized, {len(watch.shown):,} shown, "
                    f"{len(members['all']):,} requests ({len(members['poll']):,} polling's), "
                    f"{store.llen('celery'):,} tasks queued",
                    flush=True,
                )
            time.sleep(max(0.0, min(1.0, traffic.next_at - time.monotonic())))
        limiter_members(store, members)
        # A last look for the syncs finalized in the window whose webhook is on its way.
        settle = time.time() + 15
        while time.time() < settle:
            watch.look(traffic.made)
            time.sleep(1)
    finally:
        for process in reversed(processes):  # beat and the workers, then the server
            harness.stop(process, timeout=20)

    in_window = {s: at for s, (at, _) in watch.finalized.items() if steady_from <= at < steady_to}
    # Which deliveries were lost, as the sandbox finally recorded them (a drop is decided
    # when the delivery is first attempted, which may be after the watch looked).
    watch.dropped = set(
        WebhookDelivery.objects.filter(dropped=True, sync__sync_id__in=list(in_window)).values_list(
            "sync__sync_id", flat=True
        )
    )
    announced = [s for s in in_window if s not in watch.dropped]
    missed = [s for s in in_window if s in watch.dropped]
    missed_active = [s for s in missed if traffic.made[s]]
    missed_elsewhere = [s for s in missed if not traffic.made[s]]

    def lags(syncs: list[uuid.UUID]) -> list[float]:
        return [watch.shown[s] - in_window[s] for s in syncs if s in watch.shown]

    def unseen_ages(syncs: list[uuid.UUID]) -> list[float]:
        return [steady_to - in_window[s] for s in syncs if s not in watch.shown]

    webhook_lags = lags(announced)
    missed_lags = lags(missed_active)
    # Not shown by the end: their lag is at least their age then (counted as that).
    missed_open = unseen_ages(missed_active)
    missed_all = missed_lags + [age + 15 for age in missed_open]
    elsewhere_lags = lags(missed_elsewhere)
    elsewhere_open = unseen_ages(missed_elsewhere)

    window_s = steady_to - steady_from
    polled = sum(1 for at in members["poll"].values() if steady_from <= at < steady_to)
    total = sum(1 for at in members["all"].values() if steady_from <= at < steady_to)
    from datetime import UTC, datetime

    lo = datetime.fromtimestamp(steady_from, tz=UTC)
    hi = datetime.fromtimestamp(steady_to, tz=UTC)
    logged = RequestLog.objects.filter(started_at__gte=lo, started_at__lt=hi)
    upstream_total = logged.count()
    refused = logged.filter(status=429).count()
    webhooks_sent = WebhookDelivery.objects.filter(
        delivered_at__gte=lo, delivered_at__lt=hi
    ).count()
    webhooks_dropped = WebhookDelivery.objects.filter(
        dropped=True, sync__finalized_at__gte=lo, sync__finalized_at__lt=hi
    ).count()
    made_in_window = len(traffic.made)  # all made, warm-up included
    budget = PER_MINUTE * window_s / 60
    share = polled / budget
    per_webhook = (total - polled) / webhooks_sent if webhooks_sent else None

    def p(values: list[float], q: float) -> float | None:
        return round(harness.percentile(values, q), 1) if values else None

    print(
        f"steady state {window_s:.0f}s after {WARMUP:.0f}s of warm-up; {made_in_window:,} syncs "
        f"made ({RATE}/s: {1 - ANYWHERE:.0%} at the {ACTIVE:,} active companies, the rest "
        f"anywhere); {len(in_window):,} finalized in the window"
    )
    print(
        f"announced by webhook: {len(announced):,}, shown {len(webhook_lags):,}; lag p50 "
        f"{p(webhook_lags, 0.5)} s, p95 {p(webhook_lags, 0.95)} s, max "
        f"{max(webhook_lags, default=None)} s"
    )
    print(
        f"webhook dropped, active companies: {len(missed_active):,}, shown {len(missed_lags):,} "
        f"(not yet: {len(missed_open)}); lag p50 {p(missed_all, 0.5)} s, p95 "
        f"{p(missed_all, 0.95)} s, max {max(missed_all, default=None)} s"
    )
    print(
        f"webhook dropped, other companies: {len(missed_elsewhere):,}, shown "
        f"{len(elsewhere_lags):,} (lag max {max(elsewhere_lags, default=None)} s), not yet "
        f"{len(elsewhere_open)} (oldest {max(elsewhere_open, default=0):.0f} s)"
    )
    print(
        f"requests in the window (the app's limiter): {total:,}, polling's {polled:,} "
        f"({share:.1%} of the budget's {budget:,.0f}); the sandbox logged {upstream_total:,}, "
        f"{refused} refused (429); webhooks delivered {webhooks_sent:,}, dropped "
        f"{webhooks_dropped:,}; requests per webhook (not polling's) "
        f"{per_webhook and round(per_webhook, 2)}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT poll_tier, count(*) FROM dashboard_company GROUP BY 1 ORDER BY 1")
        tiers_after = dict(cursor.fetchall())
    print(f"tiers at the end: {tiers_after}")
    print(
        f"tasks waiting in the broker's queue, every 10 s of the window: median "
        f"{statistics.median(queued) if queued else None}, max {max(queued, default=None)}"
    )
    harness.report(
        {
            "bench": "freshness",
            "companies": COMPANIES,
            "p95_webhook_s": p(webhook_lags, 0.95),
            "p95_missed_s": p(missed_all, 0.95),
            "max_missed_s": round(max(missed_all), 1) if missed_all else None,
            "budget_share": round(share, 3),
            "requests_per_webhook": round(per_webhook, 2) if per_webhook else None,
            "p50_webhook_s": p(webhook_lags, 0.5),
            "max_webhook_s": round(max(webhook_lags), 1) if webhook_lags else None,
            "webhook_syncs": len(announced),
            "webhook_syncs_unshown": len(announced) - len(webhook_lags),
            "missed_active": len(missed_active),
            "missed_active_unshown": len(missed_open),
            "missed_elsewhere": len(missed_elsewhere),
            "missed_elsewhere_shown": len(elsewhere_lags),
            "syncs_made": made_in_window,
            "syncs_finalized_in_window": len(in_window),
            "webhooks_sent": webhooks_sent,
            "webhooks_dropped": webhooks_dropped,
            "requests": total,
            "poll_requests": polled,
            "upstream_logged": upstream_total,
            "refused_429": refused,
            "budget_per_minute": PER_MINUTE,
            "syncs_per_s": RATE,
            "active_companies": ACTIVE,
            "duration_s": round(window_s),
            "warmup_s": WARMUP,
            "cold_start": os.environ.get("BENCH_FRESHNESS_COLD") == "1",
            "queue_median": statistics.median(queued) if queued else None,
            "queue_max": max(queued, default=None),
            "threads_per_worker": int(THREADS),
            "finished": timezone.now().isoformat(timespec="seconds"),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
