"""The sandbox's Codat-compatible Sync for Expenses endpoints.

Paths, status codes and errors follow Codat's OpenAPI documents. The bodies
are built in `sandbox/bodies.py`, paging in `sandbox/paging.py`, and the
`query` and `orderBy` parameters are read by `sandbox/query.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import query, services
from .bodies import (
    company_body,
    connection_body,
    iso,
    push_operation_body,
    sync_body,
    transaction_bodies,
    transaction_body,
)
from .http import ApiError, api_endpoint, idempotent, json_response
from .models import Company, Item, SandboxSettings, Sync
from .paging import paged, paging

_EXPENSE_TYPES = {"Payment", "Refund", "Reward", "Chargeback"}


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, f"{what} not found: '{value[:64]}' is not a valid ID.") from None


def get_company(company_id: str) -> Company:
    company = Company.objects.filter(company_id=parse_uuid(company_id, "Company")).first()
    if company is None:
        raise ApiError(404, f"Company {company_id} not found.")
    return company


def get_sync(company: Company, sync_id: str) -> Sync:
    sync = Sync.objects.filter(company=company, sync_id=parse_uuid(sync_id, "Sync")).first()
    if sync is None:
        raise ApiError(404, f"Sync {sync_id} not found for company {company.company_id}.")
    return sync


@api_endpoint
@require_GET
def list_companies(request: HttpRequest) -> HttpResponse:
    page, size = paging(request)
    companies = query.filter_by_query(
        Company.objects.all(),
        request.GET.get("query", ""),
        {"id": "company_id", "name": "name", "platform": "platform"},
    )
    companies = query.order_by(
        companies,
        request.GET.get("orderBy", ""),
        {"name": "name", "created": "created", "lastSync": "last_sync_at", "id": "company_id"},
        ["pk"],
    )
    total = companies.count()
    rows = companies[(page - 1) * size : page * size]
    return json_response(
        paged(request, "/companies", page, size, total, [company_body(c) for c in rows])
    )


@api_endpoint
@require_GET
def company_detail(request: HttpRequest, company_id: str) -> HttpResponse:
    return json_response(company_body(get_company(company_id)))


@api_endpoint
@require_GET
def list_connections(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    page, size = paging(request)
    results = [connection_body(company)] if page == 1 else []
    return json_response(
        paged(request, f"/companies/{company.company_id}/connections", page, size, 1, results)
    )


@api_endpoint
@require_GET
def company_config(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    return json_response(company.config)


@api_endpoint
@require_GET
def list_syncs(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    now = timezone.now()
    syncs = Sync.objects.filter(company=company).order_by("-started_at", "-pk")
    return json_response([sync_body(s, company, now) for s in syncs.iterator(chunk_size=2000)])


@api_endpoint
@require_GET
def latest_sync(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    sync = Sync.objects.filter(company=company).order_by("-started_at", "-pk").first()
    if sync is None:
        raise ApiError(404, f"Company {company.company_id} has no syncs.")
    return json_response(sync_body(sync, company, timezone.now()))


@api_endpoint
@require_GET
def last_successful_sync(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    sync = (
        Sync.objects.filter(company=company, finalized=True, status_code__in=(2000, 2040))
        .order_by("-started_at", "-pk")
        .first()
    )
    if sync is None:
        raise ApiError(404, f"Company {company.company_id} has no successful sync.")
    return json_response(sync_body(sync, company, timezone.now()))


@api_endpoint
@require_GET
def sync_status(request: HttpRequest, company_id: str, sync_id: str) -> HttpResponse:
    company = get_company(company_id)
    return json_response(sync_body(get_sync(company, sync_id), company, timezone.now()))


# A page of a sync's items with the sync's item count: the API's busiest read,
# so its statement is written once rather than compiled by the ORM each time.
_PAGE_SQL = (
    "SELECT i.transaction_id, i.status, i.message, i.integration_type, s.item_count "  # noqa: S608
    f"FROM {Item._meta.db_table} i "
    f"JOIN {Sync._meta.db_table} s ON s.id = i.sync_id "
    f"JOIN {Company._meta.db_table} c ON c.id = s.company_id "
    "WHERE s.sync_id = %s AND c.company_id = %s AND i.position >= %s AND i.position < %s "
    "ORDER BY i.position"
)


def _page_rows(
    company_uuid: uuid.UUID, sync_uuid: uuid.UUID, start: int, size: int
) -> list[tuple[uuid.UUID, int, str | None, int, int]]:
    prepare = Sync._meta.get_field("sync_id").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(
            _PAGE_SQL,
            [
                prepare(sync_uuid, connection),
                prepare(company_uuid, connection),
                start,
                start + size,
            ],
        )
        rows = cursor.fetchall()
    # PostgreSQL answers UUIDs, SQLite their hex.
    return [
        (tid if isinstance(tid, uuid.UUID) else uuid.UUID(tid), status, message, itype, count)
        for tid, status, message, itype, count in rows
    ]


@api_endpoint
@require_GET
def list_transactions(request: HttpRequest, company_id: str, sync_id: str) -> HttpResponse:
    # The common case in one query: a page of a known sync's items, with the
    # sync's item count. Anything else (an empty page, an unknown company or
    # sync, bad paging) takes the path below, which answers exactly as before.
    try:
        company_uuid, sync_uuid = uuid.UUID(company_id), uuid.UUID(sync_id)
        page, size = paging(request)
    except (ValueError, ApiError):
        rows = []
    else:
        rows = _page_rows(company_uuid, sync_uuid, (page - 1) * size, size)
    if rows:
        path = f"/companies/{company_uuid}/sync/expenses/syncs/{sync_uuid}/transactions"
        results = transaction_bodies([row[:4] for row in rows])
        return json_response(paged(request, path, page, size, rows[0][4], results))
    company = get_company(company_id)
    sync = get_sync(company, sync_id)
    page, size = paging(request)
    # Positions run 0..n-1, so a page is an index range: no OFFSET scan, and
    # never more than one page in memory.
    start = (page - 1) * size
    items = Item.objects.filter(sync=sync, position__gte=start, position__lt=start + size)
    results = [transaction_body(item) for item in items.order_by("position")]
    path = f"/companies/{company.company_id}/sync/expenses/syncs/{sync.sync_id}/transactions"
    return json_response(paged(request, path, page, size, sync.item_count, results))


@api_endpoint
@require_GET
def get_transaction(
    request: HttpRequest, company_id: str, sync_id: str, transaction_id: str
) -> HttpResponse:
    company = get_company(company_id)
    sync = get_sync(company, sync_id)
    tid = parse_uuid(transaction_id, "Transaction")
    items = list(Item.objects.filter(sync=sync, transaction_id=tid).order_by("position"))
    if not items:
        raise ApiError(404, f"Transaction {transaction_id} not found in sync {sync.sync_id}.")
    return json_response([transaction_body(item) for item in items])


@api_endpoint
@require_GET
def list_push_operations(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)
    page, size = paging(request)
    items = query.filter_push_operations(
        Item.objects.filter(sync__company=company), request.GET.get("query", "")
    )
    order = request.GET.get("orderBy", "-requestedOnUtc")
    if order.lstrip("-") != "requestedOnUtc":
        raise ApiError(400, "orderBy must be requestedOnUtc or -requestedOnUtc.")
    direction = "-" if order.startswith("-") else ""
    items = items.order_by(f"{direction}sync__started_at", f"{direction}sync_id", "position")
    total = items.count()
    rows = list(
        items[(page - 1) * size : page * size].values_list(
            "transaction_id",
            "position",
            "status",
            "data_type",
            "message",
            "sync_id",
        )
    )
    # The sync's values once per sync, not once per item. (An item whose sync
    # was deleted in between is gone too, and is left out.)
    syncs = {
        pk: (str(sync_id), iso(started), iso(completes))
        for pk, sync_id, started, completes in Sync.objects.filter(
            pk__in={row[5] for row in rows}
        ).values_list("pk", "sync_id", "started_at", "completes_at")
    }
    company_key, connection_key = str(company.company_id), str(company.connection_id)
    results = [
        push_operation_body(
            tid, position, status, data_type, message, *syncs[sync_pk], company_key, connection_key
        )
        for tid, position, status, data_type, message, sync_pk in rows
        if sync_pk in syncs
    ]
    path = f"/companies/{company.company_id}/push"
    return json_response(paged(request, path, page, size, total, results))


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, RecursionError):
        # ValueError includes bytes that are not UTF-8; RecursionError, nesting
        # deeper than the parser goes (50,000 `[` fit in a small body).
        raise ApiError(400, "The request body is not valid JSON.") from None


def _invalid(item_id: str, message: str) -> ApiError:
    return ApiError(
        400,
        "There are problems with the request, see the Validation property for more detail.",
        validation=[{"itemId": item_id, "message": message, "validatorName": "Request"}],
    )


@api_endpoint
@require_http_methods(["POST"])
def initiate_sync(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)

    def handle() -> tuple[int, dict]:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise _invalid("$", "The body must be an object.")
        keys = set(body) & {"syncIds", "datasetIds"}
        unknown = set(body) - {"syncIds", "datasetIds"}
        if unknown:
            raise _invalid(sorted(unknown)[0], "Unknown property.")
        if len(keys) != 1:
            raise _invalid("syncIds", "Give exactly one of syncIds or datasetIds.")
        field = keys.pop()
        ids = body[field]
        if not isinstance(ids, list) or not ids:
            raise _invalid(field, "Must be a non-empty array of sync IDs.")
        parsed = []
        for index, raw in enumerate(ids):
            try:
                parsed.append(uuid.UUID(str(raw)))
            except ValueError:
                raise _invalid(f"{field}[{index}]", "Not a valid UUID.") from None
        sources = list(Sync.objects.filter(company=company, sync_id__in=parsed))
        missing = set(parsed) - {s.sync_id for s in sources}
        if missing:
            raise ApiError(
                404,
                f"Sync(s) not found for company {company.company_id}: "
                + ", ".join(sorted(str(m) for m in missing)[:10]),
            )
        sync = services.initiate_sync(company=company, source_syncs=sources)
        return 202, {"syncId": str(sync.sync_id)}

    response = idempotent(request, handle)
    delay = SandboxSettings.current().initiate_delay_ms
    if delay and response.status_code < 300:
        # The sync exists (committed) while the answer is held back: a client
        # that dies or times out now never learns the ID of the sync it started.
        time.sleep(delay / 1000)
    return response


def _validate_expense(index: int, tx: Any) -> uuid.UUID:
    if not isinstance(tx, dict):
        raise _invalid(f"[{index}]", "Each expense transaction must be an object.")
    for field in ("id", "type", "issueDate", "currency"):
        if field not in tx:
            raise _invalid(f"[{index}].{field}", "Required.")
    try:
        tid = uuid.UUID(str(tx["id"]))
    except ValueError:
        raise _invalid(f"[{index}].id", "Not a valid UUID.") from None
    if tx["type"] not in _EXPENSE_TYPES:
        raise _invalid(f"[{index}].type", f"Must be one of {', '.join(sorted(_EXPENSE_TYPES))}.")
    lines = tx.get("lines", [])
    if not isinstance(lines, list) or len(lines) > 100:
        raise _invalid(f"[{index}].lines", "Must be an array of at most 100 lines.")
    for number, line in enumerate(lines):
        net = line.get("netAmount") if isinstance(line, dict) else None
        if not isinstance(net, int | float) or not 0 <= net <= 5_000_000:
            raise _invalid(
                f"[{index}].lines[{number}].netAmount",
                "The field NetAmount must be between 0 and 5000000.",
            )
    return tid


@api_endpoint
@require_POST
def create_expense_transactions(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_company(company_id)

    def handle() -> tuple[int, dict]:
        body = _json_body(request)
        if not isinstance(body, list) or not 1 <= len(body) <= 50:
            raise _invalid("$", "The body must be an array of 1 to 50 expense transactions.")
        ids = [_validate_expense(i, tx) for i, tx in enumerate(body)]
        if len(set(ids)) != len(ids):
            raise _invalid("$", "Transaction IDs must be unique within a request.")
        sync = services.create_expense_sync(company=company, transaction_ids=ids)
        return 200, {"syncId": str(sync.sync_id)}

    return idempotent(request, handle)


@api_endpoint
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise ApiError(404, f"No such endpoint: {request.method} /{rest[:200]}")
