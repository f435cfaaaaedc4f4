"""The hand-written SQL: each fast path on PostgreSQL beside its portable twin.

Every operation here has one public function that callers use, whatever the
database; `twins` picks PostgreSQL's fast path where it runs and the portable
twin elsewhere. Both twins stay importable (`upsert_postgresql`,
`upsert_portable`, ...) so tests/db/test_parity.py proves they agree.

- `items`: `upsert` push items, `set_counters` on their syncs, `set_types`;
- `rollup`: `counts` and `count` of the syncs a rollup `Plan` covers;
- `locks`: `advisory_lock`, `advisory_locks`; `capped`: `bounded_count` (up to `COUNT_CAP`);
- `maintenance`: `analyze` a table (the same on both databases);
- `state`: the `pushes` of transactions, for the current state's upkeep;
- `retention`: the `earlier_unfinished` pushes of a batch's transactions;
- `problems`: each problem's `top_companies`, by outstanding items;
- `webhooks`: `store` a verified webhook event once, unless its company was purged.

`online` is the migrations' side: operations that build indexes concurrently
on PostgreSQL and plainly elsewhere, so the big tables stay in use during an
upgrade.

Only our table and column names are interpolated into SQL; every value is a
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def twins(postgresql: Callable[P, R], portable: Callable[P, R]) -> Callable[P, R]:
    """One operation: PostgreSQL's fast path where it runs, else its portable twin."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # The one place that asks which database this is.
        chosen = postgresql if connection.vendor == "postgresql" else portable
        return chosen(*args, **kwargs)

    return run


def chunked(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
