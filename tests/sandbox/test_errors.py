"""Authentication, unknown IDs, bad paging and the sandbox being switched off."""

import base64
import uuid

import httpx
import pytest

from sandbox.models import Company, Sync


def _company(small_estate) -> Company:
    return Company.objects.order_by("pk").first()


def test_it_is_off_unless_enabled(live_server, settings, auth_header, small_estate):
    settings.SANDBOX_ENABLED = False
    response = httpx.get(
        f"{live_server.url}/sandbox/companies", headers={"Authorization": auth_header}
    )
    assert response.status_code == 404
    assert "results" not in response.text


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"wrong-key").decode(),
        "Bearer sandbox-test-key",
        "Basic !!!not-base64!!!",
    ],
)
def test_it_answers_401_with_codat_error_body_for_a_bad_key(sandbox_url, header, small_estate):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{sandbox_url}/companies", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401
    assert body["canBeRetried"] == "No"
    assert set(body) >= {"statusCode", "service", "error", "correlationId"}


@pytest.mark.parametrize(
    "header_value",
    [
        "Basic {b64}",  # as Codat's portal hands the key out
        "Basic {b64colon}",  # curl -u KEY:
        "Basic {raw}",
    ],
)
def test_it_accepts_the_key_in_each_basic_form(sandbox_url, api_key, header_value, small_estate):
    value = header_value.format(
        b64=base64.b64encode(api_key.encode()).decode(),
        b64colon=base64.b64encode(f"{api_key}:".encode()).decode(),
        raw=api_key,
    )
    response = httpx.get(f"{sandbox_url}/companies", headers={"Authorization": value})
    assert response.status_code == 200


def test_it_answers_404_for_unknown_company_and_sync(api, small_estate):
    company = _company(small_estate)
    unknown = uuid.uuid4()
    for path in (
        f"/companies/{unknown}",
        f"/companies/{unknown}/sync/expenses/syncs/list/status",
        "/companies/not-a-uuid/sync/expenses/config",
        f"/companies/{company.company_id}/sync/expenses/syncs/{unknown}/status",
        f"/companies/{company.company_id}/sync/expenses/syncs/{unknown}/transactions",
        "/no/such/endpoint",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["statusCode"] == 404


def test_it_answers_404_for_a_transaction_not_in_the_sync(api, small_estate):
    sync = Sync.objects.filter(item_count__gt=0).first()
    path = (
        f"/companies/{sync.company.company_id}/sync/expenses/syncs/{sync.sync_id}"
        f"/transactions/{uuid.uuid4()}"
    )
    assert api.get(path).status_code == 404


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"page": "x"}, {"pageSize": "0"}, {"pageSize": "5001"}]
)
def test_it_rejects_bad_paging_with_400(api, small_estate, params):
    response = api.get("/companies", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400
    assert body["validation"]["errors"][0]["itemId"] in ("page", "pageSize")


def test_it_rejects_an_unknown_query_field(api, small_estate):
    response = api.get("/companies", params={"query": "colour=red"})
    assert response.status_code == 400
    assert "colour=red" in response.json()["error"]


def test_it_filters_and_orders_companies(api, small_estate):
    first = Company.objects.order_by("name").first()
    response = api.get("/companies", params={"query": f"name={first.name}"})
    assert [c["id"] for c in response.json()["results"]] == [str(first.company_id)]
    ordered = api.get("/companies", params={"orderBy": "-name"}).json()["results"]
    names = [c["name"] for c in ordered]
    assert names == sorted(names, reverse=True)


def test_it_answers_405_to_the_wrong_method(api, small_estate):
    company = _company(small_estate)
    response = api.delete(f"/companies/{company.company_id}/sync/expenses/config")
    assert response.status_code == 405


def test_it_rejects_a_malformed_initiate_sync_body(api, small_estate):
    company = _company(small_estate)
    path = f"/companies/{company.company_id}/sync/expenses/syncs"
    for body in (
        b"{not json",
        b"[]",
        b'{"syncIds": []}',
        b'{"syncIds": ["x"]}',
        b'{"syncIds": [], "datasetIds": []}',
        b'{"other": 1}',
    ):
        response = api.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
    response = api.post(path, json={"syncIds": [str(uuid.uuid4())]})
    assert response.status_code == 404


def test_it_validates_expense_transactions(api, small_estate):
    company = _company(small_estate)
    path = f"/companies/{company.company_id}/sync/expenses/expense-transactions"
    good = {
        "id": str(uuid.uuid4()),
        "type": "Payment",
        "issueDate": "2026-11-01",
        "currency": "GBP",
        "lines": [{"netAmount": 10, "taxAmount": 2}],
    }
    assert api.post(path, json=[]).status_code == 400
    assert api.post(path, json=[good] * 51).status_code == 400
    assert api.post(path, json=[{**good, "type": "Gift"}]).status_code == 400
    bad_amount = {**good, "lines": [{"netAmount": -1}]}
    response = api.post(path, json=[bad_amount])
    assert response.status_code == 400
    assert response.json()["validation"]["errors"][0]["itemId"] == "[0].lines[0].netAmount"
    assert (
        api.post(path, json=[{k: v for k, v in good.items() if k != "currency"}]).status_code == 400
    )
    response = api.post(path, json=[good])
    assert response.status_code == 200
    assert uuid.UUID(response.json()["syncId"])
