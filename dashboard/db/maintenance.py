"""Keeping the planner's picture of a table current during a long bulk job."""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def analyze(model: type[Model]) -> None:
    """Refresh the statistics the query planner keeps of this model's table.

    Autovacuum may be off, or slower than a backfill that grows a table from
    nothing: without fresh statistics PostgreSQL plans for an empty table.
    (The same statement on both databases.)
    """
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")
