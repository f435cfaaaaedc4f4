"""Counting rows without counting a whole table."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

# Counts that the rollup cannot answer stop here: past it, "more than".
COUNT_CAP = 10_000


def bounded_count(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """(count, capped): counts up to COUNT_CAP rows, never the whole table."""
    n = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
    return min(n, COUNT_CAP), n > COUNT_CAP
