"""Transaction-scoped locks that keep two workers from doing the same job at once."""

from __future__ import annotations

from django.db import connection

from . import twins


def advisory_lock_postgresql(key: int, *, wait: bool = True) -> bool:
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def advisory_lock_portable(key: int, *, wait: bool = True) -> bool:
    # SQLite needs none: its IMMEDIATE transactions already run one at a time.
    return True


# Take the transaction's lock on `key`; False if another holds it and `wait` is False.
advisory_lock = twins(advisory_lock_postgresql, advisory_lock_portable)


def advisory_locks_postgresql(keys: list[int]) -> None:
    # A function scan returns an array's elements in order: the locks are
    # taken in the order given, as one after another would take them.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(key)) FROM unnest(%s::bigint[]) AS t(key)",
            [list(keys)],
        )


def advisory_locks_portable(keys: list[int]) -> None:
    return None


# Take the transaction's locks on `keys`, in their order, in one round trip
# (a batch of retention locks hundreds of companies).
advisory_locks = twins(advisory_locks_postgresql, advisory_locks_portable)
