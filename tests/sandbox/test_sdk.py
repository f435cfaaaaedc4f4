"""Codat's official Python SDK reads the sandbox over real HTTP.

Every read operation the dashboard relies on goes through
`codat-sync-for-expenses` against the live server, and the parsed models are
compared with the sandbox's own rows: if the SDK can read the sandbox, so can
any client written against Codat's API.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from codat_sync_for_expenses import CodatSyncExpenses
from codat_sync_for_expenses.models import errors, operations, shared
from codat_sync_for_expenses.types import Unset
from django.utils import timezone

from sandbox import catalogue, services
from sandbox.models import (
    Company,
    DataType,
    IntegrationType,
    Item,
    ItemStatus,
    Platform,
    Sync,
)

PLATFORM_NAMES = {
    "Xero",
    "QuickBooks Online",
    "QuickBooks Desktop",
    "Oracle NetSuite",
    "Sage Intacct",
    "FreeAgent",
    "Dynamics 365 Business Central",
}


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def next_page(links, path: str) -> tuple[int, int] | None:
    """(page, pageSize) from a HAL `next` link, checking it points back at `path`."""
    if links.next is None:
        return None
    href = urlsplit(links.next.href)
    assert href.path == path
    query = parse_qs(href.query)
    return int(query["page"][0]), int(query["pageSize"][0])


def busiest_failed_sync() -> Sync:
    """The largest sync whose items ended mixed: some completed, some with errors."""
    return Sync.objects.filter(status_code__in=(5120, 5130)).order_by("-item_count", "pk").first()


def test_companies_list_walks_every_page_to_the_whole_estate(sdk, small_estate):
    expected = list(Company.objects.order_by("pk"))
    assert len(expected) == small_estate.companies == 6
    seen, pages, page, size = [], 0, 1, 4
    while True:
        answer = sdk.companies.list(
            request=operations.ListCompaniesRequest(page=page, page_size=size)
        )
        pages += 1
        assert (answer.page_number, answer.page_size) == (page, size)
        assert answer.total_results == len(expected)
        seen.extend(answer.results)
        following = next_page(answer.links, "/companies")
        if following is None:
            break
        page, size = following
        assert page == pages + 1
    assert pages == math.ceil(len(expected) / size) == 2
    assert [c.id for c in seen] == [str(c.company_id) for c in expected]
    for got, row in zip(seen, expected, strict=True):
        assert got.name == row.name
        assert got.description == row.description
        assert when(got.created) == row.created
        assert when(got.last_sync) == row.last_sync_at
        assert got.data_connections[0].id == str(row.connection_id)


def test_companies_list_keeps_its_query_in_every_next_link(sdk, small_estate):
    # Names hold spaces and '#', and '&&' joins clauses: all must survive the
    # round trip through the `next` href, or page 2 answers a different query.
    excluded = Company.objects.order_by("pk")[3]
    query = f"name!={excluded.name} && platform!=none"
    expected = [str(c.company_id) for c in Company.objects.exclude(pk=excluded.pk).order_by("pk")]
    seen, page, pages = [], 1, 0
    while True:
        answer = sdk.companies.list(
            request=operations.ListCompaniesRequest(page=page, page_size=2, query=query)
        )
        pages += 1
        assert answer.total_results == len(expected) == 5
        seen.extend(c.id for c in answer.results)
        for link in (answer.links.current, answer.links.next):
            if link is not None:
                assert parse_qs(urlsplit(link.href).query)["query"] == [query]
        following = next_page(answer.links, "/companies")
        if following is None:
            break
        page, _ = following
    assert pages == 3
    assert seen == expected


def test_company_get_matches_the_row(sdk, small_estate):
    row = Company.objects.order_by("pk")[2]
    company = sdk.companies.get(
        request=operations.GetCompanyRequest(company_id=str(row.company_id))
    )
    assert isinstance(company, shared.Company)
    assert company.id == str(row.company_id)
    assert company.name == row.name
    assert company.description == row.description
    assert company.redirect.endswith(str(row.company_id))
    assert when(company.created) == row.created
    assert when(company.last_sync) == row.last_sync_at
    assert company.products == ["expenses"]
    [connection] = company.data_connections
    assert connection.id == str(row.connection_id)
    assert connection.source_id == str(row.source_id)
    assert connection.platform_name == Platform(row.platform).label
    assert connection.status.value == row.connection_status


def test_connections_list_names_each_company_platform(sdk, small_estate):
    companies = list(Company.objects.order_by("pk"))
    for row in companies:
        answer = sdk.connections.list(
            request=operations.ListConnectionsRequest(company_id=str(row.company_id))
        )
        assert answer.total_results == 1
        assert answer.links.next is None
        [connection] = answer.results
        assert connection.platform_name in PLATFORM_NAMES
        assert connection.platform_name == Platform(row.platform).label
        assert connection.integration_key == row.platform
        assert connection.id == str(row.connection_id)
        assert connection.source_type.value == "Accounting"
        assert connection.status.value == row.connection_status
        assert when(connection.created) == row.created
        assert when(connection.last_sync) == row.last_sync_at
        assert str(row.connection_id) in connection.link_url


def _assert_sync(got, row: Sync, now: datetime) -> None:
    code = services.api_status_code(row, now)
    assert got.company_id == str(row.company.company_id)
    assert got.sync_id == str(row.sync_id)
    assert got.sync_status_code == code
    assert got.sync_status == catalogue.STATUS_TEXT[code]
    assert when(got.sync_utc) == row.started_at
    assert got.data_pushed is (row.data_pushed if row.finalized else False)
    assert got.error_message == (row.error_message if row.finalized else "")
    assert got.sync_exception_message == (row.exception_message if row.finalized else "")


def test_sync_list_is_every_sync_newest_first(sdk, small_estate):
    company = Company.objects.order_by("pk").first()
    answer = sdk.sync.list(request=operations.ListSyncsRequest(company_id=str(company.company_id)))
    rows = list(Sync.objects.filter(company=company).order_by("-started_at", "-pk"))
    assert len(answer) == len(rows) == 12
    now = timezone.now()
    for got, row in zip(answer, rows, strict=True):
        _assert_sync(got, row, now)


def test_latest_sync_is_the_newest(sdk, small_estate):
    now = timezone.now()
    for company in Company.objects.order_by("pk"):
        got = sdk.sync.get_latest_sync(
            request=operations.GetLatestSyncRequest(company_id=str(company.company_id))
        )
        _assert_sync(got, company.syncs.order_by("-started_at", "-pk").first(), now)


def test_last_successful_sync_skips_failed_and_running_syncs(sdk, small_estate):
    checked = 0
    now = timezone.now()
    for company in Company.objects.order_by("pk"):
        row = (
            company.syncs.filter(finalized=True, status_code__in=(2000, 2040))
            .order_by("-started_at", "-pk")
            .first()
        )
        request = operations.GetLastSuccessfulSyncRequest(company_id=str(company.company_id))
        if row is None:
            with pytest.raises(errors.ErrorMessage) as caught:
                sdk.sync.get_last_successful_sync(request=request)
            assert caught.value.status_code == 404
            continue
        got = sdk.sync.get_last_successful_sync(request=request)
        _assert_sync(got, row, now)
        assert got.sync_status == "Complete"
        checked += 1
    assert checked >= 3


def test_sync_get_by_id_carries_the_error_messages(sdk, small_estate):
    row = (
        Sync.objects.filter(finalized=True, status_code__gte=4000)
        .exclude(error_message="")
        .select_related("company")
        .order_by("pk")
        .first()
    )
    assert row is not None, "the estate should hold a failed sync"
    got = sdk.sync.get(
        request=operations.GetSyncByIDRequest(
            company_id=str(row.company.company_id), sync_id=str(row.sync_id)
        )
    )
    _assert_sync(got, row, timezone.now())
    assert got.error_message and got.sync_status_code == row.status_code


def test_transaction_status_list_follows_next_through_every_page(sdk, small_estate):
    sync = busiest_failed_sync()
    company_id = str(sync.company.company_id)
    expected = [
        (
            str(item.transaction_id),
            ItemStatus(item.status).label,
            item.message,
            IntegrationType(item.integration_type).label,
        )
        for item in Item.objects.filter(sync=sync).order_by("position")
    ]
    size = 3
    assert len(expected) == sync.item_count >= 3 * size, "want at least three pages"
    path = f"/companies/{company_id}/sync/expenses/syncs/{sync.sync_id}/transactions"
    seen, page, pages = [], 1, 0
    while True:
        answer = sdk.transaction_status.list(
            request=operations.ListSyncTransactionsRequest(
                company_id=company_id, sync_id=str(sync.sync_id), page=page, page_size=size
            )
        )
        pages += 1
        assert (answer.page_number, answer.page_size) == (page, size)
        assert answer.total_results == len(expected)
        assert (answer.links.previous is None) == (page == 1)
        assert 1 <= len(answer.results) <= size
        for t in answer.results:
            # Like Codat's examples, an item without a message omits the field.
            assert isinstance(t.message, Unset) == (t.status.value in ("Completed", "Pending"))
            message = None if isinstance(t.message, Unset) else t.message
            seen.append((t.transaction_id, t.status.value, message, t.integration_type.value))
        following = next_page(answer.links, path)
        if following is None:
            break
        page, size = following
    assert pages == math.ceil(len(expected) / size)
    assert len({t[0] for t in seen}) == len(seen)  # no duplicates across pages
    assert seen == expected
    assert {"Completed", "PushError"} <= {t[1] for t in seen} or {"ValidationError"} <= {
        t[1] for t in seen
    }


def test_transaction_status_get_returns_the_item(sdk, small_estate):
    item = (
        Item.objects.filter(status=ItemStatus.PUSH_ERROR)
        .select_related("sync__company")
        .order_by("pk")
        .first()
    )
    assert item is not None and item.message
    got = sdk.transaction_status.get(
        request=operations.GetSyncTransactionRequest(
            company_id=str(item.sync.company.company_id),
            sync_id=str(item.sync.sync_id),
            transaction_id=str(item.transaction_id),
        )
    )
    assert len(got) == 1
    assert got[0].transaction_id == str(item.transaction_id)
    assert got[0].status.value == "PushError"
    assert got[0].message == item.message
    assert got[0].integration_type.value == IntegrationType(item.integration_type).label


def test_configuration_get_matches_the_company_config(sdk, small_estate):
    company = Company.objects.order_by("pk")[1]
    config = sdk.configuration.get(
        request=operations.GetCompanyConfigurationRequest(company_id=str(company.company_id))
    )
    assert config.bank_account.id == company.config["bankAccount"]["id"]
    assert config.supplier.id == company.config["supplier"]["id"]
    assert config.customer.id == company.config["customer"]["id"]


def test_push_operations_list_mirrors_the_items_newest_first(sdk, small_estate):
    company = Company.objects.order_by("pk").first()
    items = list(
        Item.objects.filter(sync__company=company)
        .select_related("sync")
        .order_by("-sync__started_at", "-sync_id", "position")
    )
    answer = sdk.push_operations.list(
        request=operations.ListPushOperationsRequest(
            company_id=str(company.company_id), page_size=5000, order_by="-requestedOnUtc"
        )
    )
    assert answer.total_results == len(items) == len(answer.results)
    status = {
        ItemStatus.COMPLETED: "Success",
        ItemStatus.PUSH_ERROR: "Failed",
        ItemStatus.VALIDATION_ERROR: "Failed",
        ItemStatus.PENDING: "Pending",
        ItemStatus.UNKNOWN: "Pending",
    }
    for op, item in zip(answer.results, items, strict=True):
        assert op.company_id == str(company.company_id)
        assert op.data_connection_key == str(company.connection_id)
        assert op.status.value == status[ItemStatus(item.status)]
        assert op.data_type.value == DataType(item.data_type).label
        assert when(op.requested_on_utc) == item.sync.started_at
        if item.status == ItemStatus.COMPLETED:
            [change] = op.changes
            assert change.record_ref.id == str(item.transaction_id)
            assert op.status_code == 200
        else:
            assert op.changes == []
            assert op.error_message == item.message
    requested = [op.requested_on_utc for op in answer.results]
    assert requested == sorted(requested, reverse=True)


def test_push_operations_list_filters_failed(sdk, small_estate):
    company = Company.objects.order_by("pk").first()
    answer = sdk.push_operations.list(
        request=operations.ListPushOperationsRequest(
            company_id=str(company.company_id), query="status=Failed", page_size=5000
        )
    )
    failed = Item.objects.filter(
        sync__company=company, status__in=(ItemStatus.PUSH_ERROR, ItemStatus.VALIDATION_ERROR)
    )
    assert answer.total_results == failed.count() > 0
    assert {op.status.value for op in answer.results} == {"Failed"}
    assert all(op.validation.errors[0].message for op in answer.results)


def test_a_wrong_key_raises_error_message_401(sandbox_url, small_estate):
    wrong = CodatSyncExpenses(
        security=shared.Security(auth_header="Basic d3Jvbmcta2V5"), server_url=sandbox_url
    )
    with pytest.raises(errors.ErrorMessage) as caught:
        wrong.companies.list(request=operations.ListCompaniesRequest())
    assert caught.value.status_code == 401
    assert caught.value.data.status_code == 401
    assert caught.value.data.can_be_retried == "No"
    assert caught.value.data.correlation_id


def test_an_unknown_company_raises_error_message_404(sdk, small_estate):
    unknown = str(uuid.uuid4())
    with pytest.raises(errors.ErrorMessage) as caught:
        sdk.companies.get(request=operations.GetCompanyRequest(company_id=unknown))
    assert caught.value.status_code == 404
    assert caught.value.data.status_code == 404
    assert unknown in caught.value.data.error
    with pytest.raises(errors.ErrorMessage) as caught:
        sdk.sync.list(request=operations.ListSyncsRequest(company_id=unknown))
    assert caught.value.status_code == 404
