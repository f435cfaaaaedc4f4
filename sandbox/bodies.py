"""The JSON bodies of the sandbox API, in Codat's shapes.

Field names, types and order follow Codat's OpenAPI documents; every body the
endpoints in `sandbox/api.py` answer with is built here and nowhere else.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from . import catalogue, services
from .models import Company, DataType, IntegrationType, Item, ItemStatus, Platform, Sync

UUID_NAMESPACE = uuid.UUID("5b0d7c3e-5a77-4c1d-9a38-0d6f3c1f2a10")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connection_body(company: Company) -> dict[str, Any]:
    return {
        "id": str(company.connection_id),
        "integrationId": str(uuid.uuid5(UUID_NAMESPACE, company.platform)),
        "integrationKey": company.platform,
        "sourceId": str(company.source_id),
        "sourceType": "Accounting",
        "platformName": Platform(company.platform).label,
        "linkUrl": f"https://link-api.codat.io/companies/{company.company_id}/connections/"
        f"{company.connection_id}/start",
        "status": company.connection_status,
        **({"lastSync": iso(company.last_sync_at)} if company.last_sync_at else {}),
        "created": iso(company.created),
        "dataConnectionErrors": [],
        "connectionInfo": None,
    }


def company_body(company: Company) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(company.company_id),
        "name": company.name,
        "description": company.description,
        "redirect": f"https://link.codat.io/company/{company.company_id}",
        "created": iso(company.created),
        "createdByUserName": None,
        "products": ["expenses"],
        "tags": {},
        "referenceSubsidiaryCompanies": [],
        "dataConnections": [connection_body(company)],
    }
    if company.last_sync_at:
        body["lastSync"] = iso(company.last_sync_at)
    return body


def sync_body(sync: Sync, company: Company, now: datetime) -> dict[str, Any]:
    code = services.api_status_code(sync, now)
    return {
        "companyId": str(company.company_id),
        "syncId": str(sync.sync_id),
        "syncStatusCode": code,
        "syncStatus": catalogue.STATUS_TEXT[code],
        "errorMessage": sync.error_message if sync.finalized else "",
        "syncExceptionMessage": sync.exception_message if sync.finalized else "",
        "syncUtc": iso(sync.started_at),
        "dataPushed": sync.data_pushed if sync.finalized else False,
    }


_STATUS_LABEL = {member.value: member.label for member in ItemStatus}
_INTEGRATION_LABEL = {member.value: member.label for member in IntegrationType}


def transaction_bodies(
    rows: list[tuple[uuid.UUID, int, str | None, int]],
) -> list[dict[str, Any]]:
    """The API's `Transaction` for (transaction_id, status, message, integration_type) rows."""
    bodies = []
    for tid, status, message, itype in rows:
        body: dict[str, Any] = {"transactionId": str(tid), "status": _STATUS_LABEL[status]}
        if message is not None:
            body["message"] = message
        body["integrationType"] = _INTEGRATION_LABEL[itype]
        bodies.append(body)
    return bodies


def transaction_body(item: Item) -> dict[str, Any]:
    return transaction_bodies(
        [(item.transaction_id, item.status, item.message, item.integration_type)]
    )[0]


_PUSH_STATUS = {
    ItemStatus.COMPLETED: ("Success", 200),
    ItemStatus.PUSH_ERROR: ("Failed", 500),
    ItemStatus.VALIDATION_ERROR: ("Failed", 400),
    ItemStatus.PENDING: ("Pending", 202),
    ItemStatus.UNKNOWN: ("Pending", 202),
}
_DATA_TYPE_LABEL = {member.value: member.label for member in DataType}


def push_operation_body(
    transaction_id: uuid.UUID,
    position: int,
    item_status: int,
    data_type_value: int,
    message: str | None,
    sync_key: str,
    requested: str | None,
    completed: str | None,
    company_key: str,
    connection_key: str,
) -> dict[str, Any]:
    """The API's `PushOperation` for one item, from its values and its sync's.

    Built from plain values, not rows: a page of push operations reads its
    items with `values_list` and each sync's fields once.
    """
    status, status_code = _PUSH_STATUS[ItemStatus(item_status)]
    data_type = _DATA_TYPE_LABEL[data_type_value]
    changes = []
    if item_status == ItemStatus.COMPLETED:
        changes.append(
            {
                "type": "Created",
                # The pushed record is named by the expense transaction that
                # produced it (its core ID), which is what lets a client join
                # push operations (data type) to transaction statuses.
                "recordRef": {"id": str(transaction_id), "dataType": data_type},
                "attachmentId": None,
            }
        )
    errors = []
    if item_status in (ItemStatus.VALIDATION_ERROR, ItemStatus.PUSH_ERROR):
        errors.append(
            {
                "itemId": str(transaction_id),
                "message": message,
                "validatorName": data_type,
            }
        )
    body: dict[str, Any] = {
        "changes": changes,
        "dataType": data_type,
        "companyId": company_key,
        "pushOperationKey": str(uuid.uuid5(UUID_NAMESPACE, f"{sync_key}:{position}")),
        "dataConnectionKey": connection_key,
        "requestedOnUtc": requested,
        "timeoutInMinutes": None,
        "status": status,
        "errorMessage": message,
        "validation": {"errors": errors, "warnings": []},
        "statusCode": status_code,
    }
    if item_status not in (ItemStatus.PENDING, ItemStatus.UNKNOWN):
        body["completedOnUtc"] = completed
    return body
