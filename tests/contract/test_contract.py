"""Every sandbox body the dashboard reads conforms to Codat's published schemas.

The schemas are vendored in `schemas.json` (built by `build_schemas.py` from
Codat's OpenAPI documents; this module never reads those documents). Each body
is validated with `jsonschema` (draft 2020-12, formats checked), and then
checked for properties the schema does not declare: where the spec leaves
`additionalProperties` unsaid, the sandbox must still not invent fields, since
a client generated from the spec would drop or reject them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import time_machine
from django.core.cache import cache as django_cache
from jsonschema import Draft202012Validator, FormatChecker

from sandbox.models import Company, Item, ItemStatus, Sync

VENDORED = json.loads(Path(__file__).with_name("schemas.json").read_text())
SCHEMAS: dict[str, dict[str, Any]] = VENDORED["schemas"]
PAGED = ("Companies", "Connections", "Transactions", "PushOperations")

# jsonschema's own checker (uuid among others) plus the spec's formats it leaves
# unchecked without optional packages.
FORMATS = FormatChecker()
FORMATS.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)


# RFC 3986: only these characters, '%' only as an escape, at most one '#'.
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")


@FORMATS.checks("uri-reference")
def _uri_reference(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_URI_CHARS.match(value)) and value.count("#") <= 1


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and _uri_reference(value)


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@cache
def validator(name: str) -> Draft202012Validator:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def _applicable(schema: Any, instance: Any) -> list[dict]:
    """`schema` and the allOf parts (and matching anyOf/oneOf branches) that apply."""
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for part in schema.get("allOf", []):
        found += _applicable(part, instance)
    for key in ("anyOf", "oneOf"):
        for part in schema.get(key, []):
            if Draft202012Validator(part).is_valid(instance):
                found += _applicable(part, instance)
    return found


def undeclared(instance: Any, schema: Any, where: str = "$") -> Iterator[str]:
    """Paths of object properties that no applicable schema declares or allows."""
    parts = _applicable(schema, instance)
    if isinstance(instance, dict):
        for key, value in instance.items():
            declared = [p["properties"][key] for p in parts if key in p.get("properties", {})]
            extra = [p["additionalProperties"] for p in parts if "additionalProperties" in p]
            if declared:
                for sub in declared:
                    yield from undeclared(value, sub, f"{where}.{key}")
            elif any(isinstance(e, dict) for e in extra):
                for sub in extra:
                    if isinstance(sub, dict):
                        yield from undeclared(value, sub, f"{where}.{key}")
            elif True not in extra:
                yield f"{where}.{key}"
    elif isinstance(instance, list):
        for index, value in enumerate(instance):
            for part in parts:
                if "items" in part:
                    yield from undeclared(value, part["items"], f"{where}[{index}]")


def conforms(body: Any, name: str) -> Any:
    """Assert `body` is valid against the vendored schema `name`, and declares all it holds."""
    problems = [
        f"{e.json_path}: {e.message}"
        for e in sorted(validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    ]
    assert not problems, f"{name}: " + "; ".join(problems[:10])
    extra = list(undeclared(body, SCHEMAS[name]))
    assert not extra, f"{name}: undeclared properties {extra[:10]}"
    return body


def ok(response: httpx.Response, name: str, status: int = 200) -> Any:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    return conforms(response.json(), name)


def error(response: httpx.Response, status: int) -> dict:
    body = ok(response, "ErrorMessage", status)
    assert body["statusCode"] == status
    assert body["error"] and body["correlationId"]
    return body


def _syncs(company: Company) -> str:
    return f"/companies/{company.company_id}/sync/expenses/syncs"


# --- the checker itself ---


def test_the_vendored_schemas_are_valid_and_complete():
    for name in SCHEMAS:
        Draft202012Validator.check_schema(SCHEMAS[name])
    for operation in VENDORED["operations"].values():
        for key, name in operation.items():
            if key not in ("method", "path"):
                assert name in SCHEMAS, name
    # The one deliberate relaxation: response pageSize may echo a request's 5000.
    for name in PAGED:
        paging = SCHEMAS[name]["allOf"][1]["properties"]["pageSize"]
        assert paging["maximum"] == 5000
        assert "5000" in paging["$comment"]


def test_the_checks_reject_wrong_and_undeclared_fields():
    sync = {
        "companyId": str(uuid.uuid4()),
        "syncId": str(uuid.uuid4()),
        "syncStatusCode": 2000,
        "syncStatus": "Complete",
        "errorMessage": None,
        "syncExceptionMessage": "",
        "syncUtc": "2026-01-01T00:00:00Z",
        "dataPushed": True,
    }
    conforms(sync, "CompanySyncStatus")
    assert not validator("CompanySyncStatus").is_valid({**sync, "extra": 1})
    assert not validator("CompanySyncStatus").is_valid({**sync, "dataPushed": "yes"})
    assert not validator("CompanySyncStatus").is_valid({**sync, "syncStatusCode": 2**31})
    page = {
        "results": [{"transactionId": "t", "status": "Completed"}],
        "pageNumber": 1,
        "pageSize": 5000,
        "totalResults": 1,
        "_links": {"self": {"href": "/x"}, "current": {"href": "/x?page=1"}},
    }
    conforms(page, "Transactions")
    assert not validator("Transactions").is_valid({**page, "links": {}})
    assert not validator("Transactions").is_valid({**page, "pageSize": 5001})
    for href in ("/x?query=a b", "/x?q=%zz", "/x?q=a#b#c", "/x?q=<a>"):
        links = {**page["_links"], "next": {"href": href}}
        assert not validator("Transactions").is_valid({**page, "_links": links}), href
    # Company leaves additionalProperties unsaid: jsonschema accepts extras, the
    # undeclared check does not (nested ones included), but honours explicit maps.
    company = {"id": str(uuid.uuid4()), "name": "A", "redirect": "https://x/y", "tags": {"k": "v"}}
    assert validator("Company").is_valid({**company, "surprise": 1})
    assert not validator("Company").is_valid({**company, "id": "not-a-uuid"})
    assert not validator("Company").is_valid({**company, "redirect": "/relative"})
    assert list(undeclared({**company, "surprise": 1}, SCHEMAS["Company"])) == ["$.surprise"]
    nested = {**company, "referenceSubsidiaryCompanies": [{"id": company["id"], "odd": 1}]}
    assert list(undeclared(nested, SCHEMAS["Company"])) == ["$.referenceSubsidiaryCompanies[0].odd"]
    assert list(undeclared(company, SCHEMAS["Company"])) == []


# --- reads ---


def test_companies_pages_conform(api, small_estate):
    everything = ok(api.get("/companies", params={"page": 1, "pageSize": 5000}), "Companies")
    assert everything["pageSize"] == 5000
    assert len(everything["results"]) == everything["totalResults"] == 6
    assert "next" not in everything["_links"]
    middle = ok(api.get("/companies", params={"page": 2, "pageSize": 2}), "Companies")
    assert set(middle["_links"]) == {"self", "current", "next", "previous"}
    assert len(middle["results"]) == 2
    # A query with spaces, '#' and '&&' stays one parameter in every link.
    name = Company.objects.order_by("pk").first().name
    query = f"name!={name} && platform!=none"
    first = ok(api.get("/companies", params={"query": query, "pageSize": 2}), "Companies")
    assert first["totalResults"] == 5
    following = ok(api.get(first["_links"]["next"]["href"]), "Companies")
    assert following["pageNumber"] == 2
    assert following["_links"]["previous"]["href"].startswith("/companies?")
    assert {c["name"] for c in first["results"] + following["results"]}.isdisjoint({name})


def test_company_and_connections_conform(api, small_estate):
    for company in Company.objects.order_by("pk"):
        body = ok(api.get(f"/companies/{company.company_id}"), "Company")
        assert body["id"] == str(company.company_id)
        page = ok(api.get(f"/companies/{company.company_id}/connections"), "Connections")
        assert page["results"] == body["dataConnections"]


def test_config_conforms(api, small_estate):
    for company in Company.objects.order_by("pk"):
        body = ok(
            api.get(f"/companies/{company.company_id}/sync/expenses/config"), "CompanyConfiguration"
        )
        assert body == company.config


def test_sync_statuses_conform(api, small_estate):
    codes = set()
    for company in Company.objects.order_by("pk"):
        listed = ok(api.get(f"{_syncs(company)}/list/status"), "CompanySyncStatusList")
        assert len(listed) == company.syncs.count()
        codes |= {s["syncStatusCode"] for s in listed}
        latest = ok(api.get(f"{_syncs(company)}/latest/status"), "CompanySyncStatus")
        assert latest == listed[0]
        one = listed[-1]
        by_id = ok(api.get(f"{_syncs(company)}/{one['syncId']}/status"), "CompanySyncStatus")
        assert by_id == one
        last_ok = api.get(f"{_syncs(company)}/lastSuccessful/status")
        if last_ok.status_code == 404:
            error(last_ok, 404)
        else:
            assert ok(last_ok, "CompanySyncStatus")["syncStatus"] == "Complete"
    # Succeeded, failed and still-running syncs were all checked.
    assert 2000 in codes and codes & {1000, 1010} and codes & {4000, 4220, 5000, 5080, 5130}


def test_transaction_pages_and_items_conform(api, small_estate):
    statuses = set()
    # The largest sync of each outcome: every item status, in as few requests as can be.
    by_code: dict[int, Sync] = {}
    for sync in Sync.objects.select_related("company").order_by("-item_count", "pk"):
        by_code.setdefault(sync.status_code, sync)
    for sync in by_code.values():
        path = f"{_syncs(sync.company)}/{sync.sync_id}/transactions"
        page = ok(api.get(path, params={"pageSize": 5000}), "Transactions")
        assert page["totalResults"] == sync.item_count == len(page["results"])
        statuses |= {t["status"] for t in page["results"]}
    assert statuses == {"Completed", "Pending", "PushError", "ValidationError"}

    sync = Sync.objects.order_by("-item_count", "pk").first()
    path = f"{_syncs(sync.company)}/{sync.sync_id}/transactions"
    middle = ok(api.get(path, params={"page": 2, "pageSize": 2}), "Transactions")
    assert set(middle["_links"]) == {"self", "current", "next", "previous"}
    item = Item.objects.filter(sync=sync).exclude(status=ItemStatus.COMPLETED).first() or (
        Item.objects.filter(sync=sync).first()
    )
    body = ok(api.get(f"{path}/{item.transaction_id}"), "TransactionResponse")
    assert body[0]["transactionId"] == str(item.transaction_id)


def test_push_operations_conform(api, small_estate):
    statuses = set()
    for company in Company.objects.order_by("pk"):
        page = ok(
            api.get(
                f"/companies/{company.company_id}/push",
                params={"orderBy": "-requestedOnUtc", "page": 1, "pageSize": 5000},
            ),
            "PushOperations",
        )
        assert page["totalResults"] == Item.objects.filter(sync__company=company).count()
        statuses |= {op["status"] for op in page["results"]}
    assert statuses == {"Success", "Failed", "Pending"}


# --- writes ---


def test_initiate_sync_answers_202_with_sync_initiated(api, small_estate):
    sync = Sync.objects.filter(status_code=5130).select_related("company").first()
    request = {"datasetIds": [str(sync.sync_id)]}
    conforms(request, "PostSync")
    body = ok(api.post(_syncs(sync.company), json=request), "SyncInitiated", 202)
    assert Sync.objects.filter(sync_id=body["syncId"], company=sync.company).exists()
    # The dashboard sends the seed document's `syncIds`; the answer is the same shape.
    body = ok(
        api.post(_syncs(sync.company), json={"syncIds": [str(sync.sync_id)]}), "SyncInitiated", 202
    )
    assert Sync.objects.filter(sync_id=body["syncId"]).exists()


def test_create_expense_transactions_answers_create_expense_response(api, small_estate):
    company = Company.objects.order_by("pk").first()
    request = [
        {
            "id": str(uuid.uuid4()),
            "type": "Payment",
            "issueDate": "2026-11-01T00:00:00Z",
            "currency": "GBP",
            "lines": [{"netAmount": 12.5, "taxAmount": 2.5}],
        },
        {"id": str(uuid.uuid4()), "type": "Refund", "issueDate": "2026-11-02", "currency": "EUR"},
    ]
    conforms(request, "CreateExpenseRequest")
    body = ok(
        api.post(
            f"/companies/{company.company_id}/sync/expenses/expense-transactions", json=request
        ),
        "CreateExpenseResponse",
    )
    assert Sync.objects.get(sync_id=body["syncId"]).item_count == 2


# --- errors ---


def test_401_bodies_conform(sandbox_url, small_estate):
    company = Company.objects.order_by("pk").first()
    for headers in ({}, {"Authorization": "Basic d3Jvbmcta2V5"}):
        for path in ("/companies", f"/companies/{company.company_id}/push"):
            error(httpx.get(f"{sandbox_url}{path}", headers=headers), 401)


def test_404_bodies_conform(api, small_estate):
    company = Company.objects.order_by("pk").first()
    unknown = uuid.uuid4()
    for path in (
        f"/companies/{unknown}",
        f"/companies/{unknown}/connections",
        f"{_syncs(company)}/{unknown}/status",
        f"{_syncs(company)}/{unknown}/transactions",
        "/no/such/endpoint",
    ):
        error(api.get(path), 404)
    error(api.post(_syncs(company), json={"datasetIds": [str(unknown)]}), 404)


def test_400_bodies_conform(api, small_estate):
    company = Company.objects.order_by("pk").first()
    with_validation = [
        api.get("/companies", params={"pageSize": 0}),
        api.get("/companies", params={"page": "x"}),
        api.post(_syncs(company), json={"datasetIds": []}),
        api.post(
            f"/companies/{company.company_id}/sync/expenses/expense-transactions",
            json=[{"id": "not-a-uuid", "type": "Payment", "issueDate": "x", "currency": "GBP"}],
        ),
    ]
    for response in with_validation:
        body = error(response, 400)
        assert body["validation"]["errors"][0]["message"]
    error(api.get("/companies", params={"query": "nonsense"}), 400)
    error(api.get(f"/companies/{company.company_id}/push", params={"orderBy": "name"}), 400)


def test_429_bodies_conform(api, sandbox_config, small_estate):
    sandbox_config.rate_limit_per_minute = 1
    sandbox_config.save()
    with time_machine.travel("2026-11-24 10:00:10Z", tick=False):
        assert api.get("/companies").status_code == 200
        budget = api.get("/companies")
    assert error(budget, 429)["canBeRetried"] == "Yes"
    assert budget.headers["Retry-After"] == "50"

    sandbox_config.rate_limit_per_minute = None
    sandbox_config.rate_limit_storm_rate = 1.0
    sandbox_config.save()
    storm = api.get("/companies")
    assert error(storm, 429)["canBeRetried"] == "Yes"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Other tests' request counts must not push these over the minute budget."""
    django_cache.clear()
    yield
    django_cache.clear()
