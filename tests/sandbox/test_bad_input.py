"""Input no endpoint can act on is a 400 in Codat's error shape, never a 500.

Through Django's test client: what is under test is how a request is read,
not the socket.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sandbox.models import Company, Platform, Sync

TWENTY_DIGITS = "9" * 20


@pytest.fixture
def sandbox(db, sandbox_enabled, auth_header) -> Client:
    return Client(raise_request_exception=False, headers={"Authorization": auth_header})


@pytest.fixture
def company(db) -> Company:
    now = timezone.now()
    return Company.objects.create(
        name="Toft Stores", created=now, platform=Platform.XERO, config_modified=now
    )


@pytest.fixture
def sync(company) -> Sync:
    now = timezone.now()
    return Sync.objects.create(
        company=company, kind="expenses", started_at=now, completes_at=now + timedelta(minutes=1)
    )


def assert_codat_400(response, *words: str) -> dict:
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["statusCode"] == 400
    assert set(body) >= {"statusCode", "service", "error", "correlationId", "canBeRetried"}
    for word in words:
        assert word in body["error"]
    return body


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("id=zzz", "'zzz' is not a valid id"),
        ("id!=zzz", "'zzz' is not a valid id"),
        ("name=Toft Stores&&id=not-a-uuid", "'not-a-uuid' is not a valid id"),
        ("name=Toft\x00", "NUL character"),
        ("name~\x00", "NUL character"),
        ("id~\x00", "NUL character"),
    ],
)
def test_a_query_value_its_field_cannot_hold_is_a_400(sandbox, company, query, said):
    response = sandbox.get("/sandbox/companies", {"query": query})

    assert_codat_400(response, said)


@pytest.mark.parametrize("query", ["status=\x00", "dataType~\x00"])
def test_a_push_operations_query_with_a_nul_is_a_400(sandbox, company, query):
    response = sandbox.get(f"/sandbox/companies/{company.company_id}/push", {"query": query})

    assert_codat_400(response, "NUL character")


def test_a_query_by_a_whole_id_still_finds_its_company_and_a_part_is_text(sandbox, company):
    whole = sandbox.get("/sandbox/companies", {"query": f"id={company.company_id}"})
    part = sandbox.get("/sandbox/companies", {"query": f"id~{str(company.company_id)[:8]}"})
    nothing = sandbox.get("/sandbox/companies", {"query": "id~zzz"})

    assert [c["id"] for c in whole.json()["results"]] == [str(company.company_id)]
    assert [c["id"] for c in part.json()["results"]] == [str(company.company_id)]
    assert nothing.status_code == 200 and nothing.json()["results"] == []


def _paged_paths(company: Company, sync: Sync) -> list[str]:
    syncs = f"/sandbox/companies/{company.company_id}/sync/expenses/syncs"
    return [
        "/sandbox/companies",
        f"/sandbox/companies/{company.company_id}/connections",
        f"/sandbox/companies/{company.company_id}/push",
        f"{syncs}/{sync.sync_id}/transactions",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": TWENTY_DIGITS}, "page"),
        ({"page": "10000001"}, "page"),
        ({"page": "-1"}, "page"),
        ({"pageSize": TWENTY_DIGITS}, "pageSize"),
        ({"pageSize": "-1"}, "pageSize"),
        ({"pageSize": "1e3"}, "pageSize"),
    ],
)
def test_paging_no_page_can_answer_is_a_400_on_every_list(sandbox, company, sync, params, field):
    for path in _paged_paths(company, sync):
        body = assert_codat_400(sandbox.get(path, params), field)
        assert body["validation"]["errors"][0]["itemId"] == field, path


def test_the_last_page_there_can_be_is_an_empty_page(sandbox, company, sync):
    for path in _paged_paths(company, sync):
        response = sandbox.get(path, {"page": "10000000", "pageSize": "5000"})
        assert response.status_code == 200, path
        assert response.json()["results"] == [], path


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_deep(50_000), id="array-50k-deep"),
        pytest.param(b'{"syncIds":' + _deep(50_000) + b"}", id="inside-an-object"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="objects-50k-deep"),
    ],
)
@pytest.mark.parametrize("endpoint", ["sync/expenses/syncs", "sync/expenses/expense-transactions"])
def test_a_body_nested_too_deeply_is_a_400(sandbox, company, body, endpoint):
    response = sandbox.post(
        f"/sandbox/companies/{company.company_id}/{endpoint}",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )

    assert_codat_400(response, "not valid JSON")


def test_a_body_larger_than_the_server_reads_is_a_413_in_codat_shape(sandbox, company, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = sandbox.post(
        f"/sandbox/companies/{company.company_id}/sync/expenses/syncs",
        b'{"syncIds": ["' + b"x" * 2000 + b'"]}',
        content_type="application/json",
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )

    assert response.status_code == 413
    body = response.json()
    assert body["statusCode"] == 413
    assert "1000 bytes" in body["error"]


@pytest.mark.parametrize("authorised", [True, False], ids=["with-key", "without-key"])
def test_a_path_with_something_id_shaped_is_answered_and_logged(
    db, sandbox_enabled, auth_header, authorised
):
    """The request log reads the company from the path: dashes where an ID stands are no ID."""
    from sandbox.models import RequestLog

    headers = {"Authorization": auth_header} if authorised else {}
    client = Client(raise_request_exception=False, headers=headers)

    response = client.get("/sandbox/companies/" + "-" * 36)

    assert response.status_code in (401, 404)
    assert RequestLog.objects.get().company_id is None
