"""Adaptive polling at 10,000 companies: what a tick costs, and the schedule it keeps.

In a PostgreSQL database of its own (BENCH_POLLING_URL, default
`synchealth_bench_polling`, made afresh): 10,000 companies in the tiers an
estate with 1,000 active companies has (50 running, 100 whose webhooks seem
to be missing, 50 failing, 800 recent, 3,000 idle, the rest dormant), their
first polls spread over their intervals as after a while of running. Then a
simulated day and a half of beat's ticks, every 30 s, on a budget of 1,000
requests a minute with the default schedule (polling's share 50%); each poll
is counted as the one request an unchanged company costs, taken from
polling's lane of a budget on a simulated clock. No upstream is involved: this
measures the poller, not the refreshes.

Prints each tick's time and queries (p50, p95, max), the plan of the tick's
query for the due companies, the most requests polling took in any minute
against its allowance, each tier's median and longest time between polls, and
the longest any company waited; then every company due at once, the most any
minute polls and how long until all were polled; last, one JSON line.

    python -m bench polling
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from bench import harness

URL = os.environ.get(
    "BENCH_POLLING_URL", "postgres://postgres@127.0.0.1:5432/synchealth_bench_polling"
)
COMPANIES = int(os.environ.get("BENCH_POLLING_COMPANIES", "10000"))
HOURS = float(os.environ.get("BENCH_POLLING_HOURS", "36"))
TICK_SECONDS = 30
PER_MINUTE = 1000
TIERS = (  # (tier, companies), the rest dormant
    ("running", 50),
    ("missing_webhooks", 100),
    ("failing", 50),
    ("recent", 800),
    ("idle", 3000),
)


class Clock:
    """The budget's clock: simulated seconds that move only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def revision() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "dashboard"],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+" if dirty else "") if head else "unknown"


def build(start: datetime) -> dict[str, str]:
    """The companies, each with its tier and its first poll due; {company ID: tier}."""
    from dashboard.models import Company, PollingSchedule

    plan = PollingSchedule.load()
    plan.companies_listed_at = start + timedelta(days=365)  # not what is measured
    plan.ticked_at = None
    plan.save()
    sizes = {tier: n * COMPANIES // 10_000 for tier, n in TIERS}
    sizes["dormant"] = COMPANIES - sum(sizes.values())
    rows = [
        Company(
            company_id=uuid.uuid4(),
            name=f"{tier} {n}",
            poll_tier=tier,
            poll_due=start + plan.interval(tier) * (n / size),
        )
        for tier, size in sizes.items()
        for n in range(size)
    ]
    Company.objects.bulk_create(rows, batch_size=2000)
    return {str(row.company_id): row.poll_tier for row in rows}


def clear_backlog(now: datetime, limit: int) -> dict[str, float]:
    """Every company due at once (a first deployment, or beat back after a day away):
    the most any minute polls, and how long until every company has been polled."""
    from dashboard import polling
    from dashboard.models import Company, PollingSchedule
    from dashboard.ratelimit import BudgetWaitTooLong, Limits, LocalLimiter

    Company.objects.update(poll_due=now)
    PollingSchedule.objects.update(ticked_at=None)
    clock = Clock()
    limiter = LocalLimiter(
        Limits(per_window=PER_MINUTE, window=60, per_company=10, lease=60, max_wait=0),
        clock=clock,
        sleep=clock.sleep,
    )
    lane = polling.Lane(polling.LANE, limit)
    seen: set[str] = set()
    per_tick: list[int] = []
    start = now
    while len(seen) < COMPANIES and now < start + timedelta(hours=2):
        polled = 0
        for company_id in polling.tick(now=now, limiter=limiter).companies:
            try:
                limiter.wait_for_budget(0, lane)
            except BudgetWaitTooLong:
                continue
            seen.add(company_id)
            polled += 1
        per_tick.append(polled)
        now += timedelta(seconds=TICK_SECONDS)
        clock.sleep(TICK_SECONDS)
    return {
        "most_in_a_minute": max(a + b for a, b in itertools.pairwise(per_tick)),
        "minutes_to_clear": (now - start).total_seconds() / 60,
    }


def main() -> int:
    env = harness.environment(URL, without_redis=True, CODAT_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE))
    harness.ensure_database(env, fresh=True)
    harness.django_setup(env)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboard import polling
    from dashboard.models import Company
    from dashboard.ratelimit import BudgetWaitTooLong, Limits, LocalLimiter

    start = datetime.fromisoformat("2026-11-24T00:00:00+00:00")
    tiers = build(start)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dashboard_company")
    clock = Clock()
    limiter = LocalLimiter(
        Limits(per_window=PER_MINUTE, window=60, per_company=10, lease=60, max_wait=0),
        clock=clock,
        sleep=clock.sleep,
    )
    lane = polling.Lane(polling.LANE, polling.allowance(polling.schedule(), limiter))
    plan_text = "\n".join(
        Company.objects.filter(poll_due__lte=start + timedelta(hours=12))
        .order_by("poll_due", "id")
        .values_list("pk", "company_id", "poll_tier")[: lane.limit // 2]
        .explain()
        .splitlines()
    )
    print(f"companies {COMPANIES}; the tick's query for the due companies:\n{plan_text}")

    polled: dict[str, list[datetime]] = defaultdict(list)
    tick_ms: list[float] = []
    queries: list[int] = []
    per_tick: list[int] = []
    held_back = 0
    now = start
    end = start + timedelta(hours=HOURS)
    while now < end:
        connection.queries_log.clear()  # a bounded log: each tick's count from empty
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            tick = polling.tick(now=now, limiter=limiter)
            tick_ms.append((time.perf_counter() - began) * 1000)
        queries.append(len(captured.captured_queries))
        for company_id in tick.companies:
            try:
                limiter.wait_for_budget(0, lane)  # the one request an unchanged company costs
            except BudgetWaitTooLong:
                held_back += 1
                continue
            polled[company_id].append(now)
        per_tick.append(len(tick.companies))
        now += timedelta(seconds=TICK_SECONDS)
        clock.sleep(TICK_SECONDS)

    gaps: dict[str, list[float]] = defaultdict(list)
    longest_wait = 0.0
    for company_id, tier in tiers.items():
        times = polled.get(company_id, [])
        edges = [start, *times, end]
        waits = [(b - a).total_seconds() for a, b in itertools.pairwise(edges)]
        longest_wait = max(longest_wait, max(waits))
        gaps[tier].extend((b - a).total_seconds() for a, b in itertools.pairwise(times))
    # Two ticks are a minute: the most polls any minute saw.
    busiest = max(a + b for a, b in itertools.pairwise(per_tick))
    print(
        f"tick: p50 {harness.percentile(tick_ms, 0.5):.1f} ms, "
        f"p95 {harness.percentile(tick_ms, 0.95):.1f} ms, max {max(tick_ms):.1f} ms; "
        f"queries per tick: max {max(queries)}"
    )
    print(
        f"polling's allowance {lane.limit} requests a minute of {PER_MINUTE}; "
        f"most taken in a minute {busiest}; held back by the lane {held_back}; "
        f"never polled: {COMPANIES - len(polled)}"
    )
    per_tier = {}
    for tier, values in sorted(gaps.items()):
        median = statistics.median(values) / 60 if values else None
        worst = max(values) / 60 if values else None
        per_tier[tier] = {"median_min": median, "max_min": worst}
        print(f"  {tier:18} between polls: median {median} min, max {worst} min")
    print(f"longest any company waited: {longest_wait / 3600:.2f} h")
    backlog = clear_backlog(end, lane.limit)
    print(
        f"every company due at once: most polls in a minute {backlog['most_in_a_minute']} "
        f"(allowance {lane.limit}); all polled in {backlog['minutes_to_clear']} min"
    )
    harness.report(
        {
            "bench": "polling",
            "companies": COMPANIES,
            "tick_p50_ms": round(harness.percentile(tick_ms, 0.5), 2),
            "tick_p95_ms": round(harness.percentile(tick_ms, 0.95), 2),
            "tick_max_ms": round(max(tick_ms), 2),
            "queries_per_tick_max": max(queries),
            "due_query_uses_index": "company_poll_due" in plan_text,
            "allowance_per_minute": lane.limit,
            "budget_per_minute": PER_MINUTE,
            "most_polls_in_a_minute": busiest,
            "budget_share": round(busiest / PER_MINUTE, 3),
            "held_back": held_back,
            "never_polled": COMPANIES - len(polled),
            "longest_wait_h": round(longest_wait / 3600, 2),
            "between_polls": per_tier,
            "backlog_most_in_a_minute": backlog["most_in_a_minute"],
            "backlog_minutes_to_clear": backlog["minutes_to_clear"],
            "hours": HOURS,
            "tick_s": TICK_SECONDS,
            "commit": revision(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
