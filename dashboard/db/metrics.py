"""The metrics' shared store in the database: counts added up, readings replaced.

`INSERT … ON CONFLICT … DO UPDATE` is the same statement on PostgreSQL and
SQLite (3.24 and later), so there is no twin: one round of statements adds
every process's counts without reading them first, and two processes adding
to one series at once both count.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from ..models import MetricSample


def _upsert(update: str) -> str:
    table = MetricSample._meta.db_table
    return (
        f"INSERT INTO {table} (name, labels, value, updated_at) VALUES (%s, %s, %s, %s) "
        f"ON CONFLICT (name, labels) DO UPDATE SET {update}, updated_at = excluded.updated_at"
    )


def add(rows: list[tuple[str, str, float]], now: datetime) -> None:
    """Add each (name, labels, amount) to its series, making the series if it is new."""
    table = MetricSample._meta.db_table
    _write(_upsert(f"value = {table}.value + excluded.value"), rows, now)


def put(rows: list[tuple[str, str, float]], now: datetime) -> None:
    """Set each (name, labels, value) series to the value given."""
    _write(_upsert("value = excluded.value"), rows, now)


def _write(sql: str, rows: list[tuple[str, str, float]], now: datetime) -> None:
    stamp = connection.ops.adapt_datetimefield_value(now)
    # Always in the same order: two processes adding to the same series wait
    # for each other's row locks instead of deadlocking.
    params = [(name, labels, value, stamp) for name, labels, value in sorted(rows)]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
