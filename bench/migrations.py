"""Upgrade: `manage.py migrate` on a copy of a populated estate, and the locks it holds.

Copies BENCH_MIGRATIONS_SOURCE (default `synchealth_bench_ingest`, the ingest
benchmark's database) into a database of its own
(BENCH_MIGRATIONS_DATABASE_URL, default `synchealth_bench_migrations`, dropped
first), takes the copy's dashboard back to the previous release
(BENCH_MIGRATIONS_FROM, default 0015: nothing to do for a source already
there), then runs `manage.py migrate` on it while this process watches from
other connections:

- every few milliseconds, which locks the migrating session holds on the big
  tables (syncs, push items, current state) in a mode that blocks their
  writers (SHARE and stronger) or their readers (ACCESS EXCLUSIVE), and for
  how long each was held;
- what the application would feel: a reader and a writer of the syncs and
  of the push items, each repeating one small statement (the writer's in a
  transaction it rolls back), timed; the slowest of each is the longest the
  migration kept that kind of request waiting.

Then `manage.py build_current_state` (the upgrade's second step) is timed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench import harness

SOURCE = os.environ.get(
    "BENCH_MIGRATIONS_SOURCE", "postgres://postgres@127.0.0.1:5432/synchealth_bench_ingest"
)
DB_URL = os.environ.get(
    "BENCH_MIGRATIONS_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/synchealth_bench_migrations",
)
FROM = os.environ.get("BENCH_MIGRATIONS_FROM", "0015_bulk_retry_state_choices")
# How often the watchers look and the probes repeat (seconds).
INTERVAL = float(os.environ.get("BENCH_MIGRATIONS_INTERVAL", "0.005"))
BIG_TABLES = ("dashboard_sync", "dashboard_pushitem", "dashboard_transactionstate")
APP_NAME = "synchealth-bench-migrate"
ENV = harness.environment(
    DB_URL, without_redis=True, CELERY_BROKER_URL="memory://", PGAPPNAME=APP_NAME
)


def copy_source() -> dict[str, int]:
    """The copy, made afresh; the source's row counts."""
    name, source = DB_URL.rsplit("/", 1)[1], SOURCE.rsplit("/", 1)[1]
    admin = DB_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("dashboard_sync", "dashboard_pushitem")
        }
        conn.execute("VACUUM ANALYZE")
    return counts


@dataclass
class Watch:
    """Runs `step` every INTERVAL on a connection of its own until stopped."""

    step: Callable[[psycopg.Connection], None]
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            # Unprepared: a prepared `SELECT *` fails once a migration adds a column.
            with psycopg.connect(DB_URL, autocommit=True, prepare_threshold=None) as conn:
                while not self.stop.is_set():
                    self.step(conn)
                    time.sleep(INTERVAL)
        except BaseException as exc:  # reported by main()
            self.error = exc


class LockWatch:
    """The longest time the migrating session held each blocking lock on a big table."""

    QUERY = (
        "SELECT c.relname, l.mode FROM pg_locks l "
        "JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name = %s AND l.granted AND c.relname = ANY(%s) "
        "AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', "
        "'AccessExclusiveLock')"
    )

    def __init__(self) -> None:
        self.since: dict[tuple[str, str], float] = {}
        self.longest: dict[tuple[str, str], float] = {}

    def __call__(self, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        held = set(conn.execute(self.QUERY, [APP_NAME, list(BIG_TABLES)]).fetchall())
        for key in held - self.since.keys():
            self.since[key] = now
        for key in self.since.keys() - held:
            started = self.since.pop(key)
            self.longest[key] = max(self.longest.get(key, 0.0), now - started)


class Probe:
    """One small statement, timed each time; `worst` is the slowest."""

    def __init__(self, statements: list[str]) -> None:
        self.statements = statements
        self.worst = 0.0
        self.runs = 0

    def __call__(self, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        for statement in self.statements:
            conn.execute(statement)
        self.worst = max(self.worst, time.monotonic() - started)
        self.runs += 1


def probes() -> dict[str, Probe]:
    with psycopg.connect(DB_URL) as conn:
        sync_id = conn.execute("SELECT max(id) FROM dashboard_sync").fetchone()[0]
        item_id = conn.execute("SELECT max(id) FROM dashboard_pushitem").fetchone()[0]
    return {
        "read_syncs": Probe([f"SELECT * FROM dashboard_sync WHERE id = {sync_id}"]),
        "write_syncs": Probe(
            [
                "BEGIN",
                f"UPDATE dashboard_sync SET last_refreshed = now() WHERE id = {sync_id}",
                "ROLLBACK",
            ]
        ),
        "read_items": Probe([f"SELECT * FROM dashboard_pushitem WHERE id = {item_id}"]),
        "write_items": Probe(
            [
                "BEGIN",
                f"UPDATE dashboard_pushitem SET message = message WHERE id = {item_id}",
                "ROLLBACK",
            ]
        ),
    }


def timed(command: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=harness.ROOT, env=ENV, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.monotonic() - started, done.stdout


def main() -> None:
    counts = copy_source()
    timed(["migrate", "dashboard", FROM, "--no-input"])
    with psycopg.connect(DB_URL) as conn:
        applied = conn.execute(
            "SELECT name FROM django_migrations WHERE app = 'dashboard' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
    print(f"copied {SOURCE.rsplit('/', 1)[1]}: {counts}, dashboard at {applied}", flush=True)

    locks = LockWatch()
    named = probes()
    watches = {"locks": Watch(locks)} | {name: Watch(probe) for name, probe in named.items()}
    threads = [threading.Thread(target=w.run, daemon=True) for w in watches.values()]
    for thread in threads:
        thread.start()
    migrate_s, output = timed(["migrate", "--no-input", "-v", "2"])
    for watch in watches.values():
        watch.stop.set()
    for thread in threads:
        thread.join()
    for name, watch in watches.items():
        if watch.error:
            raise SystemExit(f"the {name} watcher failed: {watch.error!r}")
    # `-v 2` prints each migration with its time: "Applying app.name... OK (0.123s)".
    steps = {
        f"{app}.{name}": float(seconds)
        for app, name, seconds in re.findall(
            r"Applying (\w+)\.(\w+)\.\.\. OK \(([\d.]+)s\)", output
        )
    }
    build_s, _ = timed(["build_current_state"])

    longest = {f"{table} {mode}": round(s * 1000) for (table, mode), s in locks.longest.items()}
    waits = {name: round(p.worst * 1000) for name, p in named.items()}
    for step, seconds in steps.items():
        print(f"  {step}: {seconds * 1000:.0f} ms")
    for lock, ms in sorted(longest.items(), key=lambda kv: -kv[1]):
        print(f"  held {lock}: {ms} ms")
    for name, ms in waits.items():
        print(f"  slowest {name}: {ms} ms ({named[name].runs} runs)")
    harness.report(
        {
            "bench": "migrations",
            "source": SOURCE.rsplit("/", 1)[1],
            "from": applied,
            **counts,
            "migrate_s": round(migrate_s, 1),
            "build_current_state_s": round(build_s, 1),
            "migrations_ms": {k: round(v * 1000) for k, v in steps.items()},
            "longest_lock_ms": longest,
            "slowest_probe_ms": waits,
        }
    )


if __name__ == "__main__":
    main()
