"""Sandbox estate: build time, disk size, and 5,000-item pages served from it.

Builds the estate in a database of its own (BENCH_DATABASE_URL, default a
PostgreSQL database `synchealth_bench` on 127.0.0.1), first a slice through
the ORM's bulk_create (the baseline) and the same slice through COPY, then
the whole estate through COPY. Then serves it with the sandbox over HTTP and
walks every 5,000-item page of a 50,000-item sync, reading the server's peak
memory. Scale with BENCH_COMPANIES, BENCH_SYNCS_PER_COMPANY, BENCH_ITEMS_PER_SYNC.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from bench import harness

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/synchealth_bench")
COMPANIES = int(os.environ.get("BENCH_COMPANIES", "10000"))
SYNCS_PER_COMPANY = int(os.environ.get("BENCH_SYNCS_PER_COMPANY", "100"))
ITEMS_PER_SYNC = float(os.environ.get("BENCH_ITEMS_PER_SYNC", "21.5"))
BIG_SYNC_ITEMS = 50_000
SLICE = 200  # companies built both ways for the side-by-side ratio
PORT = int(os.environ.get("BENCH_PORT", "8799"))
KEY = "bench-key"

ENV = harness.environment(
    DB_URL,
    **harness.sandbox(PORT, KEY),
    CELERY_BROKER_URL="memory://",
)


def build() -> dict:
    from django.db import connection

    from sandbox import estate

    estate.reset()
    orm = estate.build_estate(
        companies=SLICE,
        syncs_per_company=SYNCS_PER_COMPANY,
        items_per_sync=ITEMS_PER_SYNC,
        seed=1,
        use_copy=False,
    )
    estate.reset()
    copy = estate.build_estate(
        companies=SLICE,
        syncs_per_company=SYNCS_PER_COMPANY,
        items_per_sync=ITEMS_PER_SYNC,
        seed=1,
    )
    print(f"slice of {SLICE} companies ({copy.items:,} items):")
    print(f"  baseline ORM bulk_create  {orm.items / orm.seconds:>12,.0f} items/s")
    print(f"  COPY                      {copy.items / copy.seconds:>12,.0f} items/s")
    estate.reset()

    def progress(stats: estate.EstateStats) -> None:
        if stats.companies % 1000 == 0:
            print(
                f"  {stats.companies:,} companies, {stats.items:,} items, {stats.seconds:.0f}s",
                flush=True,
            )

    full = estate.build_estate(
        companies=COMPANIES,
        syncs_per_company=SYNCS_PER_COMPANY,
        items_per_sync=ITEMS_PER_SYNC,
        seed=1,
        progress=progress,
        big_sync_items=BIG_SYNC_ITEMS,
    )
    size_bytes = 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "WHERE c.relname LIKE 'sandbox_%%' AND c.relkind = 'r'"
            )
            size_bytes = int(cursor.fetchone()[0] or 0)
    print(
        f"full estate: {full.companies:,} companies, {full.syncs:,} syncs, {full.items:,} items "
        f"in {full.seconds:.0f}s ({full.items / full.seconds:,.0f} items/s), "
        f"{size_bytes / 2**30:.2f} GiB on disk"
    )
    return {
        "companies": full.companies,
        "syncs": full.syncs,
        "items": full.items,
        "build_s": round(full.seconds, 1),
        "items_per_s": round(full.items / full.seconds),
        "baseline_items_per_s": round(orm.items / orm.seconds),
        "ratio_vs_baseline": round((copy.items / copy.seconds) / (orm.items / orm.seconds), 2),
        "disk_gib": round(size_bytes / 2**30, 2),
    }


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve_pages() -> dict:
    from sandbox.models import Sync

    big = Sync.objects.select_related("company").order_by("-item_count").first()
    server = harness.runserver(PORT, ENV)
    try:
        base = f"http://127.0.0.1:{PORT}/sandbox"
        client = httpx.Client(base_url=base, auth=(KEY, ""), timeout=60)
        harness.wait_for(client, "/companies", attempts=100, pause=0.2, pageSize=1)
        rss_before = rss_peak_mb(server.pid)
        path = f"/companies/{big.company.company_id}/sync/expenses/syncs/{big.sync_id}/transactions"
        timings, seen, page = [], 0, 1
        while True:
            started = time.perf_counter()
            body = client.get(path, params={"page": page, "pageSize": 5000}).json()
            timings.append(time.perf_counter() - started)
            seen += len(body["results"])
            if "next" not in body["_links"]:
                break
            page += 1
        rss_after = rss_peak_mb(server.pid)
    finally:
        harness.stop(server)
    p50 = harness.percentile(timings, 0.5) * 1000
    print(
        f"served a {big.item_count:,}-item sync in {len(timings)} pages of 5,000: "
        f"p50 {p50:.0f} ms/page, max {max(timings) * 1000:.0f} ms; server peak RSS "
        f"{rss_before:.0f} MB before, {rss_after:.0f} MB after"
    )
    assert seen == big.item_count, (seen, big.item_count)
    return {
        "page_items": 5000,
        "pages": len(timings),
        "page_p50_ms": round(p50),
        "page_max_ms": round(max(timings) * 1000),
        "server_rss_mb": round(rss_after),
    }


def main() -> None:
    harness.ensure_database(ENV)
    harness.django_setup(ENV)
    harness.report({"bench": "estate", **build(), **serve_pages()})


if __name__ == "__main__":
    main()
