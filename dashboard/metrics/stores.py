"""Where every process's counts add up: Redis when there is one, else the database.

Both hold, per series, the total of what every process (web, workers, past
and present) has added; `/metrics` reads the totals. Totals survive restarts
(Prometheus takes a counter that went down, should Redis be emptied, as a
reset). Beside them, `report` keeps each process's latest reading of a gauge
only that process can see, with the time of the reading.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .series import Key, encode_labels

REPORT = "report:"
# A process that has not reported for this long is gone; its rows are deleted.
REPORT_KEPT = timedelta(hours=1)


class Store(Protocol):
    def add(self, deltas: dict[Key, float]) -> None: ...

    def report(self, process: str, values: dict[str, float]) -> None: ...

    def totals(self, names: Iterable[str]) -> dict[str, dict[str, float]]:
        """{series name: {labels: total}} for the names asked."""
        ...

    def reports(self, names: Iterable[str], since: float) -> dict[str, list[float]]:
        """{name: [each process's reading made at or after `since` (Unix time)]}."""
        ...


class DatabaseStore:
    """The `MetricSample` table: one row per series, added to in one statement per series."""

    def add(self, deltas: dict[Key, float]) -> None:
        from ..db import metrics as sql

        rows = [(name, labels, amount) for (name, labels), amount in deltas.items()]
        # A savepoint when called inside a transaction (an eager task): a failure
        # here leaves the caller's transaction usable.
        with transaction.atomic():
            sql.add(rows, timezone.now())

    def report(self, process: str, values: dict[str, float]) -> None:
        from ..db import metrics as sql
        from ..models import MetricSample

        now = timezone.now()
        labels = encode_labels({"process": process})
        with transaction.atomic():
            sql.put([(REPORT + name, labels, value) for name, value in values.items()], now)
            MetricSample.objects.filter(
                name__startswith=REPORT, updated_at__lt=now - REPORT_KEPT
            ).delete()

    def totals(self, names: Iterable[str]) -> dict[str, dict[str, float]]:
        from ..models import MetricSample

        found: dict[str, dict[str, float]] = {}
        for name, labels, value in MetricSample.objects.filter(name__in=list(names)).values_list(
            "name", "labels", "value"
        ):
            found.setdefault(name, {})[labels] = value
        return found

    def reports(self, names: Iterable[str], since: float) -> dict[str, list[float]]:
        from ..models import MetricSample

        rows = MetricSample.objects.filter(
            name__in=[REPORT + name for name in names],
            updated_at__gte=datetime.fromtimestamp(since, tz=UTC),
        ).values_list("name", "value")
        found: dict[str, list[float]] = {}
        for name, value in rows:
            found.setdefault(name.removeprefix(REPORT), []).append(value)
        return found


class RedisStore:
    """A hash per series name (field: the labels); every write is one MULTI/EXEC.

    All or nothing: a write that fails is kept by the recorder and sent again,
    so it must not have counted in part.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def add(self, deltas: dict[Key, float]) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            for (name, labels), amount in sorted(deltas.items()):
                pipe.hincrbyfloat(self._key(name), labels, amount)
            pipe.execute()

    def report(self, process: str, values: dict[str, float]) -> None:
        now = time.time()
        with self.redis.pipeline(transaction=True) as pipe:
            for name, value in values.items():
                key = self._key(REPORT + name)
                pipe.hset(key, process, json.dumps([value, now]))
                pipe.expire(key, int(REPORT_KEPT.total_seconds()))
            pipe.execute()

    def _hashes(self, names: list[str]) -> dict[str, dict[bytes, bytes]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._key(name))
            hashes = cast(list[dict[bytes, bytes]], pipe.execute())
        return {name: fields for name, fields in zip(names, hashes, strict=True) if fields}

    def totals(self, names: Iterable[str]) -> dict[str, dict[str, float]]:
        return {
            name: {field.decode(): float(value) for field, value in fields.items()}
            for name, fields in self._hashes(list(names)).items()
        }

    def reports(self, names: Iterable[str], since: float) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for name, fields in self._hashes([REPORT + n for n in names]).items():
            for raw in fields.values():
                value, at = json.loads(raw)
                if at >= since:
                    found.setdefault(name.removeprefix(REPORT), []).append(float(value))
        return found


@cache
def _redis(url: str) -> Any:
    import redis

    # Short timeouts: a scrape or a flush must not hang on a Redis that went away.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def get_store() -> Store:
    """The store of this deployment: Redis when it has one (`REDIS_URL`), else the database."""
    if settings.REDIS_URL:
        return RedisStore(_redis(settings.REDIS_URL), f"{settings.CACHE_KEY_PREFIX}:metrics")
    return DatabaseStore()
