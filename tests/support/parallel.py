"""Redis databases of their own for each pytest-xdist worker (loaded with `-p`).

`make test` runs the suite in several processes. Each test starts by
clearing the cache (a FLUSHDB on Redis), and the worker tests read and
purge their broker's queues, so two processes on one Redis database would
wipe each other's keys and take each other's tasks. This module is imported
while pytest reads its options, before Django reads its settings, so the
URLs it sets are the ones the settings, the test helpers and every
subprocess a test starts see.

A run in one process keeps the configured URLs.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

# Four databases per worker: the settings' (cache, broker, rate limiter), the
# worker tests', the end-to-end worker test's and the deployment tests'.
KINDS = ("TEST_APP", "TEST_REDIS_URL", "TEST_E2E_REDIS_URL", "TEST_UNITS_REDIS_URL")
# Redis has 16 databases (0 to 15); 0 is left to a developer's own use.
MAX_WORKERS = 3


def worker_index() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def with_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


def _isolate() -> None:
    index = worker_index()
    if index is None:
        return
    base = os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    if index >= MAX_WORKERS:
        if base.startswith("redis"):
            raise RuntimeError(
                f"pytest-xdist worker {index + 1} of at most {MAX_WORKERS} on Redis: "
                "it has too few databases for more (use -n 3 or fewer)."
            )
        # Without Redis (the embedded defaults) only the worker tests use it,
        # and they are system tests, which need Redis: leave the URLs alone.
        return
    redis = base if base.startswith("redis") else "redis://127.0.0.1:6379/0"
    first = 1 + index * len(KINDS)
    for offset, kind in enumerate(KINDS):
        url = with_database(redis, first + offset)
        if kind == "TEST_APP":
            if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
                os.environ["CELERY_BROKER_URL"] = url
            if os.environ.get("REDIS_URL", "").startswith("redis"):
                os.environ["REDIS_URL"] = url
        else:
            os.environ[kind] = url


_isolate()
