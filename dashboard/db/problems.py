"""Counting the companies that a selection of problems affects."""

from __future__ import annotations

from typing import Any

from django.db import connection

from ..models import Company, ProblemCompany
from . import twins


def companies_sharing_postgresql(problem_ids: list[int], platforms: list[str] | None) -> int:
    """The companies (on these platforms) with a share in any of these problems.

    Each company is probed for one share in the selection, an index lookup
    that stops at the first, so the cost follows the companies, not the
    shares. `OFFSET 0` keeps the subquery as written: flattened, PostgreSQL
    hashes every share of the selection first (187,000 of them at 10,000
    companies: 100 ms against 20 ms).
    """
    if not problem_ids:
        return 0
    on_platform = "c.platform_name = ANY(%s) AND " if platforms is not None else ""
    params: list[Any] = [platforms] if platforms is not None else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Company._meta.db_table} AS c WHERE {on_platform}EXISTS ("
            f"SELECT 1 FROM {ProblemCompany._meta.db_table} AS pc "
            f"WHERE pc.company_id = c.id AND pc.problem_id = ANY(%s) OFFSET 0)",
            [*params, list(problem_ids)],
        )
        return int(cursor.fetchone()[0])


def companies_sharing_portable(problem_ids: list[int], platforms: list[str] | None) -> int:
    shares = ProblemCompany.objects.filter(problem_id__in=problem_ids)
    if platforms is not None:
        shares = shares.filter(company__platform_name__in=platforms)
    return shares.order_by().values("company_id").distinct().count()


# The companies that these problems affect (a company with two of them is one).
companies_sharing = twins(companies_sharing_postgresql, companies_sharing_portable)
