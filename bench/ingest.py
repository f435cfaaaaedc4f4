"""Ingest: a full initial pull of a sandbox estate, then an incremental refresh.

Builds a sandbox estate (default 1,000 companies x 30 syncs, about 620,000
items) in a PostgreSQL database of its own (BENCH_INGEST_DATABASE_URL, default
`synchealth_bench_ingest` on 127.0.0.1), serves it with the sandbox over HTTP
(gunicorn, one sync worker per core; request log off) and mirrors it into the
dashboard tables three ways, emptying those tables between runs:

- the baseline, in this process: a naive client that reads sequentially with
  the API's default page size (100) and does one `update_or_create` per
  company, sync and item, on the first BASELINE companies only;
- ours: `manage.py refresh --all --workers N`, the code the Celery task runs,
  in a subprocess (the worker) whose peak RSS is read from the kernel;
- ours again with nothing changed (the incremental refresh).

The request budget (CODAT_RATE_LIMIT_PER_MINUTE) is lifted for the benchmark,
which measures the code, not Codat's budget (see docs/benchmarks.md). Scale
with BENCH_INGEST_COMPANIES, BENCH_INGEST_SYNCS_PER_COMPANY and
BENCH_INGEST_ITEMS_PER_SYNC; pick the refresh concurrency with
BENCH_INGEST_WORKERS (and CODAT_FETCH_THREADS per company), the server's
with BENCH_INGEST_SERVER_WORKERS, _SERVER_CLASS and _SERVER_THREADS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import harness
from bench.harness import ROOT, TICK, cpu_ticks, machine_busy_ticks

DB_URL = os.environ.get(
    "BENCH_INGEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/synchealth_bench_ingest"
)
COMPANIES = int(os.environ.get("BENCH_INGEST_COMPANIES", "1000"))
SYNCS_PER_COMPANY = int(os.environ.get("BENCH_INGEST_SYNCS_PER_COMPANY", "30"))
# 21.5 a sync on average gives about 20.7 (syncs that pushed nothing have none),
# so 30,000 syncs carry over 600,000 items.
ITEMS_PER_SYNC = float(os.environ.get("BENCH_INGEST_ITEMS_PER_SYNC", "21.5"))
DAYS = 60
SEED = 7
BASELINE_COMPANIES = int(os.environ.get("BENCH_INGEST_BASELINE_COMPANIES", "50"))
# 4 and 8 were tried on the 2-core machine; see docs/benchmarks.md.
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", "4"))
PORT = int(os.environ.get("BENCH_INGEST_PORT", "8798"))
KEY = "bench-ingest-key"
LIFTED_BUDGET = 1_000_000
MINIMUM = {"companies": 1000, "syncs": 30_000, "items": 600_000}

ENV = harness.environment(
    DB_URL,
    without_redis=True,
    **harness.sandbox(PORT, KEY),
    CODAT_RATE_LIMIT_PER_MINUTE=str(LIFTED_BUDGET),
    CELERY_BROKER_URL="memory://",
)

DASHBOARD_TABLES = (
    "dashboard_pushitem, dashboard_sync, dashboard_configsnapshot, "
    "dashboard_refreshstate, dashboard_company"
)


# --- machine and process accounting ---


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0].split()[0]
    return f"{os.cpu_count()} cores ({model}), PostgreSQL {pg}, Python {sys.version.split()[0]}"


def revision() -> str:
    """The commit measured, with '+' when the work tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "dashboard", "sandbox")
    return head + ("+" if dirty.strip() else "") if head else "unknown"


def postgres_ticks() -> int:
    """CPU of the local PostgreSQL server, in clock ticks, exited backends included.

    The live processes' own CPU plus what the postmaster collected from the
    backends that exited: the difference of two readings is exact.
    """
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 :].rsplit(")", 1)
        if name != "postgres":
            continue
        fields = rest.split()
        total += int(fields[11]) + int(fields[12])
        parent = Path(f"/proc/{fields[1]}/comm")
        if not parent.exists() or parent.read_text().strip() != "postgres":
            total += int(fields[13]) + int(fields[14])  # the postmaster's reaped children
    return total


def other_load(seconds: float = 3.0) -> float:
    """Cores kept busy by the rest of the machine over a few seconds."""
    before = machine_busy_ticks()
    time.sleep(seconds)
    return (machine_busy_ticks() - before) / TICK / seconds


def wait_quiet() -> None:
    """Wait for the estate benchmark, then for the machine to go (nearly) idle.

    Two cores leave no room to share: a test run next to the benchmark takes
    a core from it. Waits at most BENCH_INGEST_QUIET_WAIT seconds for the
    second condition (default 900), then goes on and says so.
    """
    if os.environ.get("BENCH_INGEST_WAIT") == "0":
        return
    started = time.monotonic()
    announced = False
    while True:
        busy = subprocess.run(
            ["pgrep", "-f", "bench estate|bench.estate"], capture_output=True, text=True
        ).stdout.split()
        if not [p for p in busy if int(p) != os.getpid()]:
            break
        if not announced:
            print("waiting for the estate benchmark to finish before timing ...", flush=True)
            announced = True
        time.sleep(5)
    limit = float(os.environ.get("BENCH_INGEST_QUIET_WAIT", "900"))
    load = other_load()
    while load > 0.25 and time.monotonic() - started < limit:
        if not announced:
            print(f"waiting for the machine to go quiet (other load {load:.1f} cores) ...")
            announced = True
        load = other_load(10)
    waited = time.monotonic() - started
    note = f" after waiting {waited:.0f}s" if announced else ""
    print(f"other load on the machine before timing: {load:.2f} cores{note}", flush=True)


# --- the estate and the server ---


def build() -> dict[str, int]:
    from sandbox import estate
    from sandbox.models import SandboxSettings

    estate.reset()
    stats = estate.build_estate(
        companies=COMPANIES,
        syncs_per_company=SYNCS_PER_COMPANY,
        items_per_sync=ITEMS_PER_SYNC,
        days=DAYS,
        seed=SEED,
    )
    config = SandboxSettings.load()
    config.request_log_enabled = False
    config.latency_ms = config.slow_body_ms = 0
    config.error_rate = config.rate_limit_storm_rate = config.truncated_body_rate = 0.0
    config.save()
    print(
        f"sandbox estate: {stats.companies:,} companies, {stats.syncs:,} syncs, "
        f"{stats.items:,} items, built in {stats.seconds:.0f}s (COPY); request log off"
    )
    scale = {"companies": stats.companies, "syncs": stats.syncs, "items": stats.items}
    for name, least in MINIMUM.items():
        if scale[name] < least:
            print(f"  note: {name} {scale[name]:,} is below the issue's {least:,}")
    return scale


# The sandbox's web server: gunicorn, one process per core, as a deployment
# serves Django. runserver is one process, and each answer on a kept-alive
# connection waited for the client's delayed ACK (headers and body go out in
# two writes, without TCP_NODELAY): see docs/benchmarks.md.
SERVER_WORKERS = int(os.environ.get("BENCH_INGEST_SERVER_WORKERS", str(os.cpu_count() or 2)))
SERVER_CLASS = os.environ.get("BENCH_INGEST_SERVER_CLASS", "sync")
SERVER_THREADS = int(os.environ.get("BENCH_INGEST_SERVER_THREADS", "1"))


class Server:
    """The sandbox, served by gunicorn in a subprocess."""

    def __init__(self) -> None:
        self.proc = harness.start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "synchealth.wsgi:application",
                "--bind",
                f"127.0.0.1:{PORT}",
                "--workers",
                str(SERVER_WORKERS),
                "--worker-class",
                SERVER_CLASS,
                "--threads",
                str(SERVER_THREADS),
                "--backlog",
                "256",
            ],
            ENV,
        )
        try:
            with httpx.Client(base_url=ENV["CODAT_BASE_URL"], auth=(KEY, ""), timeout=10) as client:
                harness.wait_for(
                    client, "/companies", attempts=150, pause=0.2, pageSize=1
                ).raise_for_status()
        except SystemExit:
            self.stop()
            raise

    def cpu(self) -> float:
        """CPU of the server: its master, live workers and the workers it reaped."""
        pid = self.proc.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(v) for v in fields[11:15])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return (ticks + sum(cpu_ticks(int(child)) for child in children)) / TICK

    def stop(self) -> None:
        harness.stop(self.proc)


def empty_dashboard() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {DASHBOARD_TABLES} RESTART IDENTITY CASCADE")


# --- the naive baseline ---


def baseline(server: Server) -> dict[str, float]:
    """Sequential requests at the default page size; one update_or_create per row."""
    from django.db import close_old_connections

    from dashboard.fingerprint import fingerprint
    from dashboard.ingest import parse_time
    from dashboard.models import Company, PushItem, Sync
    from dashboard.vocabulary import ItemStatus, code_category

    empty_dashboard()
    requests = items = syncs = companies = 0
    started = time.perf_counter()
    cpu_before, server_before = time.process_time(), server.cpu()
    postgres_before = postgres_ticks()
    with httpx.Client(base_url=ENV["CODAT_BASE_URL"], auth=(KEY, ""), timeout=60) as client:

        def pages(path: str) -> Iterator[list[dict]]:
            nonlocal requests
            url: str | None = path
            while url:
                requests += 1
                body = client.get(url).raise_for_status().json()
                yield body["results"]
                url = body["_links"].get("next", {}).get("href")

        for page in pages("/companies"):
            for record in page:
                if companies == BASELINE_COMPANIES:
                    break
                link = (record.get("dataConnections") or [{}])[0]
                company, _ = Company.objects.update_or_create(
                    company_id=record["id"],
                    defaults={
                        "name": record["name"],
                        "description": record.get("description") or "",
                        "platform_key": link.get("integrationKey", ""),
                        "platform_name": link.get("platformName", ""),
                        "connection_status": link.get("status", ""),
                        "created": parse_time(record.get("created")),
                    },
                )
                companies += 1
                base = f"/companies/{record['id']}/sync/expenses/syncs"
                requests += 1
                for sync_record in client.get(f"{base}/list/status").raise_for_status().json():
                    code = sync_record["syncStatusCode"]
                    message = sync_record.get("errorMessage") or ""
                    sync, _ = Sync.objects.update_or_create(
                        sync_id=sync_record["syncId"],
                        defaults={
                            "company": company,
                            "status_code": code,
                            "status_text": sync_record.get("syncStatus") or "",
                            "error_message": message,
                            "exception_message": sync_record.get("syncExceptionMessage") or "",
                            "sync_utc": parse_time(sync_record["syncUtc"]),
                            "data_pushed": bool(sync_record.get("dataPushed")),
                            "category": code_category(code),
                            "error_fingerprint": fingerprint(message),
                        },
                    )
                    syncs += 1
                    for item_page in pages(f"{base}/{sync_record['syncId']}/transactions"):
                        for item in item_page:
                            PushItem.objects.update_or_create(
                                sync=sync,
                                transaction_id=item["transactionId"],
                                integration_type=item.get("integrationType") or "expenses",
                                defaults={
                                    "status": ItemStatus.parse(item.get("status")),
                                    "message": item.get("message"),
                                    "fingerprint": fingerprint(item.get("message")),
                                },
                            )
                            items += 1
            if companies == BASELINE_COMPANIES:
                break
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server_cpu = server.cpu() - server_before
    postgres_cpu = (postgres_ticks() - postgres_before) / TICK
    close_old_connections()
    print(
        f"baseline (naive: sequential, default pageSize 100, one update_or_create a row), "
        f"first {companies} companies: {syncs:,} syncs, {items:,} items, {requests:,} requests "
        f"in {seconds:.1f}s = {items / seconds:,.0f} items/s "
        f"(CPU: client {cpu:.0f}s, sandbox {server_cpu:.0f}s, PostgreSQL {postgres_cpu:.0f}s)"
    )
    return {
        "baseline_companies": companies,
        "baseline_items": items,
        "baseline_requests": requests,
        "baseline_s": round(seconds, 1),
        "baseline_items_per_s": round(items / seconds),
    }


# --- ours ---

SUMMARY = re.compile(
    r"companies (?P<companies>\d+), syncs (?P<syncs>\d+) .*items (?P<items>\d+) .*"
    r"requests (?P<requests>\d+), (?:hours rolled up \d+, )?time (?P<time>[\d.]+)s"
)


@dataclass
class Run:
    companies: int
    syncs: int
    items: int
    requests: int
    command_s: float  # as the command reports it (after Django starts)
    wall_s: float  # the subprocess from start to exit
    rss_mb: float
    cpu_s: float
    server_cpu_s: float
    postgres_cpu_s: float
    machine_cpu_s: float
    summary: str


def refresh(server: Server, workers: int) -> Run:
    """`manage.py refresh --all` in a subprocess; its peak RSS from wait4()."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        server_before, machine_before = server.cpu(), machine_busy_ticks()
        postgres_before = postgres_ticks()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "refresh", "--all", "--workers", str(workers)],
            cwd=ROOT,
            env={**ENV, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")},
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        server_cpu = server.cpu() - server_before
        machine_cpu = (machine_busy_ticks() - machine_before) / TICK
        postgres_cpu = (postgres_ticks() - postgres_before) / TICK
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    match = SUMMARY.search(stdout)
    if proc.returncode or not match:
        print(stdout[-3000:], stderr[-3000:], sep="\n")
        raise SystemExit(f"refresh failed (exit {proc.returncode})")
    return Run(
        companies=int(match["companies"]),
        syncs=int(match["syncs"]),
        items=int(match["items"]),
        requests=int(match["requests"]),
        command_s=float(match["time"]),
        wall_s=wall,
        rss_mb=usage.ru_maxrss / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        server_cpu_s=server_cpu,
        postgres_cpu_s=postgres_cpu,
        machine_cpu_s=machine_cpu,
        summary=match.group(0),
    )


def verify(scale: dict[str, int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in ("dashboard_pushitem", "sandbox_item", "dashboard_sync", "sandbox_sync"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    if (
        counts["dashboard_pushitem"] != counts["sandbox_item"]
        or counts["dashboard_sync"] != counts["sandbox_sync"]
        or counts["sandbox_item"] != scale["items"]
    ):
        raise SystemExit(f"the mirror does not match the sandbox after the full pull: {counts}")
    print(
        f"  verified: dashboard_pushitem {counts['dashboard_pushitem']:,} == sandbox_item, "
        f"dashboard_sync {counts['dashboard_sync']:,} == sandbox_sync"
    )


def describe(label: str, run: Run) -> None:
    machine_cpu = max(run.machine_cpu_s, 1e-9)
    other = max(0.0, run.machine_cpu_s - run.cpu_s - run.server_cpu_s - run.postgres_cpu_s)
    print(
        f"{label}: {run.items:,} items, {run.syncs:,} syncs, {run.requests:,} requests "
        f"in {run.wall_s:.1f}s wall ({run.command_s:.1f}s in the command) = "
        f"{run.items / run.wall_s:,.0f} items/s, {run.requests / run.wall_s:,.0f} requests/s; "
        f"worker peak RSS {run.rss_mb:.0f} MB\n"
        f"  CPU {run.machine_cpu_s:.0f}s of the {os.cpu_count()} cores' "
        f"{os.cpu_count() * run.wall_s:.0f}s: "
        f"worker {run.cpu_s:.0f}s ({run.cpu_s / machine_cpu:.0%}), "
        f"sandbox server {run.server_cpu_s:.0f}s ({run.server_cpu_s / machine_cpu:.0%}), "
        f"PostgreSQL {run.postgres_cpu_s:.0f}s ({run.postgres_cpu_s / machine_cpu:.0%}), "
        f"other processes {other:.0f}s ({other / machine_cpu:.0%})"
    )


def main() -> None:
    harness.ensure_database(ENV)
    harness.django_setup(ENV)
    scale = build()
    wait_quiet()
    print(f"machine: {machine()}; code at {revision()}")
    print(
        f"request budget lifted for the benchmark: CODAT_RATE_LIMIT_PER_MINUTE={LIFTED_BUDGET:,} "
        "(production default 900)"
    )
    server = Server()
    try:
        base = baseline(server)
        empty_dashboard()
        full = refresh(server, WORKERS)
        describe(f"full pull (refresh --all --workers {WORKERS})", full)
        verify(scale)
        incremental = refresh(server, WORKERS)
        describe("incremental refresh (nothing changed)", incremental)
    finally:
        server.stop()
    items_per_s = full.items / full.wall_s
    ratio = items_per_s / base["baseline_items_per_s"]
    print(
        f"ratio vs baseline: {ratio:.1f}x (target 10x); {items_per_s:,.0f} items/s "
        f"(aim 20,000); worker RSS {full.rss_mb:.0f} MB (target < 300 MB)"
    )
    figures = {
        "bench": "ingest",
        "companies": full.companies,
        "syncs": full.syncs,
        "items": full.items,
        "items_per_s": round(items_per_s),
        "baseline_items_per_s": base["baseline_items_per_s"],
        "ratio_vs_baseline": round(ratio, 1),
        "requests": full.requests,
        "incremental_requests": incremental.requests,
        "rss_mb": round(full.rss_mb),
        "workers": WORKERS,
        "full_s": round(full.wall_s, 1),
        "incremental_s": round(incremental.wall_s, 1),
        "incremental_rss_mb": round(incremental.rss_mb),
        "worker_cpu_s": round(full.cpu_s, 1),
        "server_cpu_s": round(full.server_cpu_s, 1),
        "postgres_cpu_s": round(full.postgres_cpu_s, 1),
        "machine_cpu_s": round(full.machine_cpu_s, 1),
        **{k: v for k, v in base.items() if k != "baseline_items_per_s"},
        "rate_limit_per_minute": LIFTED_BUDGET,
        "commit": revision(),
    }
    harness.report(figures)


if __name__ == "__main__":
    main()
