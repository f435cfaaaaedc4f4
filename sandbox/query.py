"""The `query` and `orderBy` parameters of the sandbox's lists.

One parser for the filter language (a subset of Codat's: `field=value`,
`field!=value`, `field~value`, joined by `&&`); each list says which of its
clauses it accepts and what they filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .http import ApiError
from .models import DataType, ItemStatus

_CLAUSE = re.compile(r"^\s*([A-Za-z]+)\s*(!=|=|~)\s*(.*?)\s*$")
_WORD = re.compile(r"\w+")


class Clause(NamedTuple):
    field: str
    op: str
    value: str


def clauses(raw: str, accepts: Callable[[Clause], bool], usage: str) -> Iterator[Clause]:
    """The clauses of `raw`, in order.

    The first one that does not parse, or that `accepts` refuses, is a 400
    that quotes it and says `usage`. Lazy, so a list that refuses a clause's
    value refuses it before later clauses are read.
    """
    if not raw:
        return
    if "\x00" in raw:
        # PostgreSQL's text holds no NUL: the query would fail, not find nothing.
        raise ApiError(400, "Invalid query: it contains a NUL character.")
    for text in raw.split("&&"):
        match = _CLAUSE.match(text)
        clause = Clause(*match.groups()) if match else None
        if clause is None or not accepts(clause):
            raise ApiError(400, f"Invalid query '{text.strip()[:100]}': {usage}.")
        yield clause


def _typed(queryset: QuerySet, column: str, name: str, value: str) -> object:
    """The value as its column holds it; 400 for one it cannot hold (`id=zzz` on a UUID)."""
    try:
        return queryset.model._meta.get_field(column).to_python(value)
    except ValidationError:
        raise ApiError(400, f"Invalid query: '{value[:100]}' is not a valid {name}.") from None


def filter_by_query(queryset: QuerySet, raw: str, columns: dict[str, str]) -> QuerySet:
    """Filter by any operator on the fields named in `columns` (field -> model field)."""
    usage = "use field=value, field!=value or field~value with one of: " + ", ".join(
        sorted(columns)
    )
    for name, op, value in clauses(raw, lambda clause: clause.field in columns, usage):
        column = columns[name]
        if op == "~":
            queryset = queryset.filter(**{f"{column}__icontains": value})
        elif op == "=":
            queryset = queryset.filter(**{column: _typed(queryset, column, name, value)})
        else:
            queryset = queryset.exclude(**{column: _typed(queryset, column, name, value)})
    return queryset


def order_by(queryset: QuerySet, raw: str, columns: dict[str, str], default: list[str]) -> QuerySet:
    """Order by `field` or `-field` of `columns` (field -> column), or by `default`."""
    if not raw:
        return queryset.order_by(*default)
    name = raw.lstrip("-")
    if name not in columns:
        raise ApiError(
            400, f"Invalid orderBy '{raw[:100]}': use one of {', '.join(sorted(columns))}."
        )
    prefix = "-" if raw.startswith("-") else ""
    return queryset.order_by(prefix + columns[name], "pk")


_PUSH_STATUSES = {
    "Success": [ItemStatus.COMPLETED],
    "Failed": [ItemStatus.PUSH_ERROR, ItemStatus.VALIDATION_ERROR],
    "Pending": [ItemStatus.PENDING, ItemStatus.UNKNOWN],
    "TimedOut": [],
}
_DATA_TYPES = {member.label: member.value for member in DataType}


def _push_clause(clause: Clause) -> bool:
    return (
        clause.field in ("status", "dataType")
        and clause.op == "="
        and _WORD.fullmatch(clause.value) is not None
    )


def filter_push_operations(items: QuerySet, raw: str) -> QuerySet:
    """Push operations (items) by `status=<status>` and `dataType=<data type>`."""
    usage = "use status=<Success|Failed|Pending|TimedOut> or dataType=<dataType>"
    for field, _, value in clauses(raw, _push_clause, usage):
        if field == "status":
            if value not in _PUSH_STATUSES:
                raise ApiError(400, f"Unknown push operation status '{value}'.")
            items = items.filter(status__in=_PUSH_STATUSES[value])
        else:
            items = items.filter(data_type=_DATA_TYPES.get(value, -1))
    return items
