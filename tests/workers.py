"""Real Celery workers for tests: started as subprocesses on Redis, on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
# A database of its own for tests whose tasks go to the default queue.
E2E_REDIS_URL = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/6")
# How long an unacknowledged task waits before Redis hands it out again: short,
# so a killed worker's task comes back soon, but not below 10 s, since the
# worker's task time limit is 90% of it and a slow refresh must not be cut off.
VISIBILITY_TIMEOUT = 10


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def database_url() -> str:
    """The test database, as a URL a subprocess can open."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def start_worker(
    queue: str,
    sandbox_url: str,
    api_key: str,
    log: Path,
    broker: str = REDIS_URL,
    pool: str = "solo",
    **extra_env: str,
) -> subprocess.Popen:
    """A worker on `queue`. `pool="prefork"` runs tasks in one child process,
    as production does, so a test can kill the child and keep the worker."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CACHE_KEY_PREFIX": queue,
        "CODAT_RATE_LIMIT_PREFIX": f"{queue}:rl",
        "CODAT_BASE_URL": sandbox_url,
        "CODAT_API_KEY": api_key,
        "CODAT_FETCH_THREADS": "2",
        "SYNCHEALTH_ALLOW_INSECURE_SECRET": "1",
        **extra_env,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "synchealth", "worker",
        "--pool", pool, "--concurrency", "1", "-Q", queue, "--without-gossip",
        "--without-mingle", "--without-heartbeat", "-l", "INFO",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def pool_children(worker: subprocess.Popen) -> list[int]:
    """The process IDs of a prefork worker's children (Linux)."""
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(pid) for pid in path.read_text().split()]


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def tasks_sent_to(broker: str, *, var_dir: Path | None = None) -> Iterator[None]:
    """Send every task this process enqueues to `broker` (where a real worker listens).

    A Redis database is emptied first; the file broker (`filesystem://`)
    writes its messages under `var_dir`, where a worker started with
    `SYNCHEALTH_VAR_DIR=var_dir` reads them.
    """
    import redis

    from synchealth.celery import app
    from synchealth.settings import filesystem_broker_options

    options: dict[str, object]
    if broker.startswith("redis"):
        redis.Redis.from_url(broker).flushdb()
        options = {"visibility_timeout": VISIBILITY_TIMEOUT}
    else:
        assert var_dir is not None, "the file broker needs its folder"
        options = filesystem_broker_options(var_dir / "broker")
        for key in ("data_folder_out", "processed_folder", "control_folder"):
            Path(str(options[key])).mkdir(parents=True, exist_ok=True)
    conf = app.conf
    saved = (conf.broker_url, conf.broker_write_url, conf.broker_transport_options)
    conf.broker_url = conf.broker_write_url = broker
    conf.broker_transport_options = options
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url, conf.broker_transport_options = saved
        app._pool = None
        app.amqp._producer_pool = None
