"""Retention: pruning 90 days of a 20,000,000-item estate, and the pages while it runs.

Builds once, in a PostgreSQL database of its own (BENCH_RETENTION_TEMPLATE_URL,
default `synchealth_bench_retention`), the UI benchmark's estate (`bench.ui`:
10,000 companies, 1,000,000 syncs with about 23 push items each, retry chains)
spread over BENCH_RETENTION_DAYS (120) days instead of 90, with its current
state built as an upgrade builds it, a retry request for every retry, and a
webhook event for every fourth sync. A loaded template is reused when its
counts match (BENCH_RETENTION_REBUILD=1 rebuilds it).

Each run prunes a copy (`CREATE DATABASE ... TEMPLATE`, so the template stays
whole) with the retention policy at a cut-off of DAYS - 90 days: the oldest
90 days go, as beat's hourly runs would take them, batch by batch. Meanwhile a
second process renders the dashboard, the history and a sync detail with
Django's test client, round after round, and a thread does beat's minutely
work (the rollup, the rankings). The baseline is the same pages for
BENCH_RETENTION_BASELINE_SECONDS before the pruning starts. It prints the
pruning's time and each batch's, the pages' p95 with and without it, checks
that the outstanding counts and the kept range's dashboard did not change, and
ends with one JSON line.

    python -m bench retention                    # build (once) and run
    python -m bench.retention build | measure    # one phase: the template, or a run on the copy
    python -m bench.retention sample OUT.json    # the page sampler (started by the run)
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from bench import harness

TEMPLATE_URL = os.environ.get(
    "BENCH_RETENTION_TEMPLATE_URL",
    "postgres://postgres@127.0.0.1:5432/synchealth_bench_retention",
)
RUN_URL = TEMPLATE_URL + "_run"
COMPANIES = int(os.environ.get("BENCH_RETENTION_COMPANIES", "10000"))
SYNCS = int(os.environ.get("BENCH_RETENTION_SYNCS", "1000000"))
ITEMS_PER_SYNC = int(os.environ.get("BENCH_RETENTION_ITEMS_PER_SYNC", "23"))
DAYS = int(os.environ.get("BENCH_RETENTION_DAYS", "120"))
PRUNED_DAYS = 90
BASELINE_SECONDS = float(os.environ.get("BENCH_RETENTION_BASELINE_SECONDS", "90"))
# Beat's minutely tasks (the rollup, the rankings).
BEAT_SECONDS = 60.0
ROOT = Path(__file__).resolve().parent.parent


def env(url: str) -> dict[str, str]:
    return harness.environment(
        url, without_redis=True, CELERY_BROKER_URL="memory://", ALLOWED_HOSTS="testserver"
    )


# --- the template: the UI benchmark's estate over a longer span, and what retention reads ---


def build_template() -> None:
    harness.ensure_database(env(TEMPLATE_URL))
    harness.django_setup(env(TEMPLATE_URL))
    from dashboard.models import Sync

    if os.environ.get("BENCH_RETENTION_REBUILD") != "1" and Sync.objects.count() >= SYNCS:
        print(f"reusing the template ({Sync.objects.count():,} syncs)", flush=True)
        return
    from bench import ui

    print(f"loading {COMPANIES:,} companies, {SYNCS:,} syncs over {DAYS} days ...", flush=True)
    ui.build(companies=COMPANIES, syncs=SYNCS, items_per_sync=ITEMS_PER_SYNC, days=DAYS)
    ui.build_state()
    add_requests_and_events()
    ui.roll_up()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def add_requests_and_events() -> None:
    """A finished retry request for every retry, and a webhook event for every fourth sync."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.db.models import F

    from dashboard.models import RetryRequest, Sync, WebhookEvent
    from dashboard.vocabulary import RetryState

    started = time.monotonic()
    user, _ = User.objects.get_or_create(username="bench-lead")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE dashboard_webhookevent")
    retries = Sync.objects.filter(retry_of__isnull=False).values_list(
        "retry_of_id", "retry_of__company_id", "sync_id", "sync_utc"
    )
    RetryRequest.objects.bulk_create(
        (
            RetryRequest(
                key=uuid.uuid4(), user=user, sync_id=original, company_id=company,
                created_at=at - timedelta(minutes=1), state=RetryState.COMPLETED,
                new_sync_id=sync_id, finished_at=at + timedelta(minutes=2),
            )
            for original, company, sync_id, at in retries.iterator(chunk_size=5000)
        ),
        batch_size=5000,
    )  # fmt: skip
    rng = random.Random(3)
    every_fourth = (
        Sync.objects.alias(turn=F("pk") % 4)
        .filter(turn=0)
        .values_list("company_id", "sync_id", "company__company_id", "sync_utc")
    )
    events = (
        WebhookEvent(
            delivery_id=f"msg_{uuid.UUID(int=rng.getrandbits(128)).hex}",
            event_type="expenses.sync.unsuccessful",
            body=json.dumps(
                {"eventType": "expenses.sync.unsuccessful", "payload": {
                    "syncId": str(sync_id), "referenceCompany": {
                        "id": str(company_id), "name": f"Company {company_pk} Ltd"}}}
            ),
            received_at=at + timedelta(minutes=2), company_id=company_id, sync_id=sync_id,
            processed_at=at + timedelta(minutes=3), attempts=1,
        )
        for company_pk, sync_id, company_id, at in every_fourth.iterator(chunk_size=5000)
    )  # fmt: skip
    WebhookEvent.objects.bulk_create(events, batch_size=5000)
    print(
        f"added {RetryRequest.objects.count():,} retry requests and "
        f"{WebhookEvent.objects.count():,} webhook events in {time.monotonic() - started:.0f}s",
        flush=True,
    )


def copy_template() -> None:
    import psycopg

    name, template = RUN_URL.rsplit("/", 1)[1], TEMPLATE_URL.rsplit("/", 1)[1]
    started = time.monotonic()
    with psycopg.connect(TEMPLATE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    print(f"copied the template in {time.monotonic() - started:.0f}s", flush=True)


# --- the pages, sampled by a process of their own ---


def pages() -> dict[str, str]:
    from dashboard.models import Sync

    recent = Sync.objects.filter(status_code=5130, retry_of=None).order_by("-sync_utc").first()
    return {
        "dashboard_7d": "/?range=7d",
        "dashboard_90d": "/?range=90d",
        "history_default": "/syncs/",
        "history_all_time": "/syncs/?range=all",
        "detail": f"/syncs/{recent.sync_id}/",
        "detail_items": f"/syncs/{recent.sync_id}/?tab=items",
    }


def sample(out: str) -> None:
    """Render the pages round after round until SIGTERM; write (page, ms, time) samples."""
    harness.django_setup(env(RUN_URL))
    from django.contrib.auth.models import User
    from django.test import Client

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    user, _ = User.objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    urls = pages()
    for url in urls.values():
        client.get(url)  # warm-up
    Path(out + ".ready").touch()
    samples = []
    while not stop.is_set():
        for name, url in urls.items():
            began = time.perf_counter()
            response = client.get(url)
            samples.append((name, (time.perf_counter() - began) * 1000, time.time()))
            assert response.status_code == 200, (url, response.status_code)
    Path(out).write_text(json.dumps(samples))


class Sampler:
    """The sampling process, started and stopped around a phase."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="bench-retention-")
        self.out = str(Path(self.dir.name) / "samples.json")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.retention", "sample", self.out],
            cwd=ROOT,
            env=env(RUN_URL),
        )
        while not Path(self.out + ".ready").exists():
            if self.proc.poll() is not None:
                raise SystemExit("the page sampler failed to start")
            time.sleep(0.2)

    def stop(self) -> list[tuple[str, float, float]]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        samples = json.loads(Path(self.out).read_text())
        self.dir.cleanup()
        return [tuple(row) for row in samples]


def p95s(samples: list) -> dict[str, dict[str, float]]:
    by_page: dict[str, list[float]] = {}
    for name, ms, _ in samples:
        by_page.setdefault(name, []).append(ms)
    return {
        name: {
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(harness.percentile(values, 0.95), 1),
            "samples": len(values),
        }
        for name, values in by_page.items()
    }


# --- beat's minutely work, in a thread ---


class Beat(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.rollup_s: list[float] = []

    def run(self) -> None:
        from django.db import connection

        from dashboard import rankings, rollup

        while not self.halt.wait(BEAT_SECONDS):
            began = time.monotonic()
            rollup.refresh()
            self.rollup_s.append(time.monotonic() - began)
            rankings.refresh()
        connection.close()


# --- the run ---


def measure() -> None:
    harness.django_setup(env(RUN_URL))
    from django.db import connection
    from django.utils import timezone

    from dashboard import retention, rollup, selectors
    from dashboard.filters import Range, SyncFilter
    from dashboard.models import Company, PushItem, RetryRequest, Sync, WebhookEvent
    from dashboard.retention import events, history

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(sync_utc), max(sync_utc) FROM dashboard_sync")
        oldest, newest = cursor.fetchone()
    now = timezone.now()
    cut_off = oldest + timedelta(days=PRUNED_DAYS)
    before = {
        "syncs": Sync.objects.count(),
        "items": PushItem.objects.count(),
        "requests": RetryRequest.objects.count(),
        "events": WebhookEvent.objects.count(),
    }
    print(
        f"estate {before['syncs']:,} syncs, {before['items']:,} items from {oldest:%Y-%m-%d} to "
        f"{newest:%Y-%m-%d}; pruning before {cut_off:%Y-%m-%d %H:%M} ({PRUNED_DAYS} days)",
        flush=True,
    )
    kept_range = SyncFilter(span=Range(cut_off + timedelta(days=1), now, "kept"), preset="custom")
    rollup.refresh()
    dashboard_before = selectors.summary(kept_range)
    outstanding_before = Company.objects.values_list("pk", "items_outstanding", "syncs_outstanding")
    outstanding_before = sorted(outstanding_before)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    beat = Beat()
    beat.start()
    sampler = Sampler()
    time.sleep(BASELINE_SECONDS)
    baseline = p95s(sampler.stop())

    sampler = Sampler()
    began = time.monotonic()
    batch_ms: list[float] = []
    counts: Counter[str] = Counter()
    # What `retention.run` does, step by step, with each batch timed.
    for step, batches in (
        ("webhook events", retention.one_by_one(events.prune, "webhook events", events.count)),
        ("history", lambda before, dry_run: history.batches(before, dry_run=dry_run)),
    ):
        step_began = time.monotonic()
        last = time.perf_counter()
        for batch in batches(cut_off, False):
            batch_ms.append((time.perf_counter() - last) * 1000)
            counts.update(batch)
            last = time.perf_counter()
            if len(batch_ms) % 200 == 0:
                print(
                    f"  {len(batch_ms):,} batches, {counts['syncs']:,} syncs, "
                    f"{counts['push items']:,} items, {time.monotonic() - began:.0f}s",
                    flush=True,
                )
        print(f"{step}: {time.monotonic() - step_began:.0f}s", flush=True)
    prune_s = time.monotonic() - began
    during = p95s(sampler.stop())
    beat.halt.set()
    beat.join()

    started = time.monotonic()
    hours = rollup.refresh()
    rollup_s = time.monotonic() - started
    dashboard_after = selectors.summary(kept_range)
    outstanding_after = sorted(
        Company.objects.values_list("pk", "items_outstanding", "syncs_outstanding")
    )
    fields = (
        "total", "by_category", "by_code", "items_pushed", "items_failed", "buckets",
        "outstanding", "outstanding_in_range", "failing_companies", "errors",
    )  # fmt: skip
    same_dashboard = all(
        getattr(dashboard_before, f) == getattr(dashboard_after, f) for f in fields
    )
    same_outstanding = outstanding_before == outstanding_after
    kept = {k[len("kept: ") :]: n for k, n in counts.items() if k.startswith("kept")}
    removed_items = counts["push items"]
    print(
        f"pruned {counts['syncs']:,} syncs, {removed_items:,} items, "
        f"{counts['retry requests']:,} retry requests, {counts['webhook events']:,} webhook "
        f"events in {prune_s:.0f}s ({removed_items / prune_s:,.0f} items/s), "
        f"{len(batch_ms):,} batches (p50 {statistics.median(batch_ms):.0f} ms, "
        f"p95 {harness.percentile(batch_ms, 0.95):.0f} ms, max {max(batch_ms):.0f} ms)",
        flush=True,
    )
    print(f"older syncs kept: {kept}")
    print(f"rollup: {hours:,} hours rebuilt after, in {rollup_s:.1f}s; during: {beat.rollup_s}")
    print(f"outstanding counts unchanged: {same_outstanding}; kept range's dashboard unchanged: "
          f"{same_dashboard}")  # fmt: skip
    print(f"{'page':20} {'baseline p50/p95':>18} {'during p50/p95':>16} {'ratio (p95)':>12}")
    results = {}
    for name, base in baseline.items():
        now_ = during[name]
        ratio = round(now_["p95_ms"] / base["p95_ms"], 2)
        results[name] = {
            "baseline_p50_ms": base["p50_ms"], "baseline_p95_ms": base["p95_ms"],
            "during_p50_ms": now_["p50_ms"], "during_p95_ms": now_["p95_ms"],
            "during_samples": now_["samples"], "ratio": ratio,
        }  # fmt: skip
        print(
            f"{name:20} {base['p50_ms']:8.1f} / {base['p95_ms']:6.1f} "
            f"{now_['p50_ms']:7.1f} / {now_['p95_ms']:6.1f} {ratio:11.2f}x"
        )
    harness.report(
        {
            "bench": "retention",
            "syncs": before["syncs"],
            "items": before["items"],
            "days": (newest - oldest).days,
            "days_pruned": PRUNED_DAYS,
            "syncs_removed": counts["syncs"],
            "items_removed": removed_items,
            "retry_requests_removed": counts["retry requests"],
            "webhook_events_removed": counts["webhook events"],
            "old_syncs_kept": sum(kept.values()),
            "prune_s": round(prune_s, 1),
            "items_per_s": round(removed_items / prune_s),
            "batches": len(batch_ms),
            "batch_p95_ms": round(harness.percentile(batch_ms, 0.95), 1),
            "batch_max_ms": round(max(batch_ms), 1),
            "p95_ms_max_during": max(r["during_p95_ms"] for r in results.values()),
            "ratio_vs_baseline": max(r["ratio"] for r in results.values()),
            "outstanding_unchanged": same_outstanding,
            "kept_dashboard_unchanged": same_dashboard,
            "load_average_1m_at_start": round(load[0], 2),
            "pages": results,
        }
    )


def main() -> None:
    if sys.argv[1:2] == ["sample"]:
        sample(sys.argv[2])
        return
    if sys.argv[1:2] == ["build"]:
        build_template()
        return
    if sys.argv[1:2] == ["measure"]:
        measure()
        return
    # Each phase in a process of its own: the template must have no connection
    # when it is copied, and the run reads the copy.
    subprocess.run(
        [sys.executable, "-m", "bench.retention", "build"],
        cwd=ROOT, env=env(TEMPLATE_URL), check=True,
    )  # fmt: skip
    copy_template()
    harness.ensure_database(env(RUN_URL))
    subprocess.run(
        [sys.executable, "-m", "bench.retention", "measure"], cwd=ROOT, env=env(RUN_URL), check=True
    )


if __name__ == "__main__":
    main()
