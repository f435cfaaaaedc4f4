"""What every benchmark does the same way.

A database of its own (created, or dropped and created, then migrated), the
environment its subprocesses run with, Django set up in this process, a
server in a subprocess and the wait for it to answer, percentiles, and the
final JSON line that docs/benchmarks.md records.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def environment(database_url: str, *, without_redis: bool = False, **settings: str) -> dict:
    """This process's environment with the benchmark's database and `settings`.

    `without_redis`: the run keeps its cache and limiter in its own processes,
    whatever REDIS_URL the shell has.
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SYNCHEALTH_ALLOW_INSECURE_SECRET": "1",
        **settings,
    }
    if without_redis:
        env.pop("REDIS_URL", None)
    return env


def sandbox(port: int, key: str) -> dict[str, str]:
    """Settings of a sandbox served on `port`, and of a dashboard that reads it.

    Neither side's request budget is what a benchmark measures: the sandbox's
    is lifted here, the dashboard's by the benchmarks that need it.
    """
    return {
        "SANDBOX_ENABLED": "1",
        "SANDBOX_API_KEY": key,
        "SANDBOX_RATE_LIMIT_PER_MINUTE": "100000000",
        "SANDBOX_RATE_LIMIT_PER_DAY": "100000000",
        "CODAT_BASE_URL": f"http://127.0.0.1:{port}/sandbox",
        "CODAT_API_KEY": key,
    }


def ensure_database(env: dict[str, str], *, fresh: bool = False) -> None:
    """Create the database of `env` if it is missing (`fresh`: drop it first) and migrate it.

    Only a PostgreSQL database is created here; SQLite makes its own file.
    """
    url = env["DATABASE_URL"]
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if fresh:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def django_setup(env: dict[str, str]) -> None:
    """Set Django up in this process, on the benchmark's environment."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)


def start(command: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """Run `command` from the project root; its output goes to `log`, or nowhere."""
    output = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def runserver(port: int, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    return start(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env, log
    )


def stop(proc: subprocess.Popen, timeout: float | None = None) -> None:
    """Terminate `proc` and wait; past `timeout` seconds, kill it."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_for(
    client: httpx.Client, path: str, *, attempts: int, pause: float, **params: object
) -> httpx.Response:
    """The first answer to GET `path`, trying `attempts` times `pause` seconds apart."""
    for _ in range(attempts):
        try:
            return client.get(path, params=params)
        except httpx.TransportError:
            time.sleep(pause)
    raise SystemExit("the sandbox server did not start")


def cpu_ticks(pid: int) -> int:
    """User + system CPU of a live process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """Non-idle CPU of the whole machine, in clock ticks."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


TICK = os.sysconf("SC_CLK_TCK")


def percentile(samples: Sequence[float], share: float) -> float:
    """The sample at rank `share` of the sorted samples (the nearest rank, halves up)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.floor(share * (len(ordered) - 1) + 0.5))]


def report(figures: dict) -> None:
    """The benchmark's last line: its figures as one JSON object."""
    print(json.dumps(figures))
