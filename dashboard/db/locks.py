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
