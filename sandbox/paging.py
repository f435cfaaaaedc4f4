"""Codat's paging: the `page` and `pageSize` parameters and the envelope of a page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest

from .http import ApiError

MAX_PAGE_SIZE = 5000
DEFAULT_PAGE_SIZE = 100
# Codat sets no last page; the sandbox does, so a page's offset always fits
# the database's integers (a 20-digit page overflowed SQLite's and PostgreSQL's).
MAX_PAGE = 10_000_000


def paging(request: HttpRequest) -> tuple[int, int]:
    """The page number and page size asked for; 400 for anything but whole numbers in range."""

    def number(name: str, default: int, maximum: int) -> int:
        raw = request.GET.get(name, "")
        if raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(
                400,
                f"{name} must be a whole number.",
                validation=[{"itemId": name, "message": "Not an integer.", "validatorName": name}],
            ) from None
        if not 1 <= value <= maximum:
            limit = f"between 1 and {maximum}"
            raise ApiError(
                400,
                f"{name} must be {limit}.",
                validation=[
                    {"itemId": name, "message": f"Must be {limit}.", "validatorName": name}
                ],
            )
        return value

    return number("page", 1, MAX_PAGE), number("pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def paged(
    request: HttpRequest, path: str, page: int, size: int, total: int, results: list[dict]
) -> dict[str, Any]:
    """Codat's paging envelope with HAL links, relative to the API root.

    The links carry the request's other parameters (query, orderBy...)
    percent-encoded, so a value holding spaces, '#' or '&&' stays one parameter
    and each href is a valid URI reference.
    """
    extra = [(k, v) for k, v in request.GET.items() if k not in ("page", "pageSize")]

    def href(number: int) -> dict[str, str]:
        query = urlencode([("page", number), ("pageSize", size), *extra], quote_via=quote)
        return {"href": f"{path}?{query}"}

    links: dict[str, dict[str, str]] = {"self": {"href": path}, "current": href(page)}
    if page * size < total:
        links["next"] = href(page + 1)
    if page > 1:
        links["previous"] = href(page - 1)
    return {
        "results": results,
        "pageNumber": page,
        "pageSize": size,
        "totalResults": total,
        "_links": links,
    }
