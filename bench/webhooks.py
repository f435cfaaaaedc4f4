"""Webhook intake under a burst: signed deliveries to gunicorn on PostgreSQL.

The receiver as a deployment serves it: gunicorn (BENCH_WEBHOOKS_SERVER_WORKERS
sync workers, default 4) on a PostgreSQL database of its own
(BENCH_WEBHOOKS_DATABASE_URL, default `synchealth_bench_webhooks`, rebuilt each
run) with the Redis broker (BENCH_WEBHOOKS_BROKER_URL, default db 14, which it
also uses for the cache and the metrics under a prefix of its own). No worker
runs: the intake only verifies, stores once and queues; the refresh each event
asks for is the worker's, and is left in the queue (emptied at the end).

BENCH_WEBHOOKS_SENDERS concurrent senders (default 16: processes of threads,
on this machine, so they share its cores with the server and PostgreSQL) post
BENCH_WEBHOOKS_DELIVERIES current-format events (default 6,000, each naming a
sync and about 20 transactions, as the sandbox sends them) in
BENCH_WEBHOOKS_BURSTS bursts (default 6) with a pause between them. A share
(BENCH_WEBHOOKS_DUPLICATE_SHARE, default 10%) is delivered twice at once by two
different senders, the second signed again as a sender's retry is; a few
(BENCH_WEBHOOKS_FORGED, default 20) carry a signature made with another
secret. Every delivery is signed before the clock starts (the sender's work,
not the receiver's); each is timed from its connection to its answer.

Afterwards the stored events are counted: each unique delivery must be stored
once, forged ones never, and the queue must hold one refresh per stored event.
Last line: one JSON object, {"bench": "webhooks", "per_s": ..., "p99_ms": ...,
"duplicates_stored": 0, ...}.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import os
import resource
import secrets
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench import harness

DATABASE_URL = os.environ.get(
    "BENCH_WEBHOOKS_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/synchealth_bench_webhooks",
)
BROKER = os.environ.get("BENCH_WEBHOOKS_BROKER_URL", "redis://127.0.0.1:6379/14")
PORT = int(os.environ.get("BENCH_WEBHOOKS_PORT", "8797"))
SERVER_WORKERS = int(os.environ.get("BENCH_WEBHOOKS_SERVER_WORKERS", "4"))
SERVER_CLASS = os.environ.get("BENCH_WEBHOOKS_SERVER_CLASS", "sync")
SERVER_THREADS = int(os.environ.get("BENCH_WEBHOOKS_SERVER_THREADS", "1"))
KEEP_ALIVE = os.environ.get("BENCH_WEBHOOKS_KEEP_ALIVE", "0") == "1"
SENDERS = int(os.environ.get("BENCH_WEBHOOKS_SENDERS", "16"))
SENDER_PROCESSES = int(os.environ.get("BENCH_WEBHOOKS_SENDER_PROCESSES", "2"))
DELIVERIES = int(os.environ.get("BENCH_WEBHOOKS_DELIVERIES", "6000"))
BURSTS = int(os.environ.get("BENCH_WEBHOOKS_BURSTS", "6"))
PAUSE_S = float(os.environ.get("BENCH_WEBHOOKS_PAUSE_S", "1.0"))
DUPLICATE_SHARE = float(os.environ.get("BENCH_WEBHOOKS_DUPLICATE_SHARE", "0.1"))
FORGED = int(os.environ.get("BENCH_WEBHOOKS_FORGED", "20"))
ITEMS = int(os.environ.get("BENCH_WEBHOOKS_ITEMS_PER_EVENT", "20"))
WARM_UP = int(os.environ.get("BENCH_WEBHOOKS_WARM_UP", "400"))
COMPANIES = 1000
PREFIX = "bench_webhooks"
PATH = "/webhooks/codat"

# One delivery as sent: (kind, headers, body); kind is "unique", "duplicate" or "forged".
Delivery = tuple[str, dict[str, str], bytes]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def event(company_id: str, rng_items: int) -> bytes:
    """A current-format event as the sandbox sends it: a sync and its transactions."""
    statuses = ("Completed",) * 8 + ("Failed", "PushError")
    transactions = [
        {
            "id": str(uuid.uuid4()),
            "status": statuses[n % len(statuses)],
            "errorMessage": None
            if statuses[n % len(statuses)] == "Completed"
            else "The account code 4000 is archived.",
        }
        for n in range(rng_items)
    ]
    body = {
        "id": str(uuid.uuid4()),
        "eventType": "expenses.sync.successful",
        "generatedDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "payload": {
            "referenceCompany": {
                "id": company_id,
                "name": "Bench company",
                "description": "",
                "links": {"portal": f"https://app.codat.io/companies/{company_id}/summary"},
                "tags": {},
            },
            "syncId": str(uuid.uuid4()),
            "transactions": transactions,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    from svix.webhooks import Webhook

    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "user-agent": "Svix-Webhooks/1.0 (bench)",
    }


def plan(
    secret: str, *, deliveries: int = DELIVERIES, bursts: int = BURSTS, duplicates: bool = True
) -> tuple[list[list[list[Delivery]]], dict[str, int]]:
    """Every burst's deliveries, split among the senders: [burst][sender] -> deliveries.

    A duplicate's two copies go to two different senders at the same place in
    their lists, so they arrive at about the same moment.
    """
    companies = [str(uuid.uuid4()) for _ in range(COMPANIES)]
    other = new_secret()
    per_burst = max(1, deliveries // bursts)
    planned: list[list[list[Delivery]]] = []
    counts = {"unique": 0, "duplicate": 0, "forged": 0}
    forged_left = FORGED if duplicates else 0
    share = DUPLICATE_SHARE if duplicates else 0
    step = max(1, round(1 / share)) if share > 0 else 0
    n = 0
    for _ in range(bursts):
        lanes: list[list[Delivery]] = [[] for _ in range(SENDERS)]
        sent = 0
        lane = 0
        while sent < per_burst:
            n += 1
            body = event(companies[n % COMPANIES], ITEMS)
            msg_id = f"msg_{uuid.uuid4().hex}"
            if forged_left and n % max(1, deliveries // max(1, FORGED)) == 0:
                lanes[lane].append(("forged", signed(other, msg_id, body), body))
                forged_left -= 1
                counts["forged"] += 1
                sent += 1
            elif step and n % step == 0 and SENDERS > 1:
                twin = (lane + SENDERS // 2) % SENDERS
                lanes[lane].append(("unique", signed(secret, msg_id, body), body))
                # The retry's copy: the same message, signed again.
                lanes[twin].append(("duplicate", signed(secret, msg_id, body), body))
                counts["unique"] += 1
                counts["duplicate"] += 1
                sent += 2
            else:
                lanes[lane].append(("unique", signed(secret, msg_id, body), body))
                counts["unique"] += 1
                sent += 1
            lane = (lane + 1) % SENDERS
        planned.append(lanes)
    return planned, counts


def _send_lane(lane: list[Delivery], results: list[tuple[str, int, str, float]]) -> None:
    conn: http.client.HTTPConnection | None = None
    for kind, headers, body in lane:
        started = time.perf_counter()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        try:
            conn.request("POST", PATH, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            status = response.status
        except OSError as exc:
            status, answer = 0, str(exc).encode()
            conn.close()
            conn = None
        if conn is not None and (not KEEP_ALIVE or response.will_close):
            conn.close()
            conn = None
        elapsed = time.perf_counter() - started
        try:
            outcome = json.loads(answer).get("status", "") if status == 200 else ""
        except ValueError:
            outcome = ""
        results.append((kind, status, outcome, elapsed))


def _sender_process(lanes: list[list[Delivery]], start_at: float, queue) -> None:
    """Send these lanes' deliveries, one thread per lane, from `start_at` on."""
    results: list[tuple[str, int, str, float]] = []
    threads = [threading.Thread(target=_send_lane, args=(lane, results)) for lane in lanes]
    while time.time() < start_at:
        time.sleep(0.001)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def run_burst(lanes: list[list[Delivery]]) -> tuple[list[tuple[str, int, str, float]], float]:
    """Send one burst from SENDER_PROCESSES processes at once; (results, seconds)."""
    groups = [lanes[i::SENDER_PROCESSES] for i in range(SENDER_PROCESSES)]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 0.3
    procs = [
        multiprocessing.Process(target=_sender_process, args=(group, start_at, queue))
        for group in groups
    ]
    for proc in procs:
        proc.start()
    results: list[tuple[str, int, str, float]] = []
    for _ in procs:
        results.extend(queue.get())
    done = time.time()
    for proc in procs:
        proc.join()
    return results, done - start_at


def server_ticks(proc) -> int:
    """CPU of gunicorn: its master and its live workers, in clock ticks."""
    pid = proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return harness.cpu_ticks(pid) + sum(harness.cpu_ticks(int(child)) for child in children)


def postgres_ticks(database: str) -> int:
    """CPU of the PostgreSQL backends connected to the benchmark's database, in clock ticks."""
    import psycopg

    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
            ).fetchall()
        ]
    total = 0
    for pid in pids:
        try:
            total += harness.cpu_ticks(pid)
        except OSError:
            continue
    return total


def main() -> int:
    secret = new_secret()
    env = harness.environment(
        DATABASE_URL,
        CELERY_BROKER_URL=BROKER,
        REDIS_URL=BROKER,
        CACHE_KEY_PREFIX=PREFIX,
        CODAT_RATE_LIMIT_PREFIX=PREFIX,
        CODAT_WEBHOOK_SECRET=secret,
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    harness.ensure_database(env, fresh=True)
    import redis

    broker = redis.Redis.from_url(BROKER)
    broker.delete("celery")
    server = harness.start(
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
            "1024",
        ],
        env,
    )
    try:
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=5) as client:
            harness.wait_for(client, "/healthz", attempts=100, pause=0.2)
        print(f"signing {DELIVERIES} deliveries ...", flush=True)
        bursts, counts = plan(secret)
        # A warm-up burst, not timed: each server process loads the project on its first request.
        warm, warm_counts = plan(secret, deliveries=WARM_UP, bursts=1, duplicates=False)
        warm_results, _ = run_burst(warm[0])
        warm_accepted = sum(1 for r in warm_results if r[2] == "accepted")
        counts["unique"] += warm_counts["unique"]
        results: list[tuple[str, int, str, float]] = []
        sending_s = 0.0
        database = DATABASE_URL.rsplit("/", 1)[1]
        before = (
            server_ticks(server),
            postgres_ticks(database),
            harness.machine_busy_ticks(),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        for number, lanes in enumerate(bursts, 1):
            burst, seconds = run_burst(lanes)
            results.extend(burst)
            sending_s += seconds
            print(
                f"burst {number}: {len(burst)} deliveries in {seconds:.2f} s "
                f"({len(burst) / seconds:.0f}/s)",
                flush=True,
            )
            if number < len(bursts):
                time.sleep(PAUSE_S)
        senders_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {
            "server_cpu_s": (server_ticks(server) - before[0]) / harness.TICK,
            "postgres_cpu_s": (postgres_ticks(database) - before[1]) / harness.TICK,
            "machine_cpu_s": (harness.machine_busy_ticks() - before[2]) / harness.TICK,
            "senders_cpu_s": senders_after.ru_utime
            + senders_after.ru_stime
            - before[3].ru_utime
            - before[3].ru_stime,
        }
    finally:
        harness.stop(server, timeout=10)

    harness.django_setup(env)
    from dashboard.models import WebhookEvent

    stored = WebhookEvent.objects.count()
    distinct = WebhookEvent.objects.values("delivery_id").distinct().count()
    queued = broker.llen("celery")
    broker.delete("celery")
    latencies = [r[3] for r in results]
    answers: dict[str, int] = {}
    for kind, status, outcome, _ in results:
        key = f"{kind}:{status}:{outcome}"
        answers[key] = answers.get(key, 0) + 1
    accepted = sum(1 for r in results if r[2] == "accepted")
    duplicate_answers = sum(1 for r in results if r[2] == "duplicate")
    refused = sum(1 for r in results if r[1] == 400)
    failed = sum(1 for r in results if r[1] not in (200, 400))
    figures = {
        "bench": "webhooks",
        "per_s": round(len(results) / sending_s, 1),
        "p99_ms": round(harness.percentile(latencies, 0.99) * 1000, 1),
        "duplicates_stored": stored - counts["unique"] if stored > counts["unique"] else 0,
        "p50_ms": round(harness.percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(harness.percentile(latencies, 0.95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "deliveries": len(results),
        "unique": counts["unique"] - warm_counts["unique"],
        "warm_up": warm_counts["unique"],
        "duplicates_sent": counts["duplicate"],
        "forged_sent": counts["forged"],
        "stored": stored,
        "stored_distinct_ids": distinct,
        "missing": counts["unique"] - distinct,
        "accepted_answers": accepted,
        "duplicate_answers": duplicate_answers,
        "refused_answers": refused,
        "other_answers": failed,
        "queued_refreshes": queued,
        "senders": SENDERS,
        "sender_processes": SENDER_PROCESSES,
        "server_workers": SERVER_WORKERS,
        "bursts": BURSTS,
        "sending_s": round(sending_s, 2),
        "items_per_event": ITEMS,
        "cores": os.cpu_count(),
        **{name: round(value, 1) for name, value in cpu.items()},
        "server_cpu_ms_per_delivery": round(cpu["server_cpu_s"] * 1000 / len(results), 2),
        # The machine's CPU in the bursts and pauses that none of the above used: other work.
        "other_cpu_s": round(
            cpu["machine_cpu_s"]
            - cpu["server_cpu_s"]
            - cpu["postgres_cpu_s"]
            - cpu["senders_cpu_s"],
            1,
        ),
        "elapsed_s": round(sending_s + PAUSE_S * (len(bursts) - 1), 1),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }
    print(f"answers by kind:status:outcome: {answers}")
    ok = (
        figures["missing"] == 0
        and stored == counts["unique"]
        and refused == counts["forged"]
        and failed == 0
        and accepted + warm_accepted == counts["unique"]
    )
    harness.report(figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
