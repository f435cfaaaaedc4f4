"""Each problem's companies with the most outstanding items."""

from __future__ import annotations

from django.db import connection

from ..models import ProblemCompany
from . import twins


def top_companies_postgresql(problem_ids: list[int], limit: int) -> list[tuple[int, int]]:
    """(problem ID, company ID) of each problem's `limit` companies with the most
    outstanding items, most first.

    One index probe per problem (`problem_company_items`: problem, then items
    descending), stopping at `limit`: the cost follows the problems, not their
    shares (a problem can be shared by thousands of companies).
    """
    if not problem_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, pc.company_id FROM unnest(%s::bigint[]) WITH ORDINALITY AS p(id, n) "
            f"CROSS JOIN LATERAL (SELECT company_id, items, id FROM "
            f"{ProblemCompany._meta.db_table} WHERE problem_id = p.id "
            f"ORDER BY items DESC, id LIMIT %s) AS pc ORDER BY p.n, pc.items DESC, pc.id",
            [list(problem_ids), limit],
        )
        return [(int(problem), int(company)) for problem, company in cursor.fetchall()]


def top_companies_portable(problem_ids: list[int], limit: int) -> list[tuple[int, int]]:
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    if not problem_ids:
        return []
    order = {pk: n for n, pk in enumerate(problem_ids)}
    rows = (
        ProblemCompany.objects.filter(problem_id__in=problem_ids)
        .annotate(
            rank=Window(RowNumber(), partition_by=F("problem"), order_by=[F("items").desc(), "pk"])
        )
        .filter(rank__lte=limit)
        .order_by("rank")
        .values_list("problem_id", "company_id", "rank")
    )
    ranked = sorted(rows, key=lambda row: (order[row[0]], row[2]))
    return [(problem, company) for problem, company, _ in ranked]


# Each problem's companies with the most outstanding items (the alerts name them).
top_companies = twins(top_companies_postgresql, top_companies_portable)
